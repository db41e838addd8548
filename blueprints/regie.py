"""The régie's direct debits (/regie/): the file of a collection date, its download, rejects, paper mandates."""
from __future__ import annotations

from datetime import date, timedelta

from flask import Blueprint, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user
from sqlmodel import select

from blueprints.billing import creditor_or_404
from blueprints.forms import AccountForm, PaperMandateForm
from blueprints.web import staff_required
from db import get_db, get_or_404
from models import DebitBatch, DebitLine, Family, Invoice, Mandate, utcnow
from services import debit_file, direct_debit
from services.calendar import paris_today

bp = Blueprint("regie", __name__, url_prefix="/regie")

MAX_REPORT = 5 * 1024 * 1024  # a bank's reject report of a town is a few kilobytes


@bp.route("/prelevements", methods=["GET", "POST"])
@staff_required
def home():
    """Page: the debits announced per date, "Préparer le fichier de prélèvement", the files made."""
    cred = creditor_or_404()
    db = get_db()
    today = paris_today(utcnow())
    if request.method == "POST":
        try:
            collection_on = date.fromisoformat(request.form.get("date", ""))
        except ValueError:
            flash("Indiquez la date du prélèvement (JJ/MM/AAAA).", "error")
            return redirect(url_for("regie.home"))
        try:
            made = debit_file.build_file(db, cred, current_user.id, collection_on, today)
            batch_id, count = made.id, made.count
        except direct_debit.DebitError as error:
            db.rollback()
            flash(str(error), "error")
            return redirect(url_for("regie.home"))
        flash(f"Fichier de prélèvement prêt : {count} facture(s). Téléchargez-le pour le déposer à la banque.", "success")
        return redirect(url_for("regie.batch", batch_id=batch_id))
    planned = debit_file.planned(db)
    upcoming = next((day for day, _, _ in planned if day and day > today), today + timedelta(days=1))
    batches = db.exec(select(DebitBatch).order_by(DebitBatch.id.desc()).limit(24)).all()
    return render_template("regie/debits.html", creditor=cred, planned=planned, batches=batches, upcoming=upcoming,
                           today=today)


@bp.get("/prelevements/<int:batch_id>")
@staff_required
def batch(batch_id: int):
    """Page: a file's debits, each with its family, invoice, sequence and mandate, and its reject form."""
    creditor_or_404()
    db = get_db()
    made = get_or_404(DebitBatch, batch_id)
    rows = db.exec(select(DebitLine, Invoice, Mandate, Family).join(Invoice, Invoice.id == DebitLine.invoice_id)
                   .join(Mandate, Mandate.id == DebitLine.mandate_id).join(Family, Family.id == Invoice.family_id)
                   .where(DebitLine.batch_id == made.id).order_by(DebitLine.id)).all()
    return render_template("regie/debit_batch.html", batch=made, rows=rows, reasons=debit_file.REJECT_REASONS,
                           reason_words=debit_file.reason_words, masked=direct_debit.masked)


@bp.get("/prelevements/<int:batch_id>.xml")
@staff_required
def download(batch_id: int):
    """Download: the file as built (SEPA pain.008), to deposit on the bank's or the Trésor's site."""
    creditor_or_404()
    made = get_or_404(DebitBatch, batch_id)
    response = make_response(made.content)
    response.mimetype = "application/xml"
    response.headers["Content-Disposition"] = f'attachment; filename="prelevement-{made.collection_on}-{made.id}.xml"'
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/prelevements/lignes/<int:line_id>/rejet")
@staff_required
def reject(line_id: int):
    """Action: "Enregistrer le rejet" of one debit, with the bank's reason."""
    creditor_or_404()
    db = get_db()
    line = get_or_404(DebitLine, line_id)
    try:
        debit_file.reject(db, line, request.form.get("motif", ""), current_user.id, paris_today(utcnow()))
        db.commit()
        flash(f"Rejet enregistré : la facture {line.end_to_end_id} est de nouveau à payer ; la famille est prévenue.",
              "success")
    except direct_debit.DebitError as error:
        db.rollback()
        flash(str(error), "error")
    return redirect(url_for("regie.batch", batch_id=line.batch_id))


@bp.post("/prelevements/rejets")
@staff_required
def import_report():
    """Action: "Importer le relevé de rejets" (the bank's pain.002 file)."""
    creditor_or_404()
    db = get_db()
    upload = request.files.get("releve")
    content = upload.read(MAX_REPORT + 1) if upload else b""
    if not content:
        flash("Choisissez le fichier du relevé de rejets envoyé par la banque (XML pain.002).", "error")
    elif len(content) > MAX_REPORT:
        flash("Ce fichier est trop gros pour un relevé de rejets (5 Mo au plus).", "error")
    else:
        try:
            result = debit_file.import_report(db, content, current_user.id, paris_today(utcnow()))
            words = f"{len(result.rejected)} rejet(s) enregistré(s)"
            if result.already:
                words += f", {len(result.already)} déjà enregistré(s)"
            if result.unknown:
                words += f" ; inconnus du portail : {', '.join(result.unknown[:10])}"
            flash(words + ".", "success" if not result.unknown else "error")
        except direct_debit.DebitError as error:
            db.rollback()
            flash(str(error), "error")
    return redirect(url_for("regie.home"))


# --- a family's mandate, on its page -------------------------------------------------------------------


@bp.post("/familles/<int:family_id>/mandat")
@staff_required
def family_mandate(family_id: int):
    """Action: record the family's paper mandate, or change its account."""
    creditor_or_404()
    db = get_db()
    family = get_or_404(Family, family_id)
    mandate = direct_debit.live_mandate(db, family.id)
    form = PaperMandateForm(prefix="papier") if mandate is None else AccountForm(prefix="compte")
    if not form.validate_on_submit():
        for errors in form.errors.values():
            for error in errors:
                flash(error, "error")
        return redirect(url_for("staff.family", family_id=family.id) + "#prelevement")
    try:
        if mandate is None:
            direct_debit.record_paper(db, current_user.id, family, form.holder.data, form.iban.data,
                                      form.signed_on.data, paris_today(utcnow()))
            flash("Mandat papier enregistré : la famille est prévenue par courriel.", "success")
        else:
            direct_debit.amend(db, mandate, form.holder.data, form.iban.data, current_user.id, by_agent=True)
            flash("Compte du mandat changé.", "success")
    except direct_debit.DebitError as error:
        db.rollback()
        flash(str(error), "error")
    return redirect(url_for("staff.family", family_id=family.id) + "#prelevement")


@bp.post("/familles/<int:family_id>/mandat/arret")
@staff_required
def family_mandate_stop(family_id: int):
    """Action: stop the family's mandate (its written revocation came to the town hall)."""
    creditor_or_404()
    db = get_db()
    family = get_or_404(Family, family_id)
    mandate = direct_debit.live_mandate(db, family.id)
    if mandate is None:
        flash("Cette famille n'a pas de mandat en cours.", "error")
    else:
        direct_debit.revoke(db, mandate, current_user.id, by_agent=True)
        flash("Mandat arrêté : les prochaines factures ne seront pas prélevées.", "success")
    return redirect(url_for("staff.family", family_id=family.id) + "#prelevement")
