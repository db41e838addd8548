"""gunicorn settings for Ribambelle: `gunicorn -c deploy/gunicorn.conf.py "app:create_app()"`.

deploy/ribambelle.service starts it so; tests/test_deploy.py runs this file behind nginx.
"""
import re

from gunicorn.glogging import Logger

# Loopback only: nginx in front absorbs slow clients and drops unknown host names; never expose gunicorn.
bind = "127.0.0.1:8000"
workers = 4
threads = 4
backlog = 2048
timeout = 60
# nginx keeps its connections to the app open (its upstream "keepalive"): gunicorn must not close an idle
# one before nginx stops reusing it (keepalive_timeout 60s there), or a request nginx sends on it at that
# moment is reset, and a POST is answered 502 (nginx retries only what may be sent twice).
keepalive = 75

# Access and error logs to stdout/stderr: journald under systemd (`journalctl -u ribambelle`). The app's
# own lines (the security log, JSON) go to the error log.
accesslog = "-"
errorlog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms "%(f)s" "%(a)s"'

# Single-use links carry a secret in their path: it never reaches a log file, nor does the Referer
# header a browser sends from such a page.
SECRET_IN_PATH = re.compile(r"(/mot-de-passe/nouveau/|/compte/login/confirmer/)[^/?#\s\"]+")


class RedactingLogger(Logger):
    """gunicorn's access log with the secrets of single-use links replaced by '…'."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        for key in ("r", "U", "f"):
            if isinstance(atoms.get(key), str):
                atoms[key] = SECRET_IN_PATH.sub(r"\1…", atoms[key])
        return atoms


logger_class = RedactingLogger
