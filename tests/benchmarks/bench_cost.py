"""Benchmark (not a test): what each hot route costs the processor, in instructions, beside /healthz.

Seconds on a shared machine move with its neighbours (on 7 December 2026 the same /healthz gave 1,150
and 2,059 req/s twenty minutes apart); the instructions a request executes do not. This serves the
demo in-process (Flask's test client, no server, no network) under valgrind's callgrind, which counts
the instructions of each route's requests only: each route runs its REQUESTS in one callback, and
callgrind collects inside callbacks alone and writes its count when each one ends (``--toggle-collect``
and ``--dump-after`` on ctypes' callback entry). Setting up (imports, migrations, the demo) is not
counted. The database's own work (PostgreSQL's server process) is not counted either: this is the
portal's Python, the part a change of our code moves.

Prints instructions per request and their ratio to /healthz of the same run (Flask's own floor: the test
client, the signed session, routing) and, for the planning and the click, to the stack's floor of the same
run (tests/benchmarks/floor.py, in-process too: a bare page of as many cells and bytes, a bare click);
writes ``bench-results/cost-<database>.md`` and ``.json``.
Valgrind is Debian's package (``make bench-cost`` installs it); a run takes about three minutes.

    .venv/bin/python -m tests.benchmarks.bench_cost --database sqlite
    .venv/bin/python -m tests.benchmarks.bench_cost --database postgresql --pg-url postgresql+psycopg://postgres@127.0.0.1/ribambelle_bench
"""
from __future__ import annotations

import argparse
import ctypes
import json
import re
import shutil
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from tests.benchmarks.common import BENCH_SETTINGS, ROOT, bench_database, demo_cell, machine
from tests.factories import csrf_from

# What one request of each route is; a login is far dearer (Argon2 at the town's cost): it runs fewer times.
ROUTES = ["/healthz", "floor: page", "floor: click", "floor: signed-in click", "family space", "planning page", "planning month (htmx fragment)",
          "cell toggle (htmx)", "invoice PDF (stored)", "login (POST)"]
FEWER = {"login (POST)": 10}
# The stack's floor (tests/benchmarks/floor.py) a route is also measured against: the bare page of as many
# cells and bytes for the planning, the bare click for the toggle.
FLOOR_OF = {"planning page": "floor: page", "planning month (htmx fragment)": "floor: page",
            "cell toggle (htmx)": "floor: click", "floor: signed-in click": "floor: click"}


def parent_routes(url: str) -> dict:
    """The demo parent logged in through the test client: each route as a call that checks its answer."""
    from sqlmodel import select

    from app import create_app
    from db import get_db
    from models import Invoice, User
    from services import demo_data
    from tests.benchmarks import floor

    app = create_app({**BENCH_SETTINGS, "DATABASE_URL": url})
    with app.app_context():
        demo_data.seed(get_db(), app.extensions["ribambelle.hasher"])
        invoice_id = get_db().exec(select(Invoice.id).join(User, User.family_id == Invoice.family_id)
                                   .where(User.email == "parent@demo.test")).first()
    cell = demo_cell(url)
    parent = app.test_client()

    def log_in(client) -> None:
        token = csrf_from(client.get("/").get_data(as_text=True))
        answer = client.post("/", data={"csrf_token": token, "email": "parent@demo.test",
                                        "password": demo_data.DEMO_ACCOUNTS["parent@demo.test"]})
        assert answer.status_code == 302, answer.status_code

    log_in(parent)
    htmx = {"HX-Request": "true", "X-CSRFToken": csrf_from(parent.get("/compte/").get_data(as_text=True))}
    click = {"cellule": f"{cell['day']}.{cell['unit_id']}", "mois": cell["month"]}

    def checked(answer, expect: str = ""):
        assert answer.status_code == 200 and expect in answer.get_data(as_text=True), (answer.request.path,
                                                                                       answer.status_code)
        return answer

    def checked_pdf(answer):
        assert answer.status_code == 200 and answer.get_data().startswith(b"%PDF"), answer.status_code
        return answer

    def get(path: str, headers: dict | None = None, expect: str = ""):
        return checked(parent.get(path, headers=headers), expect)

    floor.prepare(url)  # the floor's table, in the same database
    bare_app = floor.create_app(url)
    bare, signed = bare_app.test_client(), bare_app.test_client()  # a cookie jar each: the bare one stays bare
    signed_in = {"X-CSRFToken": signed.get("/signed/login?user=0").get_data(as_text=True)}
    page_size = len(get(cell["planning_path"]).get_data())

    def toggle():
        answer = parent.post(cell["toggle_path"], data=click, headers=htmx)
        text = answer.get_data(as_text=True)
        assert answer.status_code == 200 and ("(à confirmer)" in text or "retirée" in text), answer.status_code

    return {
        "/healthz": lambda: get("/healthz"),
        "floor: page": lambda: checked(bare.get(f"/page?cells={cell['cells']}&bytes={page_size}"), "cell--"),
        "floor: click": lambda: checked(bare.post("/click?row=0"), "clics dans cette session"),
        "floor: signed-in click": lambda: checked(signed.post("/signed/click?row=0", headers=signed_in),
                                                  "clics dans cette session"),
        "family space": lambda: get("/compte/", expect="Mon compte famille"),
        "planning page": lambda: get(cell["planning_path"], expect="Planning de Léa"),
        "planning month (htmx fragment)": lambda: get(cell["planning_path"], {"HX-Request": "true"}, "planning-month"),
        "cell toggle (htmx)": toggle,
        # Its PDF was made at the first download (the 20 uncounted requests): the stored file, checked current.
        "invoice PDF (stored)": lambda: checked_pdf(parent.get(f"/factures/{invoice_id}.pdf")),
        "login (POST)": lambda: log_in(app.test_client()),
    }


def inner(url: str, requests: int) -> None:
    """Inside valgrind: each route's requests in a callback of their own (the toggle an even number of
    times, so that the cell ends as it began); 20 of each first, uncounted, to warm the caches."""
    routes = parent_routes(url)
    for name in ROUTES:
        call, count = routes[name], FEWER.get(name, requests)
        for _ in range(min(count, 20)):
            call()

        def run(call=call, count=count):
            for _ in range(count):
                call()

        ctypes.CFUNCTYPE(None)(run)()


def totals(dumps: list[Path]) -> list[int]:
    """The instructions callgrind counted in each dump, in the order it wrote them (their part number)."""
    parts = []
    for dump in dumps:
        text = dump.read_text(errors="replace")
        part = re.search(r"^part: (\d+)$", text, re.M)
        total = re.search(r"^(?:summary|totals): (\d+)", text, re.M)
        if part and total:
            parts.append((int(part.group(1)), int(total.group(1))))
    return [total for _, total in sorted(parts)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/ribambelle_bench")
    parser.add_argument("--requests", type=int, default=100, help="requests of each route counted")
    parser.add_argument("--inner", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        inner(args.inner, args.requests)
        return
    if args.requests % 2:
        parser.error("--requests must be even (the toggle ends where it began)")
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        sys.exit("valgrind manquant : sudo apt-get install valgrind (ou make bench-cost)")
    work = Path(tempfile.mkdtemp(prefix="bench-cost-"))
    url = bench_database(args.database, args.pg_url, work)
    out = work / "callgrind.out"
    subprocess.run([valgrind, "--tool=callgrind", "--toggle-collect=closure_fcn", "--dump-after=closure_fcn",
                    f"--callgrind-out-file={out}", sys.executable, "-m", "tests.benchmarks.bench_cost",
                    "--requests", str(args.requests), "--inner", url],
                   cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    counted = totals(sorted(work.glob("callgrind.out.*")))
    if len(counted) != len(ROUTES):
        sys.exit(f"callgrind wrote {len(counted)} counts for {len(ROUTES)} routes (in {work})")
    per_request = {name: total // FEWER.get(name, args.requests) for name, total in zip(ROUTES, counted)}
    floor = per_request["/healthz"]
    when, box = datetime.now(timezone.utc).isoformat(timespec="seconds"), machine()
    command = f"python -m tests.benchmarks.bench_cost --database {args.database} --requests {args.requests}"
    lines = [f"### Instructions per request, {args.database} — {when}", "",
             f"Machine: {box['cores']} cores ({box['cpu']}), Python {box['python']}. In-process "
             f"(Flask's test client), counted by callgrind: {args.requests} requests a route "
             f"({', '.join(f'{k}: {v}' for k, v in FEWER.items())}), after 20 uncounted. The portal's Python only "
             f"(not the database server's work).", f"Command: `{command}`", "",
             "| request | instructions per request | × /healthz | × its floor |", "|---|---:|---:|---:|"]
    lines += [f"| {name} | {count:,} | {count / floor:.2f} | "
              f"{f'{count / per_request[FLOOR_OF[name]]:.2f} ({FLOOR_OF[name]})' if name in FLOOR_OF else ''} |"
              for name, count in per_request.items()]
    report = "\n".join(lines)
    print(report)
    results = ROOT / "bench-results"
    results.mkdir(exist_ok=True)
    (results / f"cost-{args.database}.md").write_text(report + "\n")
    (results / f"cost-{args.database}.json").write_text(json.dumps(
        {"when": when, "database": args.database, "machine": box, "command": command,
         "requests": args.requests, "instructions_per_request": per_request,
         "ratio_to_healthz": {k: round(v / floor, 3) for k, v in per_request.items()},
         "ratio_to_floor": {k: round(per_request[k] / per_request[f], 3) for k, f in FLOOR_OF.items()}}, indent=2) + "\n")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
