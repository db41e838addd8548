"""The benchmarks only ever empty a database of their own, and still run after a change of the schema."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import create_engine, text

from tests.benchmarks import floor
from tests.benchmarks.bench_cost import totals
from tests.benchmarks.bench_rush import build_town
from tests.benchmarks.common import ROOT, BenchClient, NotABenchDatabase, bench_database
from tests.benchmarks.cpu import tree_cpu_seconds


@pytest.mark.parametrize("url", ["postgresql+psycopg://postgres@127.0.0.1:5432/ribambelle",
                                 "postgresql+psycopg://postgres@127.0.0.1:5432/ribambelle_bench_copy",
                                 "postgresql+psycopg://postgres@127.0.0.1:5432/"])
def test_a_benchmark_refuses_a_database_not_named_bench(url, tmp_path):
    with pytest.raises(NotABenchDatabase, match="ne finit pas par _bench"):
        bench_database("postgresql", url, tmp_path)


def test_the_billing_benchmark_builds_its_town_and_bills_it(tmp_path):
    """Run small, so that a change of the schema cannot leave `make bench` broken unseen."""
    done = subprocess.run([sys.executable, "-m", "tests.benchmarks.bench_billing", "--families", "12", "--pdfs", "2"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| families / children / bookings | 12 / 18 /" in done.stdout
    assert "| billing run (12 invoices," in done.stdout


def test_the_rush_town_holds_its_families_beside_the_demo(tmp_path):
    """bench_wrk builds the rush's town in the demo's database: its parents are its own families only."""
    url = bench_database("sqlite", "", tmp_path)
    BenchClient.demo(url)
    town = build_town(url, 5)
    assert len(town["families"]) == 5 and town["children"] == 8
    engine = create_engine(url)
    with engine.connect() as conn:
        logins = conn.execute(text("SELECT email FROM user WHERE email LIKE '%@banc.test' ORDER BY id")).scalars().all()
    engine.dispose()
    assert logins == [f"famille{i}@banc.test" for i in range(5)]


def test_the_cost_benchmark_runs_each_route_of_the_demo_parent(tmp_path):
    """bench_cost's part that runs under valgrind, run here without it and small: every route still
    answers what it checks (a 200 and its page's words) after a change of the app."""
    url = bench_database("sqlite", "", tmp_path)
    done = subprocess.run([sys.executable, "-m", "tests.benchmarks.bench_cost", "--requests", "2", "--inner", url],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_cost_benchmark_reads_callgrinds_counts_in_the_order_it_wrote_them(tmp_path):
    for part, total in ((2, 700), (1, 500), (3, 900)):
        (tmp_path / f"callgrind.out.{part}").write_text(f"version: 1\ncreator: callgrind\npart: {part}\n"
                                                         f"events: Ir\nsummary: {total}\n")
    assert totals(sorted(tmp_path.glob("callgrind.out.*"))) == [500, 700, 900]


def test_the_floor_draws_the_page_it_stands_for_and_compiles_no_template_per_request(tmp_path, monkeypatch):
    """The floor is what the portal is measured against: its page has the planning's cells and bytes, and
    it does no work the portal does not (a template compiled at each request cost 0.4 ms, a third of its
    click)."""
    url = f"sqlite:///{tmp_path / 'floor.sqlite'}"
    floor.prepare(url)
    app = floor.create_app(url)
    client = app.test_client()
    compiled = []
    real_compile = app.jinja_env.compile
    monkeypatch.setattr(app.jinja_env, "compile", lambda *a, **k: compiled.append(a) or real_compile(*a, **k))
    page = client.get("/page?cells=124&bytes=54139")
    assert page.status_code == 200 and len(page.get_data()) == 54139
    assert page.get_data(as_text=True).count('<td id="cell-') == 124
    assert client.post("/click?row=7").status_code == 200
    assert "<strong>2</strong> clics" in client.post("/click?row=7").get_data(as_text=True)
    assert client.get("/page?cells=124&bytes=54139").status_code == 200
    assert compiled == []
    engine = create_engine(url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT value FROM floor_cell WHERE id = 7")).scalar_one() == 0  # clicked twice
    engine.dispose()


def test_the_floors_signed_in_click_checks_the_account_and_the_token(tmp_path):
    """The signed-in click of the floor does what any portal's click must: no token, no click; no account
    session row, no click; signed in with its token, the row is written."""
    url = f"sqlite:///{tmp_path / 'floor.sqlite'}"
    floor.prepare(url)
    client = floor.create_app(url).test_client()
    assert client.post("/signed/click?row=3").status_code == 400  # no CSRF token
    token = client.get("/signed/login?user=3").get_data(as_text=True)
    assert client.post("/signed/click?row=3").status_code == 400  # signed in, still no token
    clicked = client.post("/signed/click?row=3", headers={"X-CSRFToken": token})
    assert clicked.status_code == 200 and "<strong>1</strong> clics" in clicked.get_data(as_text=True)
    engine = create_engine(url)
    with engine.begin() as conn:
        assert conn.execute(text("SELECT value FROM floor_cell WHERE id = 3")).scalar_one() == 1
        conn.execute(text("UPDATE floor_login SET session_key = 'ended' WHERE id = 3"))  # a logout elsewhere
    assert client.post("/signed/click?row=3", headers={"X-CSRFToken": token}).status_code == 401
    with engine.connect() as conn:
        assert conn.execute(text("SELECT value FROM floor_cell WHERE id = 3")).scalar_one() == 1
    engine.dispose()


def test_the_rush_counts_the_cpu_of_the_servers_workers_and_of_nothing_else():
    """The cores the server used, printed beside each paced step, are its whole process tree's: a worker's
    time counts for its master (gunicorn's workers do the work), another process's does not."""
    burn = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass\ntime.sleep(60)"
    master = subprocess.Popen([sys.executable, "-c", f"import subprocess, sys, time\n"
                               f"subprocess.Popen([sys.executable, '-c', {burn!r}])\ntime.sleep(60)"],
                              start_new_session=True)
    stranger = subprocess.Popen([sys.executable, "-c", burn])
    try:
        deadline = time.monotonic() + 30  # both have burnt their 0.3 s (a busy machine takes longer)
        while min(tree_cpu_seconds({master.pid}), tree_cpu_seconds({stranger.pid})) < 0.3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert tree_cpu_seconds({stranger.pid}) >= 0.3
        counted = tree_cpu_seconds({master.pid})
        assert 0.3 <= counted < 0.3 + 0.25  # the worker's 0.3 s and the master's start, not the stranger's 0.3 s
    finally:
        os.killpg(master.pid, signal.SIGKILL)  # the worker too
        stranger.kill()
        master.wait()
        stranger.wait()


def test_the_rush_benchmark_runs_each_scenario_small_without_a_failure(tmp_path):
    """`make bench-rush` runs for half an hour, outside the suite: run it small here (Locust through nginx to
    gunicorn, on PostgreSQL; the arrivals' pauses a hundredth of a person's), so that a change of the app or
    of the Locust script cannot leave it broken unseen. Every journey goes through, and each scenario counts
    what its parents did: an arriving family confirms once (a user class that ran the rush's task beside its
    own once booked families twice, each journey counted by Locust but not by the scenario)."""
    from tests.benchmarks.bench_rush import LOCUST
    from tests.conftest import PG_ADMIN_URL, missing
    from tests.nginx import NGINX

    if NGINX is None or not LOCUST.exists():
        missing("nginx or Locust (.venv-locust) absent: make browser .venv-locust/.installed")
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/ribambelle_rush_test_bench"
    try:
        create_engine(PG_ADMIN_URL).connect().close()
    except Exception:
        missing("PostgreSQL does not answer")
    cheap_hashes = dict(os.environ, FLASK_ARGON2_TIME_COST="1", FLASK_ARGON2_MEMORY_COST="1024")  # a hundred logins
    done = subprocess.run(
        [sys.executable, "-m", "tests.benchmarks.bench_rush", "--families", "48", "--users", "4", "--sample", "1",
         "--seconds", "0.5", "--workers", "2", "--paced", "4,8", "--pace", "0.05", "--arrivals", "4",
         "--arrival-warm", "2", "--arrival-seconds", "2", "--think", "0.01", "--pg-url", url, "--results", str(tmp_path)],
        cwd=ROOT, env=cheap_hashes, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    [result] = json.loads((tmp_path / "rush.json").read_text())
    rush, checked = result["rush"], result["database_check"]
    assert rush["journeys_failed"] == 0 and rush["families"] > 0
    assert all(f["failures"] == 0 for name, f in rush["figures"].items() if name != "errors")
    assert rush["figures"]["confirmation (20 days)"]["requests"] == rush["families"]  # each family once
    assert checked["bookings_over_capacity"] == 0 and checked["bookings"]
    for step in result["paced"]["steps"]:
        assert step["cell toggle (htmx)"]["requests"] > 0 and step["cell toggle (htmx)"]["failures"] == 0
    [morning] = result["arrivals"]
    assert morning["families_started"] == 16 and morning["journeys_failed"] == 0  # 4 a second for 2 + 2 s
    assert morning["confirmed"] > 0
    assert morning["figures"]["confirmation (20 days)"]["requests"] == morning["confirmed"]
    report = (tmp_path / "rush.md").read_text()
    assert "| parents tapping | taps/s served |" in report and "| families a second | confirmations/s |" in report
