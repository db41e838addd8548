"""deploy/nginx.conf, run for real (issue 7): nginx with TLS in front of two gunicorn processes on one
database. Static files come from nginx (gzip, cache), pages from either process, the session cookie is
Secure behind the proxy, brotli to the browsers that ask for it, a login made through one process holds on the other, and a process that
stops is skipped."""
import gzip
import http.client
import http.cookiejar
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import brotli
import pytest

from tests.conftest import free_port, missing
from tests.nginx import BROTLI, NGINX, nginx_config

ROOT = Path(__file__).resolve().parent.parent


def serve(url: str, port: int, tmp_path: Path):
    env = dict(os.environ, DATABASE_URL=url, FLASK_SECRET_KEY="one-secret-for-every-server", FLASK_PROXY_COUNT="1",
               FLASK_ARGON2_TIME_COST="1", FLASK_ARGON2_MEMORY_COST="1024", FLASK_OUTBOX_INTERVAL="0",
               FLASK_BASE_URL=f"https://{SITE}")
    return subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py", "--bind", f"127.0.0.1:{port}", "--workers", "1",
         "--threads", "2", "--access-logfile", str(tmp_path / f"access-{port}.log"), "app:create_app()"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=open(tmp_path / f"gunicorn-{port}.log", "w"))


SITE = "famille.ville.fr"  # the address of deploy/nginx.conf, sent as the Host header to nginx on 127.0.0.1


class Browser:
    """One parent's browser talking to nginx over HTTPS (the test certificate is self-signed)."""

    def __init__(self, host: str = SITE):
        self.host = host
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context),
                                                  urllib.request.HTTPCookieProcessor(self.jar))

    def open(self, url, data=None, headers=None):
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        request = urllib.request.Request(url, data=body, headers={"Accept-Encoding": "gzip", "Host": self.host,
                                                                  **(headers or {})})
        with self.opener.open(request, timeout=10) as response:
            raw = response.read()
            text = gzip.decompress(raw) if response.headers.get("Content-Encoding") == "gzip" else raw
            return response, text.decode("utf-8", "replace")

    def raw(self, url, headers):
        """The body as the wire carried it (not decompressed)."""
        request = urllib.request.Request(url, headers={"Host": self.host, **headers})
        with self.opener.open(request, timeout=10) as response:
            return response, response.read()


def wait_for(url: str, opener=None):
    for _ in range(150):
        try:
            (opener or urllib.request.urlopen)(url, timeout=1)
            return
        except (OSError, urllib.error.URLError):
            time.sleep(0.1)
    raise AssertionError(f"nothing answers at {url}")


def test_nginx_in_front_of_two_app_processes(app, database_url, tmp_path):
    if NGINX is None:
        missing("nginx missing: make browser installs it")
    if not BROTLI.exists():
        missing("nginx's brotli module missing (libnginx-mod-http-brotli-filter): make browser installs it")
    ports = [free_port(), free_port()]
    https, http_port = free_port(), free_port()
    main = nginx_config(tmp_path, https, http_port, ports)
    check = subprocess.run([NGINX, "-t", "-p", str(tmp_path), "-c", str(main), "-e", str(tmp_path / "error.log")],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    servers = [serve(database_url, p, tmp_path) for p in ports]
    proxy = subprocess.Popen([NGINX, "-p", str(tmp_path), "-c", str(main), "-e", str(tmp_path / "error.log")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"https://127.0.0.1:{https}"
    try:
        for p in ports:
            wait_for(f"http://127.0.0.1:{p}/healthz")
        browser = Browser()
        wait_for(base + "/healthz", lambda url, timeout: browser.open(url))

        # Any other host name is dropped by nginx's default_server: no answer at all, on both ports.
        for url in (base + "/identifiant-oublie", f"http://127.0.0.1:{http_port}/"):
            with pytest.raises(http.client.RemoteDisconnected):
                Browser("evil.test").open(url)
        with pytest.raises(http.client.RemoteDisconnected):
            Browser().open(base + "/identifiant-oublie", headers={"Host": "127.0.0.1"})

        # Plain HTTP is sent to HTTPS.
        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args, **kwargs):
                return None

        with pytest.raises(urllib.error.HTTPError) as moved:
            urllib.request.build_opener(NoRedirect).open(
                urllib.request.Request(f"http://127.0.0.1:{http_port}/factures", headers={"Host": SITE}), timeout=5)
        assert moved.value.code == 301 and moved.value.headers["Location"] == f"https://{SITE}/factures"

        # Static files: served by nginx itself (no header of the app), compressed; under the address the
        # pages give (its content's hash) cached for good, else a day.
        response, css = browser.open(base + "/static/ribambelle.css")
        assert response.status == 200 and ".cell" in css
        assert response.headers["Content-Encoding"] == "gzip" and response.headers["Cache-Control"] == "public, max-age=86400"
        # brotli to a browser that asks for it: the same file, smaller than gzip's
        response, squeezed = browser.raw(base + "/static/ribambelle.css", {"Accept-Encoding": "br, gzip"})
        assert response.headers["Content-Encoding"] == "br" and brotli.decompress(squeezed).decode() == css
        assert len(squeezed) < len(gzip.compress(css.encode(), 6))
        _, login_page = browser.open(base + "/")
        css_url = re.search(r'href="(/static/ribambelle\.css\?v=[0-9a-f]{12})"', login_page).group(1)
        response, _ = browser.open(base + css_url)
        assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert "Content-Security-Policy" not in response.headers
        assert response.headers["X-Content-Type-Options"] == "nosniff"

        # Pages: from the app (its CSP), compressed by nginx; the session cookie is Secure behind the proxy.
        response, page = browser.open(base + "/")
        assert "Content-Security-Policy" in response.headers and response.headers["Content-Encoding"] == "gzip"
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
        response, home = browser.open(base + "/", {"csrf_token": token, "email": "zoe.parent@tilleuls.test",
                                                    "password": "zoe-parent-tilleuls"}, {"Referer": f"https://{SITE}/"})
        assert "Mon compte famille" in home
        # The security log works under gunicorn: the login is one JSON line in its error log.
        deadline = time.time() + 5
        while time.time() < deadline and not any(
                '"event": "login.success"' in (tmp_path / f"gunicorn-{p}.log").read_text() for p in ports):
            time.sleep(0.1)
        logged = "".join((tmp_path / f"gunicorn-{p}.log").read_text() for p in ports)
        line = next(json.loads(l.split(": ", 1)[1]) for l in logged.splitlines() if '"login.success"' in l)
        assert line["event"] == "login.success" and line["role"] == "parent" and line["ip"] == "127.0.0.1"
        assert "zoe-parent-tilleuls" not in logged and token not in logged

        # The secret of a single-use link never reaches an access log, nginx's or gunicorn's.
        with pytest.raises(urllib.error.HTTPError):
            browser.open(base + "/mot-de-passe/nouveau/secret-du-lien-1234", headers={"Referer": f"https://{SITE}/compte/login/confirmer/autre-secret-5678"})
        time.sleep(0.5)
        access = (tmp_path / "nginx-access.log").read_text() + "".join(
            (tmp_path / f"access-{p}.log").read_text() for p in ports)
        assert "/mot-de-passe/nouveau/…" in access and "/compte/login/confirmer/…" in access
        assert "secret-du-lien-1234" not in access and "autre-secret-5678" not in access
        session = next(c for c in browser.jar if c.name == "ribambelle_session")
        assert session.secure
        for _ in range(6):  # round robin: both processes answer, the session holds on each
            assert "Mon compte famille" in browser.open(base + "/")[1]
        served = [len((tmp_path / f"access-{p}.log").read_text().splitlines()) for p in ports]
        assert all(n >= 3 for n in served), served

        # Slow clients (headers sent a few bytes at a time, never finished) and a crowd of idle connections
        # are held by nginx, not by gunicorn's few threads: everybody else is still served at once.
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        slow = []
        for _ in range(6):
            tls = context.wrap_socket(socket.create_connection(("127.0.0.1", https), timeout=5), server_hostname=SITE)
            tls.sendall(f"GET /factures HTTP/1.1\r\nHost: {SITE}\r\nX-Lent: ".encode())
            slow.append(tls)
        idle = [socket.create_connection(("127.0.0.1", https), timeout=5) for _ in range(100)]
        try:
            for _ in range(4):
                started = time.time()
                assert "Mon compte famille" in browser.open(base + "/")[1]
                assert time.time() - started < 2
            for tls in slow:  # still trickling in
                tls.sendall(b"x")
        finally:
            for sock in slow + idle:
                sock.close()

        # The same slow clients straight to one gunicorn process (2 threads) hold it: why it listens on
        # 127.0.0.1 only, behind nginx.
        direct = []
        for _ in range(4):
            sock = socket.create_connection(("127.0.0.1", ports[1]), timeout=5)
            sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Lent: ")
            direct.append(sock)
        try:
            with pytest.raises(OSError):  # timed out: no thread left for anybody else
                urllib.request.urlopen(f"http://127.0.0.1:{ports[1]}/healthz", timeout=2)
        finally:
            for sock in direct:
                sock.close()

        # One process stops: nginx sends the requests to the other one.
        servers[0].terminate()
        servers[0].wait(10)
        for _ in range(4):
            assert "Mon compte famille" in browser.open(base + "/")[1]
    finally:
        proxy.terminate()
        proxy.wait(10)
        for s in servers:
            if s.poll() is None:
                s.terminate()
                s.wait(10)


def test_gunicorn_keeps_nginx_connections_open_longer_than_nginx_reuses_them():
    """Else gunicorn closes an idle connection just as nginx sends a request on it: reset, and a POST (a
    parent's click) answered 502, since nginx resends only what may be sent twice (seen in bench_rush)."""
    site = (ROOT / "deploy" / "nginx.conf").read_text()
    upstream = re.search(r"upstream ribambelle \{(.*?)\}", site, re.S).group(1)
    reuse = int(re.search(r"^\s*keepalive_timeout (\d+)s;", upstream, re.M).group(1))
    settings = {}
    exec((ROOT / "deploy" / "gunicorn.conf.py").read_text(), settings)
    assert settings["keepalive"] > reuse >= 10
