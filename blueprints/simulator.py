"""A local stand-in for the payment providers, for the demo and the tests: it speaks their real protocols.

- SystemPay / PayZen: it receives the signed form the portal sends to the bank, lets the visitor pay,
  refuse or abandon, then answers as the provider does: a signed server-to-server notification (retried
  until the portal answers 200, as providers do) and the visitor sent back with the signed result.
- PayFiP (DGFiP): it serves eopayment's own WSDL with its own address and answers the SOAP calls
  eopayment makes (creerPaiementSecurise, recupererDetailPaiementSecurise, recupererDetailClient, with
  PayFiP's error codes P1 and P5); it plays PayFiP's payment page, posts ``idOp=…`` to the notification
  address and sends the visitor back to the redirect address.

Never enabled in production (PAYMENT_SIMULATOR). PayFiP operations are kept in this process's memory:
the simulator serves one process (``make run``, the tests), not a town.
"""
from __future__ import annotations

import secrets
import threading
import time
import urllib.parse
import urllib.request
from datetime import datetime
from pathlib import Path
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

import eopayment
from flask import Blueprint, abort, current_app, redirect, render_template, request
from lxml import etree

from services import payments
from services.links import external_url

bp = Blueprint("simulator", __name__, url_prefix="/simulateur-paiement")

OUTCOMES = {
    "payer": {"vads_result": "00", "vads_auth_result": "00", "vads_trans_status": "AUTHORISED"},
    "payer-retard": {"vads_result": "00", "vads_auth_result": "00", "vads_trans_status": "AUTHORISED"},
    "refuser": {"vads_result": "05", "vads_auth_result": "05", "vads_trans_status": "REFUSED"},
    "abandonner": {"vads_result": "17", "vads_auth_result": "", "vads_trans_status": "ABANDONED"},
}
PAYFIP_RESULTS = {"payer": "P", "payer-retard": "P", "refuser": "R", "abandonner": "A"}
# Seconds before each try of a notification: providers try again when the portal does not answer 200.
RETRY_DELAYS = (0, 1, 2, 5, 10)
LATE_SECONDS = 3.0  # "confirmation en retard": the notification comes after the visitor is back
SOAP_DELAY = 0.0  # tests: seconds PayFiP's web service takes to answer (a slow provider)


@bp.before_request
def only_when_enabled():
    if not current_app.config.get("PAYMENT_SIMULATOR"):
        abort(404)


# --- SystemPay / PayZen ---------------------------------------------------------------------------


def _bank():
    return payments.provider(current_app.config).payment.backend


def sign(fields: dict) -> dict:
    """The fields with the bank's signature (the certificate of their vads_ctx_mode)."""
    signed = dict(fields)
    signed["signature"] = _bank().signature(signed)
    return signed


@bp.post("/")
def entry():
    """Page: the bank's payment page, for a signed request from the portal."""
    fields = request.form.to_dict()
    if not fields.get("signature") or _bank().signature(fields) != fields["signature"]:
        return render_template("simulator/page.html", error="Demande de paiement non signée : refusée.", fields={}), 400
    return render_template("simulator/page.html", fields=fields, error=None, action="simulator.decision",
                           amount_cents=int(fields.get("vads_amount", "0")), order=fields.get("vads_order_id"))


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
    _notify_later(fields.get("vads_url_check"), body, LATE_SECONDS if choice == "payer-retard" else 0.0)
    return_url = fields.get("vads_url_return") or "/"
    if choice == "payer-retard":  # some providers send the parent back without the result
        return redirect(return_url)
    return redirect(f"{return_url}?{body}")


# --- PayFiP ---------------------------------------------------------------------------------------

RESOURCES = Path(eopayment.__file__).resolve().parent / "resource"
SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
PAYFIP_NS = ("http://securite.service.tpa.cp.finances.gouv.fr/services/mas_securite/"
             "contrat_paiement_securise/PaiementSecuriseService")
DETAIL_FIELDS = ("dattrans", "exer", "heurtrans", "idOp", "mel", "montant", "numauto", "numcli", "objet", "refdet",
                 "resultrans", "saisie")  # the order of RecupererDetailPaiementSecuriseResponse in the schema
_operations: dict[str, dict] = {}
_lock = threading.Lock()


@bp.get("/payfip/<name>.xsd")
def payfip_schema(name: str):
    """The XSD files the WSDL imports, as eopayment ships them."""
    path = RESOURCES / f"{name}.xsd"
    if not name.startswith("PaiementSecuriseService_schema") or not path.is_file():
        abort(404)
    return path.read_bytes(), 200, {"Content-Type": "text/xml; charset=utf-8"}


@bp.route("/payfip/securite", methods=["GET", "POST"])
def payfip_service():
    """PayFiP's web service: the WSDL on GET ?wsdl, the SOAP operations on POST."""
    if request.method == "GET":
        wsdl = (RESOURCES / "PaiementSecuriseService.wsdl").read_text()
        wsdl = wsdl.replace("https://www.payfip.gouv.fr/tpa/services/securite", external_url("simulator.payfip_service"))
        return wsdl, 200, {"Content-Type": "text/xml; charset=utf-8"}
    try:
        body = etree.fromstring(request.get_data()).find(f"{{{SOAP_NS}}}Body")
        call = body[0]
    except (etree.XMLSyntaxError, TypeError, IndexError):
        return _fault("S:Client", "Requête SOAP illisible")
    time.sleep(SOAP_DELAY)
    operation = etree.QName(call).localname
    args = {etree.QName(e).localname: (e.text or "") for e in (call.find("arg0") if call.find("arg0") is not None else [])}
    if operation == "creerPaiementSecurise":
        return _create(args)
    if operation == "recupererDetailPaiementSecurise":
        return _detail(args.get("idOp", ""))
    if operation == "recupererDetailClient":
        return _reply(operation, {"libelleN1": "Régie de démonstration", "libelleN2": "", "libelleN3": "",
                                  "numcli": args.get("numCli", "")})
    return _fault("S:Client", f"Opération inconnue : {operation}")


def _create(args: dict):
    if args.get("numcli") != payments.SIMULATOR_NUMCLI:
        return _functional_error("O1", "Numéro de client inconnu")
    if not args.get("montant", "").isdigit() or not args.get("refdet") or not args.get("urlnotif"):
        return _functional_error("O2", "Paramètres de la demande invalides")
    idop = secrets.token_hex(16)
    with _lock:
        _operations[idop] = {**args, "idOp": idop, "created": time.time(), "resultrans": None, "numauto": ""}
    return _reply("creerPaiementSecurise", {"idOp": idop})


def _detail(idop: str):
    with _lock:
        op = dict(_operations.get(idop) or {})
    if not op:
        return _functional_error("P1", "Identifiant d'opération inconnu")
    if not op["resultrans"]:  # the visitor has not finished on the payment page (or closed it)
        return _functional_error("P5", "Résultat de la transaction non connu")
    at = datetime.fromtimestamp(op["decided"], ZoneInfo("Europe/Paris"))
    values = {**op, "dattrans": at.strftime("%d%m%Y"), "heurtrans": at.strftime("%H%M")}
    return _reply("recupererDetailPaiementSecurise", {name: values.get(name) or "" for name in DETAIL_FIELDS})


def _reply(operation: str, values: dict):
    fields = "".join(f"<{k}>{escape(str(v))}</{k}>" for k, v in values.items())
    envelope = (f'<S:Envelope xmlns:S="{SOAP_NS}"><S:Body><ns2:{operation}Response xmlns:ns2="{PAYFIP_NS}">'
                f"<return>{fields}</return></ns2:{operation}Response></S:Body></S:Envelope>")
    return envelope, 200, {"Content-Type": "text/xml; charset=utf-8"}


def _functional_error(code: str, label: str):
    detail = (f'<ns2:FonctionnelleErreur xmlns:ns2="{PAYFIP_NS}"><code>{code}</code><descriptif>{escape(label)}'
              f"</descriptif><libelle>{escape(label)}</libelle><message>{escape(label)}</message>"
              "<severite>2</severite></ns2:FonctionnelleErreur>")
    return _fault("S:Server", "fr.gouv.finances.cp.tpa.webservice.exceptions.FonctionnelleErreur", detail)


def _fault(code: str, message: str, detail: str = "") -> tuple:
    envelope = (f'<S:Envelope xmlns:S="{SOAP_NS}"><S:Body><S:Fault><faultcode>{code}</faultcode>'
                f"<faultstring>{escape(message)}</faultstring>{f'<detail>{detail}</detail>' if detail else ''}"
                "</S:Fault></S:Body></S:Envelope>")
    return envelope, 500, {"Content-Type": "text/xml; charset=utf-8"}  # SOAP 1.1: a fault is a 500


@bp.get("/payfip/paiement")
def payfip_page():
    """Page: PayFiP's payment page for an idop."""
    idop = request.args.get("idop", "")
    with _lock:
        op = dict(_operations.get(idop) or {})
    if not op or op["resultrans"]:
        return render_template("simulator/page.html", error="Cette opération de paiement n'existe pas ou est terminée.",
                               fields={}), 404
    return render_template("simulator/page.html", fields={"idop": idop}, error=None, action="simulator.payfip_decision",
                           amount_cents=int(op["montant"]), order=op["refdet"], payfip=True)


@bp.post("/payfip/decision")
def payfip_decision():
    """Pay, refuse or abandon on PayFiP's page: PayFiP posts idOp to the portal, then sends the visitor back."""
    idop, choice = request.form.get("idop", ""), request.form.get("choix", "")
    if choice not in PAYFIP_RESULTS:
        abort(400)
    with _lock:
        op = _operations.get(idop)
        if op is None or op["resultrans"]:
            abort(404)
        op.update(resultrans=PAYFIP_RESULTS[choice], decided=time.time(),
                  numauto=f"{secrets.randbelow(10**6):06d}" if choice.startswith("payer") else "")
        op = dict(op)
    _notify_later(op["urlnotif"], urllib.parse.urlencode({"idOp": idop}),
                  LATE_SECONDS if choice == "payer-retard" else 0.0)
    target = op.get("urlredirect") or "/"
    return redirect(f"{target}{'&' if '?' in target else '?'}idop={idop}", code=303)


# --- notifications --------------------------------------------------------------------------------


def _notify_later(url: str | None, body: str, delay: float = 0.0) -> None:
    """Notify the portal: at once (before the visitor is sent back) unless late; retried in the background,
    like a provider, until the portal answers 200."""
    if not url:
        return
    if delay == 0 and _post(url, body):
        return
    threading.Thread(target=notify, args=(url, body, delay or RETRY_DELAYS[1]), daemon=True).start()


def notify(url: str, body: str, delay: float = 0.0) -> int:
    """Post ``body`` to ``url`` until it answers 200 (or the tries run out). Returns the number of tries."""
    time.sleep(delay)
    for tries, wait in enumerate(RETRY_DELAYS, start=1):
        time.sleep(wait)
        if _post(url, body):
            return tries
    return 0


def _post(url: str, body: str) -> bool:
    request_ = urllib.request.Request(url, data=body.encode(), method="POST",
                                      headers={"Content-Type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.urlopen(request_, timeout=10) as answer:
            return answer.status == 200
    except OSError:  # refused, 5xx, timeout: try again later
        return False
