"""Block "Mes factures & paiements": invoice detail (dialog or page), PDF (guide sections 10-11)."""
from __future__ import annotations

import io

from flask import Blueprint, abort, current_app, make_response, render_template, request
from flask_login import current_user
from sqlmodel import select

from models import Child, Family, Invoice, Payment, Unit, get_db, utcnow
from services import billing
from services.formatting import PARIS
from services.security import parent_required

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
    return dict(invoice=invoice, children=children, units=units, payments=payments, state=invoice.state(today),
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

    html = render_template("billing/invoice_pdf.html", **invoice_context(invoice))
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
