"""Block "Mes factures & paiements": invoice detail (dialog or page), PDF (guide sections 10-11)."""
from __future__ import annotations

import io

from flask import Blueprint, abort, current_app, make_response, render_template, request
from flask_login import current_user
from sqlmodel import select

from models import Child, Family, Invoice, Payment, Unit, get_db, utcnow
from services import billing
from services.formatting import PARIS
from services.security import log_event, parent_required
from services.links import external_url, portal_url

bp = Blueprint("billing", __name__, url_prefix="/factures")


def own_invoice_or_404(invoice_id: int) -> Invoice:
    """The invoice, only when it is the logged-in family's (any other id gives 404)."""
    invoice = get_db().get(Invoice, invoice_id)
    if invoice is None or invoice.family_id != current_user.family_id:
        abort(404)
    return invoice


def invoice_context(invoice: Invoice) -> dict:
    db = get_db()
    children = {c.id: c for c in db.exec(select(Child).where(Child.family_id == invoice.family_id))}
    units = {u.id: u for u in db.exec(select(Unit).where(Unit.id.in_({l.unit_id for l in invoice.lines})))}
    payments = db.exec(select(Payment).where(Payment.invoice_id == invoice.id).order_by(Payment.created_at)).all()
    today = utcnow().astimezone(PARIS).date()
    from services.payments import payable_problem

    return dict(invoice=invoice, children=children, units=units, payments=payments, state=invoice.state(today),
                payable_problem=payable_problem(invoice, today), staff_view=False,
                states=billing.INVOICE_STATES, payment_states=billing.PAYMENT_STATES, methods=billing.PAYMENT_METHODS,
                kinds=billing.KIND_WORDS, family=db.get(Family, invoice.family_id), today=today)


@bp.get("/<int:invoice_id>")
@parent_required
def detail(invoice_id: int):
    """Page, or the dialog fragment for htmx: the lines, unit prices, totals, paid, left to pay, due date."""
    context = invoice_context(own_invoice_or_404(invoice_id))
    fragment = request.headers.get("HX-Request") == "true"
    response = make_response(render_template(
        "partials/billing/_invoice_dialog.html" if fragment else "billing/detail.html", **context))
    response.vary.add("HX-Request")
    return response


@bp.get("/<int:invoice_id>.pdf")
@parent_required
def pdf(invoice_id: int):
    """The invoice as a PDF, to print or save."""
    return render_pdf(own_invoice_or_404(invoice_id))


def render_pdf(invoice: Invoice):
    from xhtml2pdf import pisa

    html = render_template("billing/invoice_pdf.html", **invoice_context(invoice), portal_url=portal_url())
    out = io.BytesIO()
    if pisa.CreatePDF(html, dest=out, encoding="utf-8").err:
        abort(500)
    response = current_app.response_class(out.getvalue(), mimetype="application/pdf")
    response.headers["Content-Disposition"] = f'inline; filename="facture-{invoice.number}.pdf"'
    return response


def family_invoices(db, family_id: int) -> tuple[list[Invoice], list[Payment]]:
    invoices = db.exec(select(Invoice).where(Invoice.family_id == family_id)
                       .order_by(Invoice.month.desc(), Invoice.id.desc())).all()
    payments = db.exec(select(Payment).where(Payment.family_id == family_id)
                       .order_by(Payment.created_at.desc())).all()
    return list(invoices), list(payments)


# --- online payment -----------------------------------------------------------------------------------


def _provider(transaction_id: str = ""):
    from services import payments

    return payments.backend(
        current_app.config,
        return_url=external_url("billing.payment_return", transaction_id=transaction_id) if transaction_id else "",
        notify_url=external_url("billing.payment_notification"),
        simulator_url=external_url("simulator.entry") if current_app.config.get("PAYMENT_SIMULATOR") else "",
    )


@bp.post("/<int:invoice_id>/payer")
@parent_required
def pay(invoice_id: int):
    """"Payer en ligne": create the transaction and send the parent to the bank's page."""
    import eopayment
    from flask import flash, redirect, url_for

    from services import payments

    db = get_db()
    invoice = own_invoice_or_404(invoice_id)
    transaction_id = payments.new_transaction_id()
    try:
        payment, kind, data = payments.start(db, _provider(transaction_id), invoice, current_user.email,
                                             utcnow().astimezone(PARIS).date(), transaction_id)
    except billing.BillingError as exc:
        flash(str(exc), "error")
        return redirect(url_for("billing.detail", invoice_id=invoice.id))
    current_app.logger.info("Online payment %s started for invoice %s", payment.id, invoice.number)
    if kind == eopayment.URL:
        return redirect(data)
    # A form to post to the bank: one button (JavaScript off), submitted at once by app.js otherwise.
    return render_template("billing/to_bank.html", form=data, invoice=invoice, payment=payment)


def _apply(query_string: str):
    from models import writing_session
    from services import payments

    try:
        response = _provider().response(query_string)
    except Exception as exc:  # a malformed or forged answer: nothing is applied
        log_event("payment.anomaly", reason="unreadable", error=type(exc).__name__)
        return None, None
    with writing_session(current_app.extensions["ribambelle.engine"]) as db:
        payment = payments.apply_response(db, response)
    return response, payment


@bp.post("/paiement/notification")
def payment_notification():
    """The provider's server-to-server notification: applied once, only when signed."""
    body = request.get_data(as_text=True)
    response, payment = _apply(body)
    if payment is None:
        return "refusé", 400
    return "OK"


@bp.get("/paiement/retour/<transaction_id>")
@parent_required
def payment_return(transaction_id: str):
    """The parent back from the bank: a signed answer is applied (once), then the outcome page."""
    from flask import redirect, url_for

    if request.query_string:
        _apply(request.query_string.decode())
    return redirect(url_for("billing.payment_status", transaction_id=transaction_id))


@bp.get("/paiement/<transaction_id>")
@parent_required
def payment_status(transaction_id: str):
    """Page (or its fragment, polled by htmx): the payment's outcome, waiting while unknown."""
    payment = get_db().exec(select(Payment).where(Payment.transaction_id == transaction_id)).first()
    if payment is None or payment.family_id != current_user.family_id:
        abort(404)
    invoice = get_db().get(Invoice, payment.invoice_id)
    context = dict(payment=payment, invoice=invoice, states=billing.PAYMENT_STATES)
    fragment = request.headers.get("HX-Request") == "true"
    response = make_response(render_template(
        "partials/billing/_payment_status.html" if fragment else "billing/payment.html", **context))
    response.vary.add("HX-Request")
    return response
