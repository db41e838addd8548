"""Benchmark (not a test): the planning page and one cell toggle, beside /healthz on the same server.

Prints, for each: bytes sent, server time (median and 95th percentile, measured inside the WSGI
server around the app) and the time seen by the client, over many requests on a month where every
unit is offered. Run with `make bench` (SQLite file) or with --pg-url (BENCH_DATABASE_URL) naming a
PostgreSQL database of its own, whose name ends in _bench.

    .venv/bin/python -m tests.benchmarks.bench_planning --requests 300
"""
from __future__ import annotations

import argparse
import http.cookiejar
import logging
import os
import re
import statistics
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

from sqlalchemy import event
from werkzeug.serving import make_server

from app import create_app
from db import get_db
from services import demo_data
from tests.benchmarks.common import bench_database, demo_cell


class Timed:
    """WSGI middleware: how long the app took for the last request, and how many SQL statements it ran."""

    def __init__(self, app):
        self.app = app
        self.last = 0.0
        self.statements = 0
        self.last_statements = 0

    def count(self, *args):
        self.statements += 1

    def __call__(self, environ, start_response):
        self.statements = 0
        started = time.perf_counter()
        body = b"".join(self.app(environ, start_response))
        self.last = time.perf_counter() - started
        self.last_statements = self.statements
        return [body]


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--pg-url", default=os.environ.get("BENCH_DATABASE_URL", ""),
                        help="a PostgreSQL database whose name ends in _bench (emptied); default: a SQLite file")
    args = parser.parse_args()

    url = bench_database("postgresql" if args.pg_url else "sqlite", args.pg_url, Path(tempfile.mkdtemp()))
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench", "OUTBOX_INTERVAL": 0, "BASE_URL": "http://127.0.0.1"})
    with app.app_context():
        demo_data.seed(get_db(), app.extensions["ribambelle.hasher"])
    timed = Timed(app.wsgi_app)
    app.wsgi_app = timed
    event.listen(app.extensions["ribambelle.engine"], "before_cursor_execute", timed.count)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"

    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))

    def request(path, data=None, headers=None):
        body = urllib.parse.urlencode(data, doseq=True).encode() if data is not None else None
        req = urllib.request.Request(base + path, data=body, headers=headers or {})
        started = time.perf_counter()
        with opener.open(req) as response:
            content = response.read()
        return content, time.perf_counter() - started, timed.last, timed.last_statements

    login_page = request("/")[0].decode()
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', login_page).group(1)
    request("/", {"csrf_token": token, "email": "parent@demo.test", "password": "parent-demo-ribambelle"})
    home = request("/")[0].decode()

    cell = demo_cell(url)
    assert "Mon compte famille" in home
    planning_path, toggle_path = cell["planning_path"], cell["toggle_path"]
    csrf = re.search(r'"X-CSRFToken": "([^"]+)"', home).group(1)
    cells = cell["cells"]

    runs = {
        "/healthz": lambda: request("/healthz"),
        "family space": lambda: request("/"),
        f"planning page ({cells} cells)": lambda: request(planning_path),
        "planning month (htmx fragment)": lambda: request(planning_path, headers={"HX-Request": "true"}),
        "cell toggle (htmx)": lambda: request(toggle_path, {"cellule": f"{cell['day']}.{cell['unit_id']}", "mois": cell["month"]},
                                              {"HX-Request": "true", "X-CSRFToken": csrf}),
    }
    print(f"Ribambelle planning benchmark — {os.cpu_count()} cores, database {url.split(':')[0]}, "
          f"werkzeug threaded server, {args.requests} requests each (after 20 warm-up)")
    print()
    print("| request | bytes | SQL statements | server median ms | server p95 ms | client median ms | client p95 ms |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, call in runs.items():
        for _ in range(20):
            call()
        sizes, server_times, client_times, statements = [], [], [], []
        for _ in range(args.requests):
            content, client_time, server_time, count = call()
            statements.append(count)
            sizes.append(len(content))
            server_times.append(server_time * 1000)
            client_times.append(client_time * 1000)
        print(f"| {name} | {int(statistics.median(sizes))} | {int(statistics.median(statements))} | "
              f"{statistics.median(server_times):.2f} | "
              f"{percentile(server_times, 95):.2f} | {statistics.median(client_times):.2f} | {percentile(client_times, 95):.2f} |")
    server.shutdown()


if __name__ == "__main__":
    main()
