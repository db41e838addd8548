"""Block "Mes factures & paiements": invoice detail (dialog or page), PDF (guide sections 10-11)."""
from __future__ import annotations

import eopayment
from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlmodel import select

from blueprints.forms import AccountForm, MandateForm
from blueprints.web import page_or_fragment, parent_required, pdf_response
from db import get_db, writing_session
from models import Credit, Establishment, Family, Invoice, Payment, PaymentStatus, Period, utcnow
from services import billing, certificates, direct_debit, payments
from services import family as family_service
from services.calendar import paris_today
from services.links import external_url, portal_url
from services.security import log_event

bp = Blueprint("billing", __name__, url_prefix="/factures")


def own_invoice_or_404(invoice_id: int) -> Invoice:
    """The invoice, only when it is the logged-in family's (any other id gives 404)."""
    invoice = get_db().get(Invoice, invoice_id)
    if invoice is None or invoice.family_id != current_user.family_id:
        abort(404)
    return invoice


def _printed(invoice: Invoice) -> dict:
    """What the invoice prints: its family, and its lines with the children and units they name."""
    db = get_db()
    return dict(invoice=invoice, lines=billing.printed_lines(db, invoice.id), kinds=billing.KIND_WORDS,
                family=db.get(Family, invoice.family_id))


def invoice_context(invoice: Invoice) -> dict:
    db = get_db()
    invoice_payments = db.exec(select(Payment).where(Payment.invoice_id == invoice.id).order_by(Payment.created_at)).all()
    today = paris_today(utcnow())
    return dict(**_printed(invoice), payments=invoice_payments, state=invoice.state(today),
                payable_problem=payments.payable_problem(invoice, today), staff_view=False,
                states=billing.INVOICE_STATES, payment_states=billing.PAYMENT_STATES, methods=billing.PAYMENT_METHODS,
                today=today)


@bp.get("/<int:invoice_id>")
@parent_required
def detail(invoice_id: int):
    """Page, or the dialog fragment for htmx: the lines, unit prices, totals, paid, left to pay, due date."""
    return page_or_fragment("billing/detail.html", "partials/billing/_invoice_dialog.html",
                            **invoice_context(own_invoice_or_404(invoice_id)))


@bp.get("/<int:invoice_id>.pdf")
@parent_required
def pdf(invoice_id: int):
    """The invoice as a PDF, to print or save."""
    return render_pdf(own_invoice_or_404(invoice_id))


# --- direct debit ("Prélèvement automatique") ---------------------------------------------------------


def creditor_or_404() -> direct_debit.Creditor:
    """The town as SEPA creditor; a 404 when it does not offer direct debit (its pages do not exist)."""
    cred = direct_debit.creditor(current_app.config)
    if cred is None:
        abort(404)  # the town does not offer direct debit
    return cred


@bp.route("/prelevement", methods=["GET", "POST"])
@parent_required
def direct_debit_page():
    """Page: the family's mandate (RUM, account, state) with "Changer de compte" and "Arrêter le
    prélèvement", or the mandate to sign: holder, IBAN, the SEPA consent, "Signer le mandat"."""
    cred = creditor_or_404()
    db = get_db()
    mandate = direct_debit.live_mandate(db, current_user.family_id)
    form = MandateForm(prefix="mandat") if mandate is None else AccountForm(prefix="compte")
    if form.validate_on_submit():
        family = db.get(Family, current_user.family_id)
        try:
            if mandate is None:
                direct_debit.sign(db, family, current_user, form.holder.data, form.iban.data, form.consent.data,
                                  paris_today(utcnow()))
                flash("Votre mandat de prélèvement est signé : vos prochaines factures seront prélevées.", "success")
            else:
                direct_debit.amend(db, mandate, form.holder.data, form.iban.data, current_user.id)
                flash("Le compte de votre mandat de prélèvement est changé.", "success")
            return redirect(url_for("billing.direct_debit_page"))
        except direct_debit.DebitError as error:
            db.rollback()
            form.iban.errors.append(str(error))
    elif request.method == "GET" and mandate is not None:
        form.holder.data = mandate.holder
    planned = db.exec(select(Invoice).where(Invoice.family_id == current_user.family_id,
                                            Invoice.debit_state == "planned").order_by(Invoice.debit_on)).all()
    return render_template("billing/direct_debit.html", creditor=cred, mandate=mandate, form=form, planned=planned,
                           masked=direct_debit.masked, notice_days=current_app.config["DEBIT_NOTICE_DAYS"])


@bp.post("/prelevement/arret")
@parent_required
def direct_debit_stop():
    """Action: "Arrêter le prélèvement"; the next invoices are to pay online or at the counter."""
    creditor_or_404()
    db = get_db()
    mandate = direct_debit.live_mandate(db, current_user.family_id)
    if mandate is None:
        flash("Votre famille n'a pas de mandat de prélèvement en cours.", "error")
    else:
        direct_debit.revoke(db, mandate, current_user.id)
        flash("Le prélèvement automatique est arrêté : vos prochaines factures seront à payer en ligne ou à la régie.",
              "success")
    return redirect(url_for("billing.direct_debit_page"))


# --- certificates ("Attestation fiscale", "Attestation de présence") -------------------------------------


@bp.get("/attestations")
@parent_required
def certificates_page():
    """Page: the family's tax certificates (years with a child under 6) and attendance certificates
    (each child and period with a day attended or billed)."""
    db = get_db()
    family = db.get(Family, current_user.family_id)
    today = paris_today(utcnow())
    return render_template("billing/certificates.html", years=certificates.tax_years(family.children, today), today=today,
                           presences=certificates.presence_choices(db, family.id))


@bp.get("/attestation-fiscale-<int:year>.pdf")
@parent_required
def tax_certificate_pdf(year: int):
    """The "Attestation fiscale AAAA": childcare paid that year for each child under 6 on 1 January."""
    db = get_db()
    family = db.get(Family, current_user.family_id)
    today = paris_today(utcnow())
    if year not in certificates.tax_years(family.children, today):
        abort(404)
    made = certificates.tax_certificate(db, family, year, current_app.config["TAX_CERTIFICATE_EXCLUDED_UNITS"])
    html = render_template("billing/tax_certificate_pdf.html", certificate=made, today=today)
    return pdf_response(html, f"attestation-fiscale-{year}.pdf")


@bp.get("/attestation-presence/<int:child_id>/<int:period_id>.pdf")
@parent_required
def presence_certificate_pdf(child_id: int, period_id: int):
    """The "Attestation de présence" of a child of the family for a period: days attended, amount paid."""
    db = get_db()
    child = family_service.child_of_family(db, current_user.family_id, child_id)
    period = db.get(Period, period_id)
    if child is None or period is None:
        abort(404)
    made = certificates.presence_certificate(db, child, period, current_user.family_id)
    html = render_template("billing/presence_pdf.html", certificate=made, family=db.get(Family, current_user.family_id),
                           establishment=db.get(Establishment, period.establishment_id), today=paris_today(utcnow()))
    return pdf_response(html, f"attestation-presence-{child.first_name.lower()}-{period.start_date}.pdf")


def render_pdf(invoice: Invoice):
    """The invoice's PDF: it prints the family, the lines and the totals (no payments, no state)."""
    html = render_template("billing/invoice_pdf.html", **_printed(invoice), portal_url=portal_url())
    return pdf_response(html, f"facture-{invoice.number}.pdf", invoice.id)


# --- online payment -----------------------------------------------------------------------------------


def _provider(transaction_id: str = "") -> payments.Provider:
    return payments.provider(
        current_app.config,
        return_url=external_url("billing.payment_return", transaction_id=transaction_id) if transaction_id else "",
        notify_url=external_url("billing.payment_notification"),
    )


def _to_provider(kind, data, invoice, payment):
    """Send the parent to the provider: a redirect (PayFiP) or the signed form (SystemPay)."""
    if kind == eopayment.URL:
        return redirect(data)
    # A form to post to the bank: one button (JavaScript off), submitted at once by app.js otherwise.
    return render_template("billing/to_bank.html", form=data, invoice=invoice, payment=payment)


@bp.post("/<int:invoice_id>/payer")
@parent_required
def pay(invoice_id: int):
    """"Payer en ligne": create the transaction and send the parent to the provider's page."""
    db = get_db()
    invoice = own_invoice_or_404(invoice_id)
    transaction_id = payments.new_transaction_id()
    try:
        prov = _provider(transaction_id)
        payment, kind, data = payments.start(db, prov, invoice, current_user.email,
                                             paris_today(utcnow()), transaction_id)
    except payments.PaymentPending as pending:
        return render_template("billing/pending.html", invoice=invoice, payment=pending.payment), 409
    except payments.PaymentUnavailable as exc:
        return render_template("billing/unavailable.html", invoice=invoice, message=str(exc)), 503
    except billing.BillingError as exc:
        flash(str(exc), "error")
        return redirect(url_for("billing.detail", invoice_id=invoice.id))
    current_app.logger.info("Online payment %s started for invoice %s", payment.id, invoice.number)
    return _to_provider(kind, data, invoice, payment)


def _own_pending(invoice: Invoice) -> Payment:
    payment = payments.pending_payment(get_db(), invoice.id)
    if payment is None:
        flash("Aucun paiement en ligne de cette facture n'est en cours.", "info")
        abort(redirect(url_for("billing.detail", invoice_id=invoice.id)))
    return payment


@bp.post("/<int:invoice_id>/paiement-en-cours/reprendre")
@parent_required
def resume_payment(invoice_id: int):
    """Back to the provider's page for the payment under way."""
    invoice = own_invoice_or_404(invoice_id)
    payment = _own_pending(invoice)
    try:
        kind, data = payments.resume(_provider(payment.transaction_id), payment, invoice, current_user.email)
    except payments.PaymentUnavailable as exc:
        return render_template("billing/unavailable.html", invoice=invoice, message=str(exc)), 503
    return _to_provider(kind, data, invoice, payment)


@bp.post("/<int:invoice_id>/paiement-en-cours/abandonner")
@parent_required
def give_up_payment(invoice_id: int):
    """Give up the payment under way, then start again from the invoice."""
    invoice = own_invoice_or_404(invoice_id)
    payments.give_up(get_db(), _own_pending(invoice))
    flash("Le paiement en cours est abandonné. Vous pouvez payer à nouveau cette facture.", "success")
    return redirect(url_for("billing.detail", invoice_id=invoice.id))


def _apply(prov: payments.Provider, response, payment: Payment | None = None) -> Payment | None:
    with writing_session(current_app.extensions["ribambelle.engine"]) as db:
        return payments.apply_response(db, prov, response, payment)


def _settle_pending(payment: Payment, signed_answer: str = "") -> Payment:
    """A payment still pending: what the provider says of it now — asked of PayFiP, or read from
    SystemPay's signed answer brought back by the parent — applied once. Returns the payment as it stands."""
    if payment.status != PaymentStatus.PENDING:
        return payment
    prov = _provider(payment.transaction_id)
    response = prov.status(payment) if prov.is_payfip else (prov.answer(signed_answer) if signed_answer else None)
    get_db().rollback()  # the reads end here: the write takes its own transaction
    return (_apply(prov, response, payment) if response is not None else None) or payment


@bp.post("/paiement/notification")
def payment_notification():
    """The provider's server-to-server notification: applied once, only when it is the provider's."""
    prov = _provider()
    body = request.get_data(as_text=True)
    if prov.is_payfip:
        idop = payments.reference_in(request.query_string.decode(), body)
        payment = get_db().exec(select(Payment).where(Payment.method == "online",
                                                      Payment.provider_reference == idop)).first() if idop else None
        if payment is None:
            log_event("payment.anomaly", reason="unknown transaction", transaction=(idop or "")[:64])
            return "refusé", 400
        response = prov.status(payment)
        if response is None:  # PayFiP cannot be asked now: answer an error so that it notifies again
            return "réessayer", 503
    else:
        response = prov.answer(body)
    get_db().rollback()  # the read above ends here: the write below takes its own transaction
    if _apply(prov, response) is None:
        return "refusé", 400
    return "OK"


@bp.route("/paiement/retour/<transaction_id>", methods=["GET", "POST"])
@parent_required
def payment_return(transaction_id: str):
    """The parent back from the provider: its answer is applied (once), then the outcome page."""
    body = request.get_data(as_text=True) if request.method == "POST" else ""
    _settle_pending(_own_payment_or_404(transaction_id), body or request.query_string.decode())
    return redirect(url_for("billing.payment_status", transaction_id=transaction_id))


def _own_payment_or_404(transaction_id: str) -> Payment:
    payment = get_db().exec(select(Payment).where(Payment.transaction_id == transaction_id)).first()
    if payment is None or payment.family_id != current_user.family_id:
        abort(404)
    return payment


@bp.get("/paiement/<transaction_id>")
@parent_required
def payment_status(transaction_id: str):
    """Page (or its fragment, polled by htmx): the payment's outcome, waiting while unknown.

    While PayFiP has not notified, each look asks it (a notification lost on the way is not waited for).
    """
    payment = _settle_pending(_own_payment_or_404(transaction_id))
    db = get_db()
    invoice = db.get(Invoice, payment.invoice_id)
    credit = db.exec(select(Credit).where(Credit.payment_id == payment.id)).first()
    return page_or_fragment("billing/payment.html", "partials/billing/_payment_status.html",
                            payment=payment, invoice=invoice, states=billing.PAYMENT_STATES, credit=credit)
