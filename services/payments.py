"""Online payment through eopayment (PayFiP, SystemPay/PayZen... set in configuration).

A payment is a transaction row with its own id, created before the parent leaves for the bank.
The provider's answer (the notification, or the signed return of the parent) is applied once, only
when signed and for the right amount; a paid invoice never goes back to unpaid.
"""
from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import eopayment
from sqlalchemy import update
from sqlmodel import Session, select

from models import Invoice, Payment, utcnow
from services.billing import BillingError, apply_payment
from services.security import log_event

PENDING_LIFETIME = timedelta(minutes=30)  # an unanswered online payment expires after this


SIMULATOR_SITE_ID = "12345678"


def simulator_options(config: dict, service_url: str) -> dict:
    """SystemPay options pointing at the local simulator (demo and tests), with a derived secret."""
    import hashlib

    secret = hashlib.sha256(f"simulator:{config['SECRET_KEY']}".encode()).hexdigest()[:32]
    return {"service_url": service_url, "secret_test": secret, "vads_site_id": SIMULATOR_SITE_ID,
            "signature_algo": "hmac_sha256", "vads_ctx_mode": "TEST"}


def backend(config: dict, return_url: str = "", notify_url: str = "", simulator_url: str = "") -> eopayment.Payment:
    """The configured provider, with the return and notification addresses of this portal."""
    if config.get("PAYMENT_SIMULATOR"):
        kind, options = "systempayv2", simulator_options(config, simulator_url)
    else:
        kind, options = config["PAYMENT_BACKEND"], dict(config["PAYMENT_OPTIONS"])
    if return_url:
        options["normal_return_url"] = return_url
    if notify_url:
        options.setdefault("automatic_return_url", notify_url)
    return eopayment.Payment(kind, options)


def payable_problem(invoice: Invoice, today) -> str | None:
    """Why this invoice cannot be paid online now, in French; None when it can."""
    state = invoice.state(today)
    if state == "annulee":
        return "Cette facture est annulée : il n'y a rien à payer."
    if state == "payee":
        return "Cette facture est déjà payée."
    if state == "echue":
        return ("La date limite de paiement en ligne est dépassée : réglez cette facture auprès de la régie "
                "(espèces, chèque, CESU ou virement).")
    return None


def new_transaction_id() -> str:
    return uuid.uuid4().hex


def start(db: Session, provider: eopayment.Payment, invoice: Invoice, email: str, today, transaction_id: str):
    """Create the transaction and ask the provider where to send the parent: (payment, kind, data)."""
    problem = payable_problem(invoice, today)
    if problem:
        raise BillingError(problem)
    expire_stale(db)
    payment = Payment(invoice_id=invoice.id, family_id=invoice.family_id, amount_cents=invoice.left_cents,
                      method="online", status="pending", transaction_id=transaction_id)
    transaction_id, kind, data = provider.request(
        Decimal(payment.amount_cents) / 100, email=email, orderid=invoice.number.replace("-", ""),
        transaction_id=payment.transaction_id)
    payment.transaction_id = transaction_id
    db.add(payment)
    db.commit()
    return payment, kind, data


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


def apply_response(db: Session, response) -> Payment | None:
    """Apply a provider answer once. Returns the payment, or None when the answer is not acceptable.

    ``db`` must be a ``writing_session``. A second (or late) answer for a payment already decided
    changes nothing.
    """
    if not response.signed:
        log_event("payment.anomaly", reason="unsigned", transaction=str(response.transaction_id)[:64])
        return None
    payment = db.exec(select(Payment).where(Payment.transaction_id == response.transaction_id)).first()
    if payment is None:
        log_event("payment.anomaly", reason="unknown transaction", transaction=str(response.transaction_id)[:64])
        return None
    if response.result == eopayment.PAID:
        paid = amount_paid_cents(response)
        if paid is not None and paid != payment.amount_cents:
            log_event("payment.anomaly", reason="amount", payment=payment.id, asked=payment.amount_cents, paid=paid)
            return None  # not the amount asked: never applied
        new_status = "paid"
    elif response.result == eopayment.DENIED:
        new_status = "refused"
    elif response.result == eopayment.CANCELLED:
        new_status = "cancelled"
    elif response.result == eopayment.WAITING:
        return payment
    else:
        new_status = "refused"
    # Only a pending (or expired, if the bank answers late) payment moves; a decided one never does.
    moved = db.execute(update(Payment).where(Payment.id == payment.id, Payment.status.in_(("pending", "expired")))
                       .values(status=new_status, completed_at=utcnow())).rowcount
    if moved == 1 and new_status == "paid":
        db.refresh(payment)
        apply_payment(db, payment)
    db.commit()
    db.refresh(payment)
    return payment


def expire_stale(db: Session) -> None:
    """Online payments left unanswered too long become "expiré"; the invoice stays payable."""
    db.execute(update(Payment).where(Payment.status == "pending", Payment.method == "online",
                                     Payment.created_at < utcnow() - PENDING_LIFETIME).values(status="expired"))
    db.commit()
