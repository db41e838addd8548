"""The parents of bench_rush, as Locust users (Locust, the load tool, used as a library).

Run by bench_rush in its own virtualenv (.venv-locust, requirements-bench.txt), never imported by the app
or the suite: it only speaks HTTP, to nginx in front of gunicorn as in deploy/. Each scenario writes its
figures, read from Locust's own statistics, to the JSON file --out names:

- ``healthz``: every user asks /healthz, for --seconds;
- ``kinds``: every user logs in first (not timed), then all of them repeat one kind of request at once for
  --seconds each: family space, planning page, cell toggle, then a new visitor's login from a new address
  each time; or (``--kinds "invoice PDF"``) the invoice PDF, stored by a first download before the window;
- ``rush``: the families of the town, --users at a time, each logs in, opens the family space and the
  planning, selects 20 days (4 units x 5 days), opens the recap and confirms. Every failed request counts
  and ends that family's journey only: the user takes the next family. Families of the school (every
  tenth) come from one NAT address, and one in five of them mistypes the password once first;
- ``paced``: parents at a human pace. Every user logs in first (not timed); then, for each count of
  --steps in turn, that many of them tap a cell of their child's planning, each after a pause drawn at
  random around --pace seconds (an exponential draw: together, their taps arrive as independent people's
  do, not in step), for --seconds. What the click costs a parent when the server is not a queue;
- ``arrivals``: families come in at --rate a second (Locust starts a user for each, at that rate), each
  through the rush's journey at a person's pace (a pause drawn at random after each page: typing the
  password, reading the planning, between two taps; --think scales them). After --warm seconds (the
  first families are through), --seconds are measured: the latency of each kind of request, the
  confirmations in the window, the server's cores. What a morning looks like below the server's limit.
"""
from __future__ import annotations

import argparse
import itertools
import json
import random
import re
import time
import urllib.parse

import gevent
from cpu import tree_cpu_seconds  # a sibling module: this runs as a script, in its own virtualenv
from locust import FastHttpUser, constant, task
from locust.env import Environment

PASSWORD = "mot-de-passe-du-banc-d-essai"
FORM_TOKEN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
HTMX_TOKEN = re.compile(r'"X-CSRFToken": "([^"]+)"')
REVISION = re.compile(r'name="revision" value="(\d+)"')
SCHOOL_ADDRESS = "192.0.2.10"  # one school's NAT address (a documentation address, RFC 5737)

SETUP = {}  # the scenario's parameters, read by the users: town, kind, pools
STATE = {"kind": None, "active": 0, "ready": 0, "done": 0, "journeys_failed": 0, "school_done": 0, "school_failed": 0,
         "confirmed_at": []}
# A person's mean pause, in seconds, after each step of the journey (the arrivals scenario; "tap": --pace).
PAUSES = {"login page": 5.0, "family space": 2.0, "planning page": 4.0, "recap page": 3.0}


class Failed(Exception):
    """A request failed (already counted by Locust): this family's journey stops here."""


def address(index: int) -> str:
    """A family's own address, as the outer proxy in front of nginx writes it in X-Forwarded-For."""
    if index % 10 == 0:
        return SCHOOL_ADDRESS
    return f"10.{index // 65536 % 256}.{index // 256 % 256}.{index % 256}"


class Parent(FastHttpUser):
    abstract = True
    wait_time = constant(0)

    def on_start(self):
        self.forwarded = "10.255.255.1"
        self.token = ""

    def pause(self, after: str) -> None:
        """A person's pause after a step of the journey; none for the rush's parents, who never think."""

    def call(self, method: str, path: str, name: str, data: dict | None = None, expect: int = 200,
             htmx: bool = False) -> str:
        headers = {"X-Forwarded-For": self.forwarded}
        body = None
        if method == "POST":  # as a browser: over HTTPS the app checks the form came from its own pages
            headers["Referer"] = f"{self.host}/"
        if data is not None:
            body = urllib.parse.urlencode(data)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        if self.token:
            headers["X-CSRFToken"] = self.token
        if htmx:
            headers["HX-Request"] = "true"
        with self.client.request(method, path, name=name, data=body, headers=headers, catch_response=True,
                                 allow_redirects=False) as response:
            if response.status_code != expect:
                response.failure(f"HTTP {response.status_code}, {expect} expected")
                raise Failed(name)
            return response.text or ""

    def log_in(self, index: int, mistype: bool = False) -> None:
        self.client.cookiejar.clear()
        self.token = ""
        self.forwarded = address(index)
        login = f"famille{index}@banc.test"
        page = self.call("GET", "/", "login page")
        token = FORM_TOKEN.search(page)
        if token is None:
            raise Failed("login page without its form")
        self.pause("login page")
        if mistype:  # a parent who mistypes first: the page again, with the message, and a failure counted
            page = self.call("POST", "/", "login, mistyped (POST)", {"csrf_token": token.group(1), "email": login,
                                                                     "password": "mauvais-mot-de-passe"})
            if "Identifiant ou mot de passe incorrect" not in page:
                raise Failed("mistyped login without its message")
        self.call("POST", "/", "login (POST)", {"csrf_token": token.group(1), "email": login, "password": PASSWORD},
                  expect=302)
        home = self.call("GET", "/compte/", "family space")
        token = HTMX_TOKEN.search(home)
        if token is None:
            raise Failed("family space without its token")
        self.token = token.group(1)
        self.pause("family space")


class SignedInParent(Parent):
    """Logged in once, before any window (SETUP["loaders"]: its family, child and invoice)."""
    abstract = True

    def on_start(self):
        super().on_start()
        self.index, self.child, self.invoice = SETUP["loaders"].pop()
        while True:
            try:
                self.log_in(self.index)
                break
            except Failed:
                gevent.sleep(0.5)
        if self.invoice is not None:  # its first download lays the PDF out and stores it, before the window
            self.client.get(f"/factures/{self.invoice}.pdf", name="invoice PDF, first download",
                            headers={"X-Forwarded-For": self.forwarded})
        self.ordinal = STATE["ready"]  # the how-manieth parent ready: the paced steps wake them in that order
        STATE["ready"] += 1
        self.logins = itertools.count()

    def toggle(self) -> None:
        """Selects, then at the next call deselects, a day the rush never books."""
        town = SETUP["town"]
        day = town["days"][-1]
        self.call("POST", f"/reservations/planning/{self.child}/{town['period']}/cellule", "cell toggle (htmx)",
                  {"cellule": f"{day}.{town['units'][0]}", "mois": day[:7]}, htmx=True)


class LoadedParent(SignedInParent):
    """Repeats the request of the kind the scenario sets."""

    @task
    def repeat(self):
        kind, town = STATE["kind"], SETUP["town"]
        if kind is None:
            gevent.sleep(0.05)
            return
        base = f"/reservations/planning/{self.child}/{town['period']}"
        try:
            if kind == "family space":
                self.call("GET", "/compte/", kind)
            elif kind == "planning page":
                self.call("GET", f"{base}?mois={town['days'][0][:7]}", kind)
            elif kind == "cell toggle (htmx)":
                self.toggle()
            elif kind == "invoice PDF":
                with self.client.get(f"/factures/{self.invoice}.pdf", name=kind, catch_response=True,
                                     headers={"X-Forwarded-For": self.forwarded}) as response:
                    if response.status_code != 200 or not (response.content or b"").startswith(b"%PDF"):
                        response.failure(f"HTTP {response.status_code}, not a PDF")
            elif kind == "login (POST)":  # a new visitor each time, from a new address
                self.client.cookiejar.clear()
                self.token = ""
                n = next(self.logins)
                self.forwarded = f"10.{100 + self.index % 100}.{n // 256 % 256}.{n % 256}"
                token = FORM_TOKEN.search(self.call("GET", "/", "login page (before the timed login)"))
                if token is None:
                    raise Failed("login page without its form")
                self.call("POST", "/", kind, {"csrf_token": token.group(1),
                                              "email": f"famille{self.index}@banc.test", "password": PASSWORD},
                          expect=302)
        except Failed:
            pass


class PacedParent(SignedInParent):
    """Logged in once; while the step counts it in, taps a cell after a pause around SETUP["pace"] seconds."""

    def wait_time(self) -> float:
        if self.ordinal < STATE["active"]:
            return random.expovariate(1 / SETUP["pace"])
        return 0.2

    @task
    def tap(self):
        if self.ordinal < STATE["active"]:
            try:
                self.toggle()
            except Failed:
                pass


class JourneyParent(Parent):
    """The rush's journey, for a family that has not booked yet."""
    abstract = True

    def book(self, index: int, child: int) -> bool:
        """The family's journey (behind the school's address, one in five mistypes first); False, and
        counted, when a request failed."""
        school = address(index) == SCHOOL_ADDRESS
        try:
            self.journey(index, child, mistype=school and index % 50 == 0)
            return True
        except Failed:
            STATE["journeys_failed"] += 1
            STATE["school_failed"] += school
            return False

    def journey(self, index: int, child: int, mistype: bool) -> None:
        """Log in, open the planning, select 5 days x 4 units, open the recap and confirm."""
        town = SETUP["town"]
        self.log_in(index, mistype)
        base = f"/reservations/planning/{child}/{town['period']}"
        self.call("GET", f"{base}?mois={town['days'][0][:7]}", "planning page")
        self.pause("planning page")
        days = town["days"][(index * 3) % 20: (index * 3) % 20 + 5]
        for day in days:
            for unit in town["units"][:4]:
                self.call("POST", f"{base}/cellule", "cell toggle (htmx)", {"cellule": f"{day}.{unit}", "mois": day[:7]},
                          htmx=True)
                self.pause("tap")
        recap = self.call("GET", f"{base}/recapitulatif", "recap page")
        revision = REVISION.search(recap)
        if revision is None:
            raise Failed("recap without its revision")
        self.pause("recap page")
        self.call("POST", f"{base}/confirmer", "confirmation (20 days)",
                  {"csrf_token": self.token, "revision": revision.group(1)}, expect=302)


class RushParent(JourneyParent):
    """Takes the next family that has not booked yet and goes through its whole journey."""

    @task
    def next_family(self):
        try:
            index, child = next(SETUP["families"])
        except StopIteration:
            gevent.sleep(0.1)
            return
        self.book(index, child)
        STATE["done"] += 1
        STATE["school_done"] += address(index) == SCHOOL_ADDRESS


class ArrivingParent(JourneyParent):
    """One family that comes in, goes through its journey at a person's pace, and leaves (the user idles)."""

    def on_start(self):
        super().on_start()
        self.came = False

    def pause(self, after: str) -> None:
        gevent.sleep(random.expovariate(1 / (SETUP["pace"] if after == "tap" else SETUP["think"] * PAUSES[after])))

    @task
    def next_family(self):
        if self.came:
            gevent.sleep(60)
            return
        self.came = True
        try:
            index, child = next(SETUP["families"])
        except StopIteration:
            return
        if self.book(index, child):
            STATE["confirmed_at"].append(time.monotonic())


class HealthzUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def healthz(self):
        self.client.get("/healthz", name="/healthz")


def figures(env: Environment, seconds: float) -> dict:
    """Locust's statistics of the window, per request name: every failure counted."""
    out = {}
    for (name, method), entry in env.stats.entries.items():
        if entry.num_requests == 0:
            continue
        out[name] = {"method": method, "requests": entry.num_requests, "failures": entry.num_failures,
                     "requests_per_s": entry.num_requests / seconds,
                     "median_ms": entry.get_response_time_percentile(0.5),
                     "p95_ms": entry.get_response_time_percentile(0.95),
                     "max_ms": entry.max_response_time}
    out["errors"] = [{"name": e.name, "error": str(e.error), "occurrences": e.occurrences}
                     for e in env.stats.errors.values()]
    return out


def run_users(user_class, users: int, host: str) -> tuple[Environment, object]:
    env = Environment(user_classes=[user_class], host=host)
    runner = env.create_local_runner()
    runner.start(users, spawn_rate=users)
    return env, runner


def wait_until(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        gevent.sleep(0.05)
    return True


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", choices=["healthz", "kinds", "rush", "paced", "arrivals"], required=True)
    parser.add_argument("--town", help="the JSON file bench_rush wrote")
    parser.add_argument("--host", required=True)
    parser.add_argument("--users", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--kinds", default="family space,planning page,cell toggle (htmx),login (POST)")
    parser.add_argument("--steps", default="32,64,128", help="paced: how many parents tap, in turn")
    parser.add_argument("--pace", type=float, default=2.0, help="paced: a parent's mean pause between taps, s")
    parser.add_argument("--rate", type=float, default=2.0, help="arrivals: families coming in per second")
    parser.add_argument("--warm", type=float, default=100.0, help="arrivals: seconds before the window")
    parser.add_argument("--think", type=float, default=1.0, help="arrivals: the pauses after pages, x a person's")
    parser.add_argument("--server", default="", help="the server's process ids (paced, arrivals: its CPU per window)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    town = json.load(open(args.town)) if args.town else {}
    roots = {int(pid) for pid in args.server.split(",") if pid}  # the server's processes, for its CPU
    SETUP["town"] = town
    result = {"scenario": args.scenario, "users": args.users}
    if args.scenario == "healthz":
        env, runner = run_users(HealthzUser, args.users, args.host)
        gevent.sleep(1)
        env.stats.reset_all()
        started = time.monotonic()
        gevent.sleep(args.seconds)
        result["figures"] = figures(env, time.monotonic() - started)
        runner.quit()
    elif args.scenario == "kinds":
        SETUP["loaders"] = [tuple(x) for x in town["loaders"]]
        env, runner = run_users(LoadedParent, args.users, args.host)
        if not wait_until(lambda: STATE["ready"] == args.users, 120):
            raise SystemExit(f"only {STATE['ready']} of {args.users} parents could log in")
        result["kinds"] = {}
        for kind in args.kinds.split(","):
            STATE["kind"] = None
            gevent.sleep(0.5)  # the previous kind's requests end
            env.stats.reset_all()
            STATE["kind"] = kind
            started = time.monotonic()
            gevent.sleep(args.seconds)
            STATE["kind"] = None
            result["kinds"][kind] = figures(env, time.monotonic() - started)
        runner.quit()
    elif args.scenario == "paced":
        steps = [int(n) for n in args.steps.split(",")]
        SETUP["loaders"], SETUP["pace"] = [tuple(x) for x in town["loaders"]], args.pace
        env, runner = run_users(PacedParent, max(steps), args.host)
        if not wait_until(lambda: STATE["ready"] == max(steps), 300):
            raise SystemExit(f"only {STATE['ready']} of {max(steps)} parents could log in")
        result.update(pace=args.pace, window=args.seconds, steps=[])
        for parents in steps:
            STATE["active"] = parents
            gevent.sleep(min(args.pace, args.seconds / 4))  # the step's parents start tapping, unrecorded
            env.stats.reset_all()
            started, server = time.monotonic(), tree_cpu_seconds(roots)
            gevent.sleep(args.seconds)
            elapsed = time.monotonic() - started
            result["steps"].append({"parents": parents, "server_cores": (tree_cpu_seconds(roots) - server) / elapsed,
                                    **figures(env, elapsed)})
        STATE["active"] = 0
        runner.quit()
    elif args.scenario == "arrivals":
        families = [tuple(x) for x in town["families"]]
        SETUP["families"], SETUP["pace"], SETUP["think"] = iter(families), args.pace, args.think
        env = Environment(user_classes=[ArrivingParent], host=args.host)
        runner = env.create_local_runner()
        runner.start(min(len(families), round(args.rate * (args.warm + args.seconds))), spawn_rate=args.rate)
        gevent.sleep(args.warm)
        env.stats.reset_all()
        started, server = time.monotonic(), tree_cpu_seconds(roots)
        gevent.sleep(args.seconds)
        elapsed, ended = time.monotonic() - started, time.monotonic()
        confirmed = sum(started <= t <= ended for t in STATE["confirmed_at"])
        result.update(rate=args.rate, pace=args.pace, warm=args.warm, window=args.seconds, figures=figures(env, elapsed),
                      window_server_cores=(tree_cpu_seconds(roots) - server) / elapsed,
                      pauses={k: v * args.think for k, v in PAUSES.items()}, confirmed=confirmed,
                      confirmations_per_s=confirmed / elapsed,
                      journeys_failed=STATE["journeys_failed"], families_started=min(len(families), runner.user_count))
        runner.quit()
    else:
        families = [tuple(x) for x in town["families"]]
        SETUP["families"] = iter(families)
        env, runner = run_users(RushParent, args.users, args.host)
        started = time.monotonic()
        wait_until(lambda: STATE["done"] == len(families), 3600)
        elapsed = time.monotonic() - started
        runner.quit()
        result.update(figures=figures(env, elapsed), seconds=elapsed, families=len(families),
                      journeys_failed=STATE["journeys_failed"], confirmations_per_s=(len(families) - STATE["journeys_failed"]) / elapsed,
                      school_families=STATE["school_done"], school_failed=STATE["school_failed"])
    json.dump(result, open(args.out, "w"), indent=1)


if __name__ == "__main__":
    main()
