"""Benchmark (not a test): a parent's click and page against the stack's floor, with wrk (a C load tool).

Serves the demo town with gunicorn (WORKERS processes × 4 threads, as in deploy/) and, beside it on
the same gunicorn and database, the floor app (``tests/benchmarks/floor.py``: its click is a signed
session, one SELECT + one UPDATE and their commit, a 300-byte template; its page, the session read, one
SELECT and a table of as many cells as the planning's, padded to the planning page's size). Then wrk,
CONNECTIONS at a time for SECONDS each, on loopback:

- ``/healthz`` of the portal (a request that does nothing);
- the floor's click, on one row (the toggle below writes one draft too: the same contention), then the
  same click signed in (Flask-Login's account checked by one SELECT, Flask-WTF's CSRF header): what any
  click of a portal with accounts costs at the least, measured against the bare click;
- the demo parent toggling one cell of the planning (htmx POST, session cookie and CSRF header);
- the floor's page, then the same parent's planning page (GET);
- then a registration morning's shape: the floor's click on a row per request, beside PARENTS parents
  of a town of their own (``bench_rush.build_town``), logged in, each toggling a cell of their own child
  (a draft each), one after the other in turn. Here the clicks do not wait for each other's lock: what
  is left is what a click costs.

Prints requests per second, latency (median, 90th and 99th percentiles), every answer that is not
a 200 (errors, redirects to the login, 204s) and every socket error, the share of the line's CPU the
busiest gunicorn worker took (wrk opens its connections at once, and one worker may accept them all:
the line then runs on one process, and a page that needs a core is served at half speed; 50 % is an
even split between two), and the ratios to /healthz and to
the floor of the same run (the one-row floor for the one parent, the row-per-request floor for the many,
the page floor for the page); writes
``bench-results/wrk-<database>.md`` and ``.json``. On PostgreSQL the database must be one of the
benchmark's own: its name ends in ``_bench`` (created if missing, emptied), never ``DATABASE_URL``.

    .venv/bin/python -m tests.benchmarks.bench_wrk --database sqlite
    .venv/bin/python -m tests.benchmarks.bench_wrk --database postgresql --pg-url postgresql+psycopg://postgres@127.0.0.1/ribambelle_bench
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from tests.benchmarks.bench_rush import PASSWORD, build_town
from tests.benchmarks.common import (
    ROOT,
    BenchClient,
    bench_database,
    demo_cell,
    free_port,
    machine,
    wait_for,
)
from tests.benchmarks.floor import prepare

# Every answer but a 200 counted, redirects and 204s included (wrk itself only counts 4xx and 5xx); with
# several requests, each thread sends them in turn, from its own starting point.
COUNT_STATUSES = """
local threads = {}
function setup(thread) table.insert(threads, thread); thread:set("first", #threads * 5) end
function init(args)
  not_ok = 0
  turn = first
  built = {}
  for i, r in ipairs(requests) do built[i] = wrk.format(r[1], r[2], r[3], r[4]) end
end
function request() turn = turn % #built + 1; return built[turn] end
function response(status, headers, body) if status ~= 200 then not_ok = not_ok + 1 end end
function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do total = total + thread:get("not_ok") end
  io.write(string.format("Not 200: %d\\n", total))
end
"""
ONE_ROW, ROWS = "floor: click (one row)", "floor: click (a row per request)"
SIGNED = "floor: signed-in click (one row)"
PAGE_FLOOR = "floor: page"
WRK_LINE = re.compile(r"^\s*(\d+)%\s+([\d.]+)(us|ms|s)\s*$", re.M)
UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def floor_of(name: str) -> str:
    """The floor line a line is measured against: the page floor for a page, the clicks' for a click."""
    if name == PAGE_FLOOR or name.startswith("planning page"):
        return PAGE_FLOOR
    return ROWS if name == ROWS or "parents" in name else ONE_ROW


def floor_sign_in(port: int) -> dict:
    """The floor's parent 0 signed in: the headers of its signed-in click (cookie and CSRF token)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/signed/login?user=0")
    response = conn.getresponse()
    token = response.read().decode()
    cookie = "; ".join(header.split(";", 1)[0] for header in response.headers.get_all("Set-Cookie") or [])
    conn.close()
    return {"Cookie": cookie, "X-CSRFToken": token}


def gunicorn(app: str, env: dict, port: int, workers: int, log: Path) -> subprocess.Popen:
    """gunicorn serving ``app``, each worker on a listening socket of its own (SO_REUSEPORT): the kernel
    shares wrk's connections between them, where on one shared socket the first worker awake may accept
    all eight, and the line would measure one core (behind nginx, as deployed, the rush's workers share
    the work: 30 to 50 % of a core each, sampled in /proc on 7 December)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
         "--threads", "4", "--worker-class", "gthread", "--backlog", "2048", "--reuse-port", app],
        cwd=ROOT, env=dict(os.environ, **env), stdout=subprocess.DEVNULL, stderr=open(log, "w"))
    wait_for(port)
    return process


def workers_of(server: subprocess.Popen) -> list[int]:
    """The worker processes of a gunicorn master."""
    return [int(pid) for pid in Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()]


def cpu_seconds(pids: list[int]) -> list[float]:
    """The CPU time (user and system) each process has used so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    times = []
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        times.append((int(fields[11]) + int(fields[12])) / ticks)
    return times


def lua(directory: Path, name: str, requests: list[tuple[str, str, dict, str]]) -> Path:
    """A wrk script sending ``requests`` (method, path, headers, body) in turn."""
    def text(value: str) -> str:
        return json.dumps(value)  # a JSON string is a Lua string literal

    def table(headers: dict) -> str:
        return "{" + ", ".join(f"[{text(k)}] = {text(v)}" for k, v in headers.items()) + "}"

    entries = ",\n".join(f"  {{{text(m)}, {text(p)}, {table(h)}, {text(b) if b else 'nil'}}}" for m, p, h, b in requests)
    script = directory / f"{name}.lua"
    script.write_text("requests = {\n" + entries + "\n}\n" + COUNT_STATUSES)
    return script


def wrk(port: int, script: Path, connections: int, seconds: int, threads: int) -> dict:
    out = subprocess.run(["wrk", "--latency", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s",
                          "-s", str(script), f"http://127.0.0.1:{port}"], capture_output=True, text=True,
                         check=True).stdout
    latency = {int(p): float(v) * UNITS_MS[u] for p, v, u in WRK_LINE.findall(out)}
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    not_ok = re.search(r"Not 200: (\d+)", out)
    return {
        "requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),
        "median_ms": latency.get(50), "p90_ms": latency.get(90), "p99_ms": latency.get(99),
        "not_200": int(not_ok.group(1)),
        "socket_errors": sum(int(n) for n in errors.groups()) if errors else 0,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/ribambelle_bench")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", default="8,16")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--parents", type=int, default=16, help="parents clicking each their own child's cell")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-wrk-"))
    url = bench_database(args.database, args.pg_url, work)
    prepare(url)  # the floor's table, in the same database as the portal's
    client = BenchClient.demo(url)
    town = build_town(url, args.parents)  # beside the demo, in the same database
    results_dir = ROOT / "bench-results"
    results_dir.mkdir(exist_ok=True)
    portal_port, floor_port = free_port(), free_port()
    env = {"DATABASE_URL": url, "FLASK_SECRET_KEY": "bench-secret", "FLASK_OUTBOX_INTERVAL": "0",
           "FLASK_BASE_URL": "http://127.0.0.1"}
    servers = [gunicorn("app:create_app()", env, portal_port, args.workers, results_dir / "gunicorn-wrk.log"),
               gunicorn("tests.benchmarks.floor:create_app()", {"FLOOR_DATABASE_URL": url}, floor_port, args.workers,
                        results_dir / "gunicorn-floor.log")]
    try:
        session = client.login(portal_port)
        cell = demo_cell(url)
        cookie = {"Cookie": session.cookie}
        toggle_body = f"cellule={cell['day']}.{cell['unit_id']}&mois={cell['month']}"
        form = {"HX-Request": "true", "Content-Type": "application/x-www-form-urlencoded"}
        day, unit = town["days"][0], town["units"][0]
        parents = []
        for index, child in town["families"]:
            parent = BenchClient(f"famille{index}@banc.test", PASSWORD).login(portal_port)
            parents.append(("POST", f"/reservations/planning/{child}/{town['period']}/cellule",
                            {"Cookie": parent.cookie, "X-CSRFToken": parent.csrf, **form},
                            f"cellule={day}.{unit}&mois={day[:7]}"))
        many = f"cell toggle, {len(parents)} parents (a draft each)"
        page_bytes = len(session.fetch(portal_port, "GET", cell["planning_path"], cookie))
        requests = {  # name -> port, [(method, path, headers, body)]: sent in turn
            "/healthz": (portal_port, [("GET", "/healthz", {}, "")]),
            ONE_ROW: (floor_port, [("POST", "/click?row=0", {}, "")]),
            SIGNED: (floor_port, [("POST", "/signed/click?row=0", floor_sign_in(floor_port), "")]),
            "cell toggle (htmx)": (portal_port, [("POST", cell["toggle_path"], {
                **cookie, "X-CSRFToken": session.csrf, **form}, toggle_body)]),
            PAGE_FLOOR: (floor_port, [("GET", f"/page?cells={cell['cells']}&bytes={page_bytes}", {}, "")]),
            f"planning page ({cell['cells']} cells)": (portal_port, [("GET", cell["planning_path"], cookie, "")]),
            ROWS: (floor_port, [("POST", f"/click?row={n}", {}, "") for n in range(len(parents))]),
            many: (portal_port, parents),
        }
        sizes = {name: len(session.fetch(port, *sent[0])) for name, (port, sent) in requests.items()}  # its own headers
        scripts = {name: (port, lua(work, f"script{i}", sent)) for i, (name, (port, sent)) in enumerate(requests.items())}
        workers = {portal_port: workers_of(servers[0]), floor_port: workers_of(servers[1])}
        runs = []
        for connections in [int(c) for c in args.connections.split(",")]:
            figures = {}
            for name, (port, script) in scripts.items():
                before = cpu_seconds(workers[port])
                figures[name] = wrk(port, script, connections, args.seconds, args.wrk_threads)
                used = [after - then for after, then in zip(cpu_seconds(workers[port]), before)]
                figures[name]["busiest_worker_share"] = max(used) / sum(used) if sum(used) else 0
            runs.append({"connections": connections, "figures": figures})
    finally:
        for server in servers:
            server.terminate()
            server.wait(10)
    result = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": machine(),
              "database": args.database, "workers": args.workers, "threads": 4, "wrk_threads": args.wrk_threads,
              "seconds": args.seconds, "bytes": sizes, "runs": runs,
              "command": "python -m tests.benchmarks.bench_wrk " + " ".join(sys.argv[1:])}
    text = report(result)
    print(text)
    (results_dir / f"wrk-{args.database}.md").write_text(text)
    (results_dir / f"wrk-{args.database}.json").write_text(json.dumps(result, indent=2, ensure_ascii=False))


def report(result: dict) -> str:
    lines = [f"### wrk, {result['database']} — {result['date']}",
             "",
             f"Machine: {result['machine']['cores']} cores ({result['machine']['cpu']}). Server: gunicorn "
             f"{result['workers']} workers × {result['threads']} threads. Load: wrk, {result['wrk_threads']} threads "
             f"(so up to {result['wrk_threads']} of the cores), {result['seconds']} s per line, on loopback.",
             f"Command: `{result['command']}`", ""]
    for run in result["runs"]:
        figures = run["figures"]
        healthz = figures["/healthz"]["requests_per_s"]
        lines += [f"{run['connections']} connections:", "",
                  "| request | bytes | req/s | × /healthz | × floor | median ms | p90 ms | p99 ms | not 200 | socket errors "
                  "| busiest worker's CPU |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for name, f in figures.items():
            floor = figures[floor_of(name)]["requests_per_s"]
            lines.append(f"| {name} | {result['bytes'][name]} | {f['requests_per_s']:.0f} | {f['requests_per_s'] / healthz:.3f} | "
                         f"{f['requests_per_s'] / floor:.2f} | {f['median_ms']:.1f} | {f['p90_ms']:.1f} | {f['p99_ms']:.1f} | "
                         f"{f['not_200']} | {f['socket_errors']} | {f['busiest_worker_share']:.0%} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
