"""Online payment through eopayment: PayFiP (the DGFiP's web service) and SystemPay/PayZen.

A payment is a transaction row with our own id (in the parent's return address), created before the
parent leaves for the provider, and the provider's reference (PayFiP's idop, SystemPay's transaction
id). The provider's answer — the notification, the parent's return, or a status asked for — is
applied once, only when it comes from the configured provider in the configured mode (test or
production, site or customer number) and for the amount asked; a paid invoice never goes back to
unpaid, and money beyond what the invoice owed becomes a credit (trop-perçu), never hidden.

How each backend is told and answers, as eopayment implements it:
- ``payfip_ws``: ``request()`` asks PayFiP's web service for an idop (SOAP ``creerPaiementSecurise``) and
  sends the parent to PayFiP's page; PayFiP posts ``idOp=…`` to the notification address and sends the
  parent back; the outcome itself is always read from PayFiP (``payment_status`` → SOAP
  ``recupererDetailPaiementSecurise``), so a forged notification carries no weight.
- ``systempayv2`` / ``payzen``: a signed form to the provider's page; the notification and the return
  carry the signed result (HMAC with the mode's certificate).
"""
from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import timedelta, timezone
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import eopayment
import zeep
from eopayment import payfip_ws
from sqlalchemy import update
from sqlmodel import Session, select

from models import Credit, DebitState, Invoice, InvoiceState, Payment, PaymentStatus, utcnow
from services.billing import BillingError
from services.links import external_url
from services.security import log_event

PENDING_LIFETIME = timedelta(minutes=30)  # unanswered this long: ask the provider, then expire
UNAVAILABLE = ("Le paiement en ligne est momentanément indisponible. Votre facture reste à payer : réessayez "
               "dans quelques minutes, ou réglez-la auprès de la régie.")

# The backends the portal supports: each one is played by the local simulator in the tests.
# (eopayment's "tipi" answers carry no signature at all, and Paybox's are signed with Paybox's own key,
# which no simulator can hold: neither is offered.)
SUPPORTED = {
    "payfip_ws": "PayFiP (DGFiP), service web",
    "systempayv2": "SystemPay (Banque Populaire, Caisse d'Épargne)",
    "payzen": "PayZen (Lyra)",
}
SIMULATOR_SITE_ID = "12345678"
SIMULATOR_NUMCLI = "123456"


class PaymentUnavailable(BillingError):
    """The provider could not be reached, was too slow, or answered an error: nothing was started."""

    def __init__(self):
        super().__init__(UNAVAILABLE)


class PaymentPending(BillingError):
    """An online payment of this invoice is already under way."""

    def __init__(self, payment: Payment):
        super().__init__("Un paiement en ligne de cette facture est déjà en cours.")
        self.payment = payment


def simulator_secrets(config: dict) -> dict:
    """The certificates the simulator and the portal share (derived from the secret key)."""
    def derived(mode):
        return hashlib.sha256(f"simulator:{mode}:{config['SECRET_KEY']}".encode()).hexdigest()[:32]

    return {"secret_test": derived("test"), "secret_production": derived("production")}


def _simulated_options(kind: str, config: dict) -> dict:
    """Options that point the backend at the local simulator (demo and tests) instead of the provider."""
    if kind == "payfip_ws":
        return {"numcli": SIMULATOR_NUMCLI, "saisie": "T"}
    return {"service_url": external_url("simulator.entry"), "vads_site_id": SIMULATOR_SITE_ID,
            "signature_algo": "hmac_sha256", "vads_ctx_mode": "TEST", **simulator_secrets(config)}


def simulated_kind(config: dict) -> str | None:
    """Which protocol the simulator plays: PAYMENT_SIMULATOR = "payfip_ws", "systempayv2", "payzen" (or true)."""
    value = config.get("PAYMENT_SIMULATOR")
    if not value:
        return None
    return value if isinstance(value, str) and value in SUPPORTED else "systempayv2"


@dataclass
class Provider:
    """The configured eopayment backend, with what the portal checks of each answer."""

    kind: str
    options: dict
    payment: eopayment.Payment
    timeout: float
    simulated: bool = False

    @property
    def is_payfip(self) -> bool:
        return self.kind == "payfip_ws"

    def payfip_page(self, idop: str) -> str:
        """PayFiP's payment page for ``idop`` (the simulator's page in the demo and the tests)."""
        page = external_url("simulator.payfip_page") if self.simulated else payfip_ws.PAYMENT_URL
        return f"{page}?idop={idop}"

    def request(self, amount_cents: int, email: str, transaction_id: str, invoice: Invoice):
        """Ask the provider to start; (its reference, eopayment.URL or FORM, the address or form)."""
        amount = Decimal(amount_cents) / 100
        if self.is_payfip:
            # refdet: the invoice's number as PayFiP wants it (letters and digits); exer: its year.
            reference, kind, data = self.payment.request(
                amount, email=email, refdet=invoice.number.replace("-", ""), exer=str(invoice.month.year),
                transaction_id=transaction_id, subject=f"Facture {invoice.number}", timeout=self.timeout)
            return reference, eopayment.URL, self.payfip_page(reference)
        return self.payment.request(amount, email=email, orderid=invoice.number.replace("-", ""),
                                    transaction_id=transaction_id)

    def answer(self, query_string: str):
        """eopayment's reading of a signed answer (SystemPay): None when it cannot be read."""
        try:
            return self.payment.response(query_string)
        except Exception:
            return None

    def status(self, payment: Payment):
        """Ask the provider how the payment stands (PayFiP); None when it cannot say now."""
        if not self.is_payfip or not payment.provider_reference:
            return None
        created = payment.created_at if payment.created_at.tzinfo else payment.created_at.replace(tzinfo=timezone.utc)
        try:
            return self.payment.payment_status(payment.provider_reference, transaction_date=created,
                                               timeout=self.timeout)
        except Exception as exc:  # unreachable, slow or an error code: ask again later
            log_event("payment.provider_error", operation="status", payment=payment.id, error=_error_words(exc))
            return None

    def reference_of(self, response) -> str | None:
        """The provider reference an answer is about (what ``request`` returned)."""
        return response.order_id if self.is_payfip else response.transaction_id

    def foreign(self, response) -> str | None:
        """Why an answer is not one of this portal's configuration (mode, site or customer number), or None."""
        data = response.bank_data or {}
        if not data and response.result != eopayment.PAID:
            return None  # PayFiP's "unknown idop" or "no result yet": nothing is paid, nothing to check
        if self.is_payfip:
            expected_test = self.options.get("saisie", "T") == "T"
            site, expected_site = str(data.get("numcli") or ""), str(self.options.get("numcli") or "")
        else:
            expected_test = self.options.get("vads_ctx_mode", "TEST") == "TEST"
            site, expected_site = str(data.get("vads_site_id") or ""), str(self.options.get("vads_site_id") or "")
        if bool(response.test) != expected_test:
            return "test mode" if response.test else "production mode"
        if expected_site and site != expected_site:
            return "other site"
        return None


def provider(config: dict, return_url: str = "", notify_url: str = "") -> Provider:
    """The configured provider, with the return and notification addresses of this portal."""
    simulated = simulated_kind(config)
    kind = simulated or config["PAYMENT_BACKEND"]
    if kind not in SUPPORTED:
        raise RuntimeError(f"PAYMENT_BACKEND {kind!r} n'est pas pris en charge : {', '.join(SUPPORTED)}.")
    options = {**(_simulated_options(kind, config) if simulated else {}), **dict(config.get("PAYMENT_OPTIONS") or {})}
    if return_url:
        options["normal_return_url"] = return_url
    if notify_url:
        options["automatic_return_url"] = notify_url
    payment = eopayment.Payment(kind, options)
    timeout = float(config.get("PAYMENT_TIMEOUT") or 15)
    if kind == "payfip_ws" and (simulated or options.get("wsdl_url")):
        # eopayment's own PayFiP client, on the simulator's WSDL (or the one a town was given), fetched
        # within the same time limit as the calls.
        payment.backend.payfip = payfip_ws.PayFiP(
            wsdl_url=options.get("wsdl_url") or external_url("simulator.payfip_service") + "?wsdl",
            zeep_client_kwargs={"transport": zeep.Transport(timeout=timeout, operation_timeout=timeout)})
    return Provider(kind, options, payment, timeout, simulated=bool(simulated))


def provider_origins(config: dict) -> list[str]:
    """Where "Payer en ligne" may send the parent's browser (CSP form-action also covers redirects).

    Read from the configured backend: its service URL (SystemPay, PayZen) or eopayment's PayFiP page.
    The simulator lives on the portal's own origin.
    """
    if simulated_kind(config):
        return []
    kind = config.get("PAYMENT_BACKEND")
    if kind == "payfip_ws":
        url = payfip_ws.PAYMENT_URL
    elif kind in SUPPORTED:
        url = (config.get("PAYMENT_OPTIONS") or {}).get("service_url") or eopayment.get_backend(kind).service_url
    else:
        return []
    parts = urlsplit(url)
    return [f"{parts.scheme}://{parts.netloc}"]


def _error_words(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]


def new_transaction_id() -> str:
    return uuid.uuid4().hex


def payable_problem(invoice: Invoice, today) -> str | None:
    """Why this invoice cannot be paid online now, in French; None when it can."""
    state = invoice.state(today)
    if state == InvoiceState.CANCELLED:
        return "Cette facture est annulée : il n'y a rien à payer."
    if state == InvoiceState.PAID:
        return "Cette facture est déjà payée."
    if invoice.debit_state == DebitState.PLANNED:
        return (f"Cette facture sera payée par prélèvement automatique le {invoice.debit_on:%d/%m/%Y} : "
                "vous n'avez rien à payer en ligne.")
    if state == InvoiceState.OVERDUE:
        return ("La date limite de paiement en ligne est dépassée : réglez cette facture auprès de la régie "
                "(espèces, chèque, CESU ou virement).")
    return None


def pending_payment(db: Session, invoice_id: int) -> Payment | None:
    """The online payment of this invoice under way, if any."""
    return db.exec(select(Payment).where(Payment.invoice_id == invoice_id, Payment.method == "online",
                                         Payment.status == PaymentStatus.PENDING).order_by(Payment.id.desc())).first()


def start(db: Session, prov: Provider, invoice: Invoice, email: str, today, transaction_id: str):
    """Create the transaction and ask the provider where to send the parent: (payment, kind, data).

    One online payment per invoice at a time: with one under way, ``PaymentPending``. With the provider
    unreachable, slow or refusing, ``PaymentUnavailable`` and nothing is left behind.
    """
    problem = payable_problem(invoice, today)
    if problem:
        raise BillingError(problem)
    refresh_pending(db, prov, invoice.id)
    # The invoice row locked while we look for a payment under way: two tabs cannot both start one.
    db.exec(select(Invoice).where(Invoice.id == invoice.id).with_for_update()).one()
    pending = pending_payment(db, invoice.id)
    if pending is not None:
        db.rollback()
        raise PaymentPending(pending)
    payment = Payment(invoice_id=invoice.id, family_id=invoice.family_id, amount_cents=invoice.left_cents,
                      method="online", status=PaymentStatus.PENDING, transaction_id=transaction_id)
    db.add(payment)
    db.commit()
    try:
        reference, kind, data = prov.request(payment.amount_cents, email, transaction_id, invoice)
    except Exception as exc:  # eopayment's PayFiPError, a timeout, a refused request: say so, keep nothing
        db.delete(payment)
        db.commit()
        log_event("payment.provider_error", operation="request", invoice=invoice.number, error=_error_words(exc))
        raise PaymentUnavailable() from exc
    payment.provider_reference = str(reference)
    db.add(payment)
    db.commit()
    return payment, kind, data


def resume(prov: Provider, payment: Payment, invoice: Invoice, email: str):
    """Send the parent back to a payment under way: PayFiP's page for its idop, SystemPay's form again."""
    if prov.is_payfip:
        return eopayment.URL, prov.payfip_page(payment.provider_reference)
    try:
        _, kind, data = prov.request(payment.amount_cents, email, payment.transaction_id, invoice)
    except Exception as exc:
        log_event("payment.provider_error", operation="resume", payment=payment.id, error=_error_words(exc))
        raise PaymentUnavailable() from exc
    return kind, data


def give_up(db: Session, payment: Payment) -> None:
    """The parent abandons a payment under way: "Abandonné". A later confirmation from the bank still counts."""
    db.execute(update(Payment).where(Payment.id == payment.id, Payment.status == PaymentStatus.PENDING)
               .values(status="cancelled", completed_at=utcnow()))
    db.commit()


def amount_paid_cents(response) -> int | None:
    """What the provider says was paid, in cents, when it says it."""
    data = response.bank_data or {}
    for key in ("vads_amount", "montant", "amount"):
        if key in data:
            try:
                value = data[key][0] if isinstance(data[key], list) else data[key]
                return int(value)
            except (TypeError, ValueError):
                return None
    return None


RESULT_STATUS = {eopayment.PAID: "paid", eopayment.DENIED: "refused", eopayment.CANCELLED: "cancelled",
                 eopayment.EXPIRED: "expired"}


def find_answered(db: Session, prov: Provider, response) -> Payment | None:
    """The payment an answer is about, by the provider's reference."""
    reference = prov.reference_of(response)
    if not reference:
        return None
    return db.exec(select(Payment).where(Payment.method == "online", Payment.provider_reference == str(reference))).first()


def apply_response(db: Session, prov: Provider, response, payment: Payment | None = None) -> Payment | None:
    """Apply a provider answer once. Returns the payment, or None when the answer is not acceptable.

    ``db`` must be a ``writing_session``. A second (or late) answer for a payment already decided
    changes nothing; a confirmation after the payment expired or was given up is applied and flagged.
    """
    if response is None:
        log_event("payment.anomaly", reason="unreadable")
        return None
    if not response.signed:
        log_event("payment.anomaly", reason="unsigned", transaction=str(response.transaction_id)[:64])
        return None
    foreign = prov.foreign(response)
    if foreign:
        log_event("payment.anomaly", reason=foreign, transaction=str(response.transaction_id)[:64])
        return None
    found = find_answered(db, prov, response)
    if found is None or (payment is not None and found.id != payment.id):
        log_event("payment.anomaly", reason="unknown transaction", transaction=str(response.transaction_id)[:64])
        return None
    payment = found
    new_status = RESULT_STATUS.get(response.result)
    if new_status is None:  # WAITING, or a result eopayment could not read: nothing yet
        return payment
    if new_status == "paid":
        paid = amount_paid_cents(response)
        if paid is not None and paid != payment.amount_cents:
            log_event("payment.anomaly", reason="amount", payment=payment.id, asked=payment.amount_cents, paid=paid)
            return None  # not the amount asked: never applied
        late = payment.status in ("expired", "cancelled")
        # Paid beats everything but paid: a payment the bank took is never lost.
        moved = db.execute(update(Payment).where(Payment.id == payment.id, Payment.status != "paid")
                           .values(status="paid", completed_at=utcnow(),
                                   anomaly="Confirmé par la banque après expiration ou abandon" if late else "")).rowcount
        if moved == 1:
            db.refresh(payment)
            settle(db, payment)
            if late:
                log_event("payment.anomaly", reason="confirmed late", payment=payment.id)
    else:
        db.execute(update(Payment).where(Payment.id == payment.id, Payment.status == PaymentStatus.PENDING)
                   .values(status=new_status, completed_at=utcnow()))
    db.commit()
    db.refresh(payment)
    return payment


def settle(db: Session, payment: Payment) -> Credit | None:
    """Put a validated payment on its invoice, up to what is left to pay; the rest is the family's credit.

    The caller commits. The invoice row is locked first, so two payments settling at once see each other.
    """
    invoice = db.exec(select(Invoice).where(Invoice.id == payment.invoice_id).with_for_update()).one()
    owed = 0 if invoice.cancelled else invoice.left_cents
    applied = min(payment.amount_cents, owed)
    invoice.paid_cents += applied
    db.add(invoice)
    surplus = payment.amount_cents - applied
    if surplus <= 0:
        return None
    credit = Credit(family_id=payment.family_id, payment_id=payment.id, invoice_id=invoice.id, amount_cents=surplus)
    db.add(credit)
    log_event("payment.surplus", payment=payment.id, invoice=invoice.number, cents=surplus)
    return credit


def refresh_pending(db: Session, prov: Provider, invoice_id: int | None = None) -> None:
    """Pending online payments older than PENDING_LIFETIME: ask the provider where it can, then expire.

    A payment the provider says is still under way stays pending; one it cannot be asked about now
    (unreachable) stays pending too, and is asked again next time; one it says was paid is applied.
    """
    query = select(Payment).where(Payment.status == PaymentStatus.PENDING, Payment.method == "online",
                                  Payment.created_at < utcnow() - PENDING_LIFETIME)
    if invoice_id is not None:
        query = query.where(Payment.invoice_id == invoice_id)
    for payment in db.exec(query).all():
        if prov.is_payfip:
            response = prov.status(payment)
            if response is None or response.result == eopayment.WAITING:
                continue
            apply_response(db, prov, response, payment)
        else:
            db.execute(update(Payment).where(Payment.id == payment.id, Payment.status == PaymentStatus.PENDING)
                       .values(status="expired", completed_at=utcnow()))
    db.commit()


def reference_in(query_string: str, body: str = "") -> str | None:
    """PayFiP's idop, as its notification (``idOp=…``) or its return may carry it."""
    for content in (body, query_string):
        fields = parse_qs(content or "")
        for name in ("idOp", "idop", "IDOP"):
            if fields.get(name):
                return fields[name][0][:100]
    return None


def open_credits(db: Session) -> list[Credit]:
    """Every credit the régie has still to refund or carry over."""
    return list(db.exec(select(Credit).where(Credit.status == "open").order_by(Credit.created_at)))


def record_refund(db: Session, credit: Credit, reference: str) -> Credit:
    """The régie refunded ``credit`` (the caller commits). Only an open credit can be refunded, once."""
    moved = db.execute(update(Credit).where(Credit.id == credit.id, Credit.status == "open")
                       .values(status="refunded", reference=reference, settled_at=utcnow())).rowcount
    if moved != 1:
        raise BillingError("Ce trop-perçu est déjà remboursé ou reporté.")
    db.refresh(credit)
    return credit
