"""A local payment simulator that plays the bank (SystemPay protocol), for the demo and the tests.

It receives the signed form the portal sends to a bank, lets the visitor pay, refuse or abandon,
then answers exactly as the provider does: a signed server-to-server notification to the portal,
and the parent sent back to the portal with the signed result. Never enabled in production
(PAYMENT_SIMULATOR).
"""
from __future__ import annotations

import threading
import time
import urllib.parse
import urllib.request

from flask import Blueprint, abort, current_app, redirect, render_template, request

from services.links import external_url

bp = Blueprint("simulator", __name__, url_prefix="/simulateur-paiement")

OUTCOMES = {
    "payer": {"vads_result": "00", "vads_auth_result": "00", "vads_trans_status": "AUTHORISED"},
    "payer-retard": {"vads_result": "00", "vads_auth_result": "00", "vads_trans_status": "AUTHORISED"},
    "refuser": {"vads_result": "05", "vads_auth_result": "05", "vads_trans_status": "REFUSED"},
    "abandonner": {"vads_result": "17", "vads_auth_result": "", "vads_trans_status": "ABANDONED"},
}


@bp.before_request
def only_when_enabled():
    if not current_app.config.get("PAYMENT_SIMULATOR"):
        abort(404)


def _bank():
    from services import payments

    return payments.backend(current_app.config, simulator_url=external_url("simulator.entry")).backend


def sign(fields: dict) -> dict:
    """The fields with the bank's signature (the secret shared with the portal)."""
    signed = dict(fields)
    signed["signature"] = _bank().signature(signed)
    return signed


@bp.post("/")
def entry():
    """Page: the bank's payment page, for a signed request from the portal."""
    fields = request.form.to_dict()
    if not fields.get("signature") or _bank().signature(fields) != fields["signature"]:
        return render_template("simulator/page.html", error="Demande de paiement non signée : refusée.", fields={}), 400
    return render_template("simulator/page.html", fields=fields, error=None,
                           amount_cents=int(fields.get("vads_amount", "0")))


@bp.post("/decision")
def decision():
    """Pay, refuse or abandon: notify the portal (unless late) and send the visitor back."""
    fields = request.form.to_dict()
    choice = fields.pop("choix", "")
    if choice not in OUTCOMES or _bank().signature(fields) != fields.get("signature"):
        abort(400)
    answer = {k: v for k, v in fields.items() if k.startswith("vads_")}
    answer.update(OUTCOMES[choice])
    answer["vads_extra_result"] = ""
    if choice.startswith("payer"):
        answer["vads_auth_number"] = f"{int(time.time()) % 1000000:06d}"
    answer = sign(answer)
    body = urllib.parse.urlencode(answer)
    notify_url = fields.get("vads_url_check")
    if notify_url:
        if choice == "payer-retard":  # the notification arrives after the parent is back
            threading.Thread(target=_notify, args=(notify_url, body, 3.0), daemon=True).start()
        else:
            _notify(notify_url, body)
    return_url = fields.get("vads_url_return") or "/"
    if choice == "payer-retard":  # some providers send the parent back without the result
        return redirect(return_url)
    return redirect(f"{return_url}?{body}")


def _notify(url: str, body: str, delay: float = 0.0) -> None:
    if delay:
        time.sleep(delay)
    try:
        urllib.request.urlopen(urllib.request.Request(url, data=body.encode(), method="POST"), timeout=10).read()
    except OSError:
        pass  # the portal will still learn the outcome from the return, or from the next notification
