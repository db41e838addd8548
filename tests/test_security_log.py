"""The security log (ASVS V7): one JSON line per event — who, what, from where, when — never a secret."""
import json
import logging

import pytest
from sqlmodel import select

from models import User
from services.security import log_event


@pytest.fixture
def security_lines(caplog):
    caplog.set_level(logging.INFO, logger="ribambelle.security")

    def lines():
        return [json.loads(r.getMessage()) for r in caplog.records if r.name == "ribambelle.security"]

    return lines


def events(lines):
    return [line["event"] for line in lines]


def test_logins_logouts_and_password_events_are_logged_without_secrets(app, client, auth, smtp, security_lines):
    client.submit("/", {"email": "zoe.parent@tilleuls.test", "password": "pas-le-bon-mot-de-passe"})
    auth.login()
    client.submit("/compte/mot-de-passe/modifier", {"current": "zoe-parent-tilleuls",
                                                   "password": "trois tortues sous la pluie", "confirm": "trois tortues sous la pluie"})
    auth.logout()
    client.submit("/identifiant-oublie", {"email": "zoe.parent@tilleuls.test"})
    lines = security_lines()
    assert events(lines) == ["login.failure", "login.success", "password.changed", "logout", "password.reset_requested"]
    failure, success = lines[0], lines[1]
    assert failure["login"] == "zoe.parent@tilleuls.test" and failure["user"] is None and failure["ip"] == "127.0.0.1"
    assert success["user"] == lines[2]["user"] and success["role"] == "parent" and success["at"].endswith("+00:00")
    text = json.dumps(lines)
    assert "pas-le-bon-mot-de-passe" not in text and "trois tortues" not in text and "zoe-parent-tilleuls" not in text
    link = smtp.link(smtp.wait_for("zoe.parent@tilleuls.test")[0])
    assert link.rsplit("/", 1)[1] not in text


def test_throttled_logins_are_logged(client, security_lines):
    for _ in range(5):
        client.submit("/", {"email": "zoe.parent@tilleuls.test", "password": "mauvais-mot-de-passe"})
    assert "login.throttled" in events(security_lines())


def test_staff_actions_exports_and_refused_hosts_are_logged(app, client, auth, db, security_lines):
    auth.login("agent@tilleuls.test")
    client.get("/agent/exports/enfants.csv")
    auth.logout()
    auth.login("admin@tilleuls.test")
    parent = db.exec(select(User).where(User.email == "rayan.parent@tilleuls.test")).one()
    client.submit("/admin/comptes", {"actif": "0"}, action=f"/admin/comptes/{parent.id}/activation")
    app.test_client().get("/", headers={"Host": "evil.test"})
    lines = security_lines()
    export = next(l for l in lines if l["event"] == "export.health_data")
    assert export["what"] == "children" and export["user"] is not None
    deactivated = next(l for l in lines if l["event"] == "account.deactivated")
    assert deactivated["target"] == "rayan.parent@tilleuls.test"
    refused = next(l for l in lines if l["event"] == "host.refused")
    assert refused["host"] == "evil.test"


def test_log_event_names_nobody_outside_a_request(app, security_lines):
    with app.app_context():
        log_event("payment.anomaly", reason="unsigned")
    (line,) = security_lines()
    assert line == {"at": line["at"], "event": "payment.anomaly", "user": None, "ip": None, "reason": "unsigned"}
