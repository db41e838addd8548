"""The back office for agents: changes to validate, booking requests, attendance lists, billing, families."""
from __future__ import annotations

from datetime import date, timedelta

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlmodel import select

from blueprints.billing import invoice_context
from blueprints.forms import AccountForm, DecisionForm, PaperMandateForm, strip_all
from blueprints.listing import family_matches, paginate, search_text
from blueprints.web import pdf_response, staff_required
from db import get_db, get_or_404, writing_session
from models import (
    AuditEntry,
    ChangeRequest,
    ChangeStatus,
    Credit,
    Establishment,
    Family,
    Invoice,
    LineState,
    Payment,
    Period,
    Reservation,
    ReservationLine,
    User,
    utcnow,
)
from services import attendance as attendance_service
from services import audit, billing, direct_debit, exports, outbox, payments, planning
from services import family as family_service
from services.calendar import paris_today
from services.formatting import PARIS, count_words, parse_euros
from services.security import log_event

bp = Blueprint("staff", __name__, url_prefix="/agent")


@bp.get("/")
@staff_required
def queue():
    """Page: every change waiting for validation, oldest first."""
    db = get_db()
    requests = family_service.pending_requests(db)
    families = {f.id: f for f in (db.get(Family, r.family_id) for r in requests)}
    return render_template("staff/queue.html", requests=requests, families=families)


def _request_or_404(request_id: int) -> ChangeRequest:
    req = get_db().get(ChangeRequest, request_id)
    if req is None:
        abort(404)
    return req


@bp.route("/demandes/<int:request_id>", methods=["GET", "POST"])
@staff_required
def decide(request_id: int):
    """Page: one change as before/after, with "Valider" and "Refuser" and a message to the parent."""
    db = get_db()
    req = _request_or_404(request_id)
    form = DecisionForm()
    if form.validate_on_submit():
        strip_all(form)
        agent = db.get(User, current_user.id)
        action = "refuse" if request.form.get("action") == "refuse" else "accept"  # the buttons' codes
        if req.status != ChangeStatus.PENDING:
            flash("Cette demande a déjà été traitée.", "info")
            return redirect(url_for("staff.queue"))
        if action == "refuse":
            if not form.message.data:
                form.message.errors.append("Pour refuser, écrivez au parent ce qui ne va pas.")
            else:
                family_service.refuse(db, agent, req, form.message.data)
                outbox.send_soon(current_app._get_current_object())
                flash("Demande refusée ; la famille est prévenue par courriel.", "success")
                return redirect(url_for("staff.queue"))
        else:
            family_service.validate(db, agent, req, form.message.data or "")
            outbox.send_soon(current_app._get_current_object())
            flash("Demande validée : le dossier est à jour et la famille est prévenue par courriel.", "success")
            return redirect(url_for("staff.queue"))
    family = db.get(Family, req.family_id)
    return render_template(
        "staff/decide.html",
        req=req,
        family=family,
        form=form,
        rows=family_service.diff_rows(req),
        requester=db.get(User, req.requested_by_id),
    )


# --- reservation requests ---------------------------------------------------------------------------


@bp.get("/reservations")
@staff_required
def reservation_queue():
    """Page: booking requests and waiting-list lines to accept or refuse, oldest first, filterable."""
    db = get_db()
    establishment_id = request.args.get("etablissement", type=int)
    period_id = request.args.get("periode", type=int)
    try:
        day = date.fromisoformat(request.args["jour"]) if request.args.get("jour") else None
    except ValueError:
        day = None
        flash("Date invalide : le filtre par date est ignoré.", "error")
    rows = planning.pending_lines(db, establishment_id, period_id, day)
    groups: dict[int, list] = {}  # per reservation, keeping the queue's order (absences first)
    for row in rows:
        groups.setdefault(row[1].id, []).append(row)
    return render_template(
        "staff/reservations.html", rows=rows, groups=list(groups.values()), free_places=planning.free_places(db, rows),
        establishments=db.exec(select(Establishment).order_by(Establishment.name)).all(),
        periods=db.exec(select(Period).order_by(Period.start_date)).all(),
        establishment_id=establishment_id, period_id=period_id, day=day,
    )


def _decide_lines(line_ids: list[int], accept: bool, message: str, justified: bool = False,
                  justification: str = "") -> list[str]:
    """Decide the lines (services.planning.decide), say it, and return the problems met."""
    result = planning.decide(get_db(), current_user.id, line_ids, accept, message, utcnow(), justified, justification)
    if result.lines:
        outbox.send_soon(current_app._get_current_object())
        n = len(result.lines)
        flash(f"{result.child.first_name}, réservation {result.reservation.number} : "
              f"{count_words(n, 'jour ' + ('accepté' if accept else 'refusé'))} ; la famille est prévenue par courriel.",
              "success")
    return result.problems


def _decision_args() -> tuple | None:
    message = (request.form.get("message") or "").strip()[:2000]
    accept = request.form.get("action") == "accept"
    justified = request.form.get("justifiee") == "1"
    justification = (request.form.get("motif") or "").strip()[:300]
    if not accept and not message:
        flash("Pour refuser, écrivez à la famille la raison du refus.", "error")
        return None
    if justified and not justification:
        flash("Indiquez le motif qui justifie l'absence (certificat médical…).", "error")
        return None
    return accept, message, justified, justification


@bp.post("/reservations/lignes/<int:line_id>")
@staff_required
def decide_line(line_id: int):
    """Accept or refuse one line; the family is told by mail."""
    get_or_404(ReservationLine, line_id)
    args = _decision_args()
    if args:
        for problem in _decide_lines([line_id], *args):
            flash(problem, "error")
    return redirect(request.referrer or url_for("staff.reservation_queue"))


@bp.post("/reservations/<int:reservation_id>/decision")
@staff_required
def decide_reservation(reservation_id: int):
    """Accept or refuse every pending line of a reservation at once."""
    db = get_db()
    get_or_404(Reservation, reservation_id)
    args = _decision_args()
    if args:
        ids = db.exec(select(ReservationLine.id).where(ReservationLine.reservation_id == reservation_id,
                                                       ReservationLine.state == LineState.PENDING)).all()
        db.commit()  # end the read before each line takes its own write transaction
        if not ids:
            flash("Cette réservation n'a plus de demande en attente.", "info")
        for problem in _decide_lines(list(ids), *args):
            flash(problem, "error")
    return redirect(request.referrer or url_for("staff.reservation_queue"))


# --- attendance lists -----------------------------------------------------------------------------


def _attendance_args():
    """(establishments, establishment, day, its lists) from the query string: the first establishment and
    today by default."""
    db = get_db()
    establishments = db.exec(select(Establishment).order_by(Establishment.name)).all()
    if not establishments:
        abort(404)
    est_id = request.values.get("etablissement", type=int) or establishments[0].id
    establishment = next((e for e in establishments if e.id == est_id), None)
    if establishment is None:
        abort(404)
    try:
        day = date.fromisoformat(request.values["jour"]) if request.values.get("jour") else paris_today(utcnow())
    except ValueError:
        abort(400)
    return establishments, establishment, day, attendance_service.sheet(db, establishment.id, day)


@bp.get("/presences")
@staff_required
def attendance():
    """Page: the attendance list of an establishment for a day, to tick on a phone and to print."""
    establishments, establishment, day, lists = _attendance_args()
    return render_template("staff/attendance.html", establishments=establishments, establishment=establishment,
                           day=day, lists=lists, words=attendance_service.STATUS_WORDS,
                           enrolled=attendance_service.enrolled_children(get_db(), establishment.id))


@bp.post("/presences")
@staff_required
def record_attendance():
    """Store the ticks of the list (present / absent per child and unit)."""
    _, establishment, day, lists = _attendance_args()
    allowed = {(r.child.id, ul.unit.id) for ul in lists for r in ul.rows}
    marks = {}
    for key, value in request.form.items():
        if key.startswith("presence-") and value in ("present", "absent"):
            try:
                child_id, unit_id = (int(x) for x in key.removeprefix("presence-").split("-"))
            except ValueError:
                abort(400)
            if (child_id, unit_id) not in allowed:
                abort(404)
            marks[(child_id, unit_id)] = value == "present"
    count = attendance_service.record(get_db(), current_user.id, day, marks)
    flash(f"{count_words(count, 'présence enregistrée')}.", "success")
    return redirect(url_for("staff.attendance", etablissement=establishment.id, jour=day.isoformat()))


@bp.post("/presences/ajout")
@staff_required
def add_walk_in():
    """A child who came without a booking: recorded present (billed at the period's surcharge)."""
    _, establishment, day, lists = _attendance_args()
    child_id = request.form.get("enfant", type=int)
    unit_id = request.form.get("unite", type=int)
    enrolled = {c.id: c for c in attendance_service.enrolled_children(get_db(), establishment.id)}
    units = {ul.unit.id: ul for ul in lists}
    if child_id not in enrolled or unit_id not in units:
        flash("Choisissez un enfant inscrit et une unité ouverte ce jour.", "error")
    elif any(r.child.id == child_id for r in units[unit_id].rows):
        flash(f"{enrolled[child_id].first_name} est déjà sur la liste de {units[unit_id].unit.label}.", "info")
    else:
        attendance_service.record(get_db(), current_user.id, day, {(child_id, unit_id): True}, walk_in=True)
        flash(f"{enrolled[child_id].first_name} est noté(e) présent(e) sans réservation.", "success")
    return redirect(url_for("staff.attendance", etablissement=establishment.id, jour=day.isoformat()))


@bp.get("/presences.pdf")
@staff_required
def attendance_pdf():
    """The attendance list as a PDF (xhtml2pdf), to print."""
    _, establishment, day, lists = _attendance_args()
    html = render_template("staff/attendance_pdf.html", establishment=establishment, day=day, lists=lists,
                           words=attendance_service.STATUS_WORDS)
    return pdf_response(html, f"presences-{day.isoformat()}.pdf")


@bp.get("/presences.csv")
@staff_required
def attendance_csv():
    """The attendance list as CSV (health notes included: for the staff who need them)."""
    _, establishment, day, lists = _attendance_args()
    log_event("export.health_data", what="attendance", establishment=establishment.id, day=day.isoformat())
    return _csv_response(attendance_service.to_csv(lists, day), f"presences-{day.isoformat()}.csv")


# --- billing ------------------------------------------------------------------------------------------


@bp.route("/facturation", methods=["GET", "POST"])
@staff_required
def billing_home():
    """Page: run the monthly billing, and the invoices still to be paid (past-due first)."""
    db = get_db()
    today = paris_today(utcnow())
    if request.method == "POST":
        try:
            month = billing.parse_month(request.form.get("mois", ""))
        except billing.BillingError as exc:
            flash(str(exc), "error")
            return redirect(url_for("staff.billing_home"))
        db.commit()  # each family is billed in its own transaction
        report = billing.run(current_app.extensions["ribambelle.engine"], month, today,
                             current_app.config["INVOICE_DUE_DAYS"],
                             notice_days=direct_debit.notice_days(current_app.config))
        outbox.send_soon(current_app._get_current_object())
        flash(report.summary(), "success")
        return redirect(url_for("staff.billing_home"))
    show = request.args.get("etat", "impayees")
    invoices = billing.invoices_to_follow(db, show, today)
    families = {f.id: f for f in db.exec(select(Family).where(Family.id.in_({i.family_id for i in invoices})))}
    last_month = (today.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
    credits = payments.open_credits(db)
    flagged = db.exec(select(Payment).where(Payment.anomaly != "").order_by(Payment.completed_at.desc()).limit(50)).all()
    families.update({f.id: f for f in db.exec(select(Family).where(
        Family.id.in_({c.family_id for c in credits} | {p.family_id for p in flagged})))})
    numbers = dict(db.exec(select(Invoice.id, Invoice.number).where(
        Invoice.id.in_({c.invoice_id for c in credits} | {p.invoice_id for p in flagged}))).all())
    return render_template("staff/billing.html", invoices=invoices, families=families, today=today, show=show,
                           states=billing.INVOICE_STATES, last_month=last_month, credits=credits, flagged=flagged,
                           numbers=numbers)


@bp.post("/trop-percus/<int:credit_id>/rembourse")
@staff_required
def credit_refunded(credit_id: int):
    """Action: the régie refunded a credit (trop-perçu); its reference is kept."""
    db = get_db()
    reference = (request.form.get("reference") or "").strip()[:100]
    if not reference:
        flash("Indiquez la référence du remboursement (virement, chèque…).", "error")
        return redirect(url_for("staff.billing_home"))
    try:
        credit = payments.record_refund(db, get_or_404(Credit, credit_id), reference)
    except billing.BillingError as exc:
        flash(str(exc), "error")
        return redirect(url_for("staff.billing_home"))
    audit.record(db, current_user.id, "update", "credit", credit.id, f"Trop-perçu remboursé : {reference}",
                 {"etat": "open"}, {"etat": "refunded", "reference": reference}, family_id=credit.family_id)
    db.commit()
    flash("Le remboursement du trop-perçu est enregistré.", "success")
    return redirect(url_for("staff.billing_home"))


@bp.route("/factures/<int:invoice_id>", methods=["GET", "POST"])
@staff_required
def invoice(invoice_id: int):
    """Page: an invoice for the régie — record a counter payment, or cancel it with a reason."""
    db = get_db()
    inv = db.get(Invoice, invoice_id)
    if inv is None:
        abort(404)
    if request.method == "POST":
        try:
            if request.form.get("action") == "annuler":
                billing.cancel_invoice(db, inv, (request.form.get("motif") or "").strip()[:300])
                flash(f"Facture {inv.number} annulée.", "success")
            elif request.form.get("action") in ("contestee", "non-contestee"):
                disputed = request.form["action"] == "contestee"
                billing.set_disputed(db, current_user.id, inv, disputed)
                flash(f"Facture {inv.number} : {'contestée, plus de rappel' if disputed else 'rappels repris'}.", "success")
            else:
                amount = parse_euros(request.form.get("montant", ""))
                if amount is None:
                    raise billing.BillingError("Montant invalide : écrivez-le en euros, par exemple 12,50.")
                billing.record_counter_payment(db, current_user.id, inv, amount, request.form.get("moyen", ""),
                                               (request.form.get("reference") or "").strip()[:100])
                flash(f"Paiement enregistré sur la facture {inv.number}.", "success")
        except billing.BillingError as exc:
            db.rollback()
            flash(str(exc), "error")
        return redirect(url_for("staff.invoice", invoice_id=inv.id))
    return render_template("staff/invoice.html", **{**invoice_context(inv), "staff_view": True})


# --- families -------------------------------------------------------------------------------------


PAGE_SIZE = 20


@bp.get("/familles")
@staff_required
def families():
    """Page: search a family by name, login, guardian or child name; 20 per page."""
    db = get_db()
    q = search_text()
    query = select(Family)
    if q:
        query = query.where(family_matches(q))
    page = paginate(db, query, Family.name, Family.id, size=PAGE_SIZE)
    return render_template("staff/families.html", page=page, q=q)


@bp.get("/familles/<int:family_id>")
@staff_required
def family(family_id: int):
    """Page: a family on one page — file, logins, children, reservations, invoices, payments, changes."""
    db = get_db()
    fam = get_or_404(Family, family_id)
    entries = db.exec(select(AuditEntry).where(AuditEntry.family_id == fam.id).order_by(AuditEntry.at.desc())).all()
    mandate = direct_debit.live_mandate(db, fam.id)
    mandate_form = None
    if direct_debit.creditor(current_app.config):
        mandate_form = AccountForm(prefix="compte") if mandate else PaperMandateForm(prefix="papier")
        if mandate:
            mandate_form.holder.data = mandate.holder
    return render_template(
        "staff/family.html", family=fam, mandate=mandate, mandate_form=mandate_form, masked=direct_debit.masked,
        reservations=db.exec(select(Reservation).where(Reservation.family_id == fam.id).order_by(Reservation.id.desc())).all(),
        invoices=db.exec(select(Invoice).where(Invoice.family_id == fam.id).order_by(Invoice.month.desc())).all(),
        payments=db.exec(select(Payment).where(Payment.family_id == fam.id).order_by(Payment.created_at.desc())).all(),
        entries=entries, authors=audit.authors(db, entries), today=paris_today(utcnow()),
        reservation_states=planning.RESERVATION_STATES, invoice_states=billing.INVOICE_STATES,
        payment_states=billing.PAYMENT_STATES, methods=billing.PAYMENT_METHODS,
        children={c.id: c for c in fam.children})


def _csv_response(body: str, filename: str):
    response = current_app.response_class(body, mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@bp.get("/exports/familles.csv")
@staff_required
def families_csv():
    """Download: every family with its guardians, logins and children."""
    log_event("export.families")
    return _csv_response(exports.families_csv(get_db()), f"familles-{utcnow().astimezone(PARIS):%Y-%m-%d}.csv")


@bp.get("/exports/enfants.csv")
@staff_required
def children_csv():
    """Download: every child with health notes and authorised persons; each download is recorded."""
    with writing_session(get_db().get_bind()) as db:
        audit.record(db, current_user.id, "export", "children", 0, "Export des enfants avec leurs informations médicales")
        db.commit()
    log_event("export.health_data", what="children")
    return _csv_response(exports.children_csv(get_db()), f"enfants-{utcnow().astimezone(PARIS):%Y-%m-%d}.csv")


@bp.get("/periodes/<int:period_id>/reservations.csv")
@staff_required
def period_bookings_csv(period_id: int):
    """Download: the bookings of a period, day by day and unit by unit."""
    db = get_db()
    period = get_or_404(Period, period_id)
    return _csv_response(exports.period_bookings_csv(db, period), f"reservations-periode-{period.id}.csv")
