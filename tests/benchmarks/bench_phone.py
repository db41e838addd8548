"""Benchmark (not a test): the planning's first load on a slow phone.

Chromium with its network throttled to "Fast 3G" (562.5 ms latency, 1.44 Mbit/s down, 675 kbit/s up)
and its CPU slowed down 4x opens the planning page of the demo; prints the time until the page is
usable (the load event: htmx is running) and the bytes transferred, first visit and with a warm cache.

    .venv/bin/python -m tests.benchmarks.bench_phone
"""
from __future__ import annotations

import os
import statistics
import tempfile
import threading
import time

from db import get_db


def main():
    import logging

    from playwright.sync_api import sync_playwright
    from sqlmodel import select
    from werkzeug.serving import make_server

    from app import create_app
    from services import demo_data, migrations

    url = f"sqlite:///{tempfile.mkdtemp()}/phone.sqlite"
    migrations.upgrade(url)
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench", "OUTBOX_INTERVAL": 0, "BASE_URL": "http://127.0.0.1"})
    with app.app_context():
        demo_data.seed(get_db(), app.extensions["ribambelle.hasher"])
        from models import Child, Establishment, Period

        db = get_db()
        lea = db.exec(select(Child).where(Child.first_name == "Léa")).one()
        est = db.exec(select(Establishment).where(Establishment.name == "Accueil de loisirs Les Lutins")).one()
        period = db.exec(select(Period).where(Period.establishment_id == est.id)).one()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    path = f"/reservations/planning/{lea.id}/{period.id}"

    rows = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        for cache in ("cold", "warm"):
            times, sizes = [], []
            for _ in range(5):
                context = browser.new_context(viewport={"width": 360, "height": 740}, locale="fr-FR")
                page = context.new_page()
                page.goto(base + "/")
                page.fill("#email", "parent@demo.test")
                page.fill("#password", "parent-demo-ribambelle")
                page.click("button[type=submit]")
                page.wait_for_load_state("load")
                if cache == "warm":
                    page.goto(base + path)  # static files in the cache
                cdp = context.new_cdp_session(page)
                cdp.send("Network.enable")
                cdp.send("Network.setCacheDisabled", {"cacheDisabled": cache == "cold"})
                cdp.send("Network.emulateNetworkConditions", {
                    "offline": False, "latency": 562.5, "downloadThroughput": 1.44e6 / 8, "uploadThroughput": 675e3 / 8})
                cdp.send("Emulation.setCPUThrottlingRate", {"rate": 4})
                transferred = []
                cdp.on("Network.loadingFinished", lambda e, transferred=transferred: transferred.append(e["encodedDataLength"]))
                started = time.perf_counter()
                page.goto(base + path, wait_until="load")
                page.locator("td.cell--available button").first.wait_for()
                times.append(time.perf_counter() - started)
                sizes.append(sum(transferred))
                context.close()
            rows.append((cache, statistics.median(times), statistics.median(sizes)))
        browser.close()
    server.shutdown()
    print(f"Ribambelle slow-phone benchmark — {os.cpu_count()} cores, Chromium, Fast 3G, CPU 4x slower, "
          "werkzeug server without compression")
    print()
    print("| planning page | usable after (median of 5) | bytes transferred |")
    print("|---|---:|---:|")
    for cache, seconds, size in rows:
        print(f"| {cache} cache | {seconds:.2f} s | {int(size)} |")


if __name__ == "__main__":
    main()
