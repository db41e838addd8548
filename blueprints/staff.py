"""The back office for agents: the queue of family and child changes to validate."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user

from blueprints.forms import DecisionForm, strip_all
from models import ChangeRequest, Family, User, get_db
from services import family as family_service, outbox
from services.security import staff_required

bp = Blueprint("staff", __name__, url_prefix="/agent")


@bp.after_request
def no_store(response):
    response.headers["Cache-Control"] = "no-store"
    return response


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
        action = "refuse" if request.form.get("action") == "refuse" else "validate"
        if req.status != "pending":
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
    from datetime import date

    from sqlmodel import select

    from models import Establishment, Period
    from services import planning

    db = get_db()
    establishment_id = request.args.get("etablissement", type=int)
    period_id = request.args.get("periode", type=int)
    try:
        day = date.fromisoformat(request.args["jour"]) if request.args.get("jour") else None
    except ValueError:
        day = None
        flash("Date invalide : le filtre par date est ignoré.", "error")
    rows = planning.pending_lines(db, establishment_id, period_id, day)
    return render_template(
        "staff/reservations.html", rows=rows,
        establishments=db.exec(select(Establishment).order_by(Establishment.name)).all(),
        periods=db.exec(select(Period).order_by(Period.start_date)).all(),
        establishment_id=establishment_id, period_id=period_id, day=day,
    )


def _decide_lines(line_ids: list[int], accept: bool, message: str) -> list[str]:
    """Decide each line in its own transaction; mail the family once. Returns the problems met."""
    from models import Child, Reservation, Unit, utcnow
    from services import planning

    db = get_db()
    done, problems = [], []
    for line_id in line_ids:
        try:
            done.append(planning.decide_line(db, current_user.id, line_id, accept, message, utcnow()))
        except planning.PlanningError as exc:
            problems.append(str(exc))
    if not done:
        return problems
    reservation = db.get(Reservation, done[0].reservation_id)
    child = db.get(Child, reservation.child_id)
    decided = [(line, db.get(Unit, line.unit_id)) for line in done]
    verdict = "acceptée" if accept else "refusée"
    for user in db.get(Family, reservation.family_id).users:
        if user.active:
            outbox.queue(db, user.email, f"Réservation {reservation.number} : demande {verdict}", "reservation_decided",
                         user=user, child=child, reservation=reservation, decided=decided, accepted=accept, message=message)
    db.commit()
    outbox.send_soon(current_app._get_current_object())
    flash(f"{child.first_name}, réservation {reservation.number} : {len(done)} jour{'s' * (len(done) > 1)} "
          f"{verdict}{'s' * (len(done) > 1)} ; la famille est prévenue par courriel.", "success")
    return problems


def _decision_args() -> tuple[bool, str] | None:
    message = (request.form.get("message") or "").strip()[:2000]
    accept = request.form.get("action") == "accepter"
    if not accept and not message:
        flash("Pour refuser, écrivez à la famille la raison du refus.", "error")
        return None
    return accept, message


@bp.post("/reservations/lignes/<int:line_id>")
@staff_required
def decide_line(line_id: int):
    """Accept or refuse one line; the family is told by mail."""
    from models import ReservationLine

    if get_db().get(ReservationLine, line_id) is None:
        abort(404)
    args = _decision_args()
    if args:
        for problem in _decide_lines([line_id], *args):
            flash(problem, "error")
    return redirect(request.referrer or url_for("staff.reservation_queue"))


@bp.post("/reservations/<int:reservation_id>/decision")
@staff_required
def decide_reservation(reservation_id: int):
    """Accept or refuse every pending line of a reservation at once."""
    from sqlmodel import select

    from models import Reservation, ReservationLine

    db = get_db()
    if db.get(Reservation, reservation_id) is None:
        abort(404)
    args = _decision_args()
    if args:
        ids = db.exec(select(ReservationLine.id).where(ReservationLine.reservation_id == reservation_id,
                                                       ReservationLine.state == "pending")).all()
        db.commit()  # end the read before each line takes its own write transaction
        if not ids:
            flash("Cette réservation n'a plus de demande en attente.", "info")
        for problem in _decide_lines(list(ids), *args):
            flash(problem, "error")
    return redirect(request.referrer or url_for("staff.reservation_queue"))
