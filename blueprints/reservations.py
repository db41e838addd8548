"""Booking days on the month planning, from "Nouvelle réservation" to "Terminer" (guide sections 7-8).

Every route checks that the child belongs to the logged-in family and the period to an
establishment the child is enrolled in; htmx routes return fragments, pages return full pages
(or their fragment when htmx asks, with ``Vary: HX-Request``).
"""
from __future__ import annotations

from datetime import date, timedelta

from flask import Blueprint, abort, current_app, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user
from sqlmodel import select

from blueprints.web import is_htmx, page_or_fragment, parent_required, wants_fragment
from db import get_db
from models import Child, Period, PeriodUnit, Reservation, Unit, utcnow
from services import documents, outbox, planning
from services import family as family_service
from services.calendar import paris_today
from services.formatting import month_year

bp = Blueprint("reservations", __name__, url_prefix="/reservations")


def both_modes(rule: str, **options):
    """Register a view for booking (``rule``) and for cancellation (``/annulation`` + ``rule``).

    The view receives ``mode`` ("book" or "cancel"); ``url_for(..., mode=mode)`` builds either URL.
    """
    def decorator(view):
        bp.add_url_rule(rule, view_func=view, defaults={"mode": "book"}, **options)
        bp.add_url_rule("/annulation" + rule, view_func=view, defaults={"mode": "cancel"}, **options)
        return view

    return decorator


def _child_or_404(child_id: int) -> Child:
    child = family_service.child_of_family(get_db(), current_user.family_id, child_id)
    if child is None:
        abort(404)
    return child


def _period_or_404(child: Child, period_id: int) -> Period:
    period = planning.period_for_child(get_db(), child, period_id)
    if period is None:
        abort(404)
    return period


BAD_MONTH = "Le mois demandé n'existe pas (attendu : AAAA-MM, par exemple 2027-07)."


def _month_arg(period: Period, value: str | None) -> date:
    """The month asked for (YYYY-MM), kept inside the period; the current month by default."""
    try:
        return planning.month_asked(period, value, utcnow())
    except ValueError:
        abort(400, description=BAD_MONTH)


def _soonest_day(period: Period) -> date:
    """Roughly the first day that can still be booked: what the month and the week shown start from."""
    return planning.soonest_day(period, utcnow())


def _unit_arg(period: Period, value: str | None) -> Unit:
    """The unit posted, only when the period offers it (a forged id gets 404)."""
    try:
        unit_id = int(value or "")
    except ValueError:
        abort(400)
    unit = get_db().get(Unit, unit_id)
    if unit is None or unit.establishment_id != period.establishment_id:
        abort(404)
    return unit


# --- "Nouvelle réservation": child, establishment, period, Continuer --------------------------------------


@both_modes("/nouvelle", methods=["GET"])
@parent_required
def new(mode: str):
    """Page or dialog fragment: pick the child, the establishment and the period, then "Continuer"."""
    db = get_db()
    family = family_service.family_of(db, current_user)
    children = family.children
    child = establishment = period = None
    choices = []
    error = None
    # Each step: the choice sent, else the only one possible (ticked for the parent).
    if request.args.get("enfant"):
        child = family_service.child_of_family(db, family.id, request.args.get("enfant", type=int) or 0)
        if child is None:
            abort(404)
    elif len(children) == 1:
        child = children[0]
    if child:
        choices = planning.bookable_periods(db, child, utcnow(), mode)
    # An establishment or a period that is not one of this child's (another child was just ticked, or
    # the id is forged) is not chosen: the step is asked again, nothing of another file is shown.
    est_id = request.args.get("etablissement", type=int)
    establishment = next((e for e, _ in choices if e.id == est_id), None)
    if establishment is None and len(choices) == 1:
        establishment = choices[0][0]
    periods = next((ps for e, ps in choices if establishment and e.id == establishment.id), [])
    period_id = request.args.get("periode", type=int)
    period = next((p for p in periods if p.id == period_id), None)
    if period is None and len(periods) == 1:
        period = periods[0]
    if request.args.get("continuer"):
        if child and establishment and period:
            target = url_for("reservations.planning_page", child_id=child.id, period_id=period.id, mode=mode)
            if is_htmx():
                return "", 204, {"HX-Redirect": target}
            return redirect(target)
        error = "Choisissez un enfant, un établissement puis une période avant de continuer."
    context = dict(children=children, child=child, establishment=establishment, period=period,
                   choices=choices, error=error, mode=mode)
    return page_or_fragment("reservations/new.html", "partials/reservations/_new_dialog.html", **context)


# --- the planning ---------------------------------------------------------------------------------


def _month_context(opened: planning.OpenedMonth, mode: str, message: str = "") -> dict:
    """The month's template context."""
    months = planning.period_months(opened.period)
    index = months.index(opened.month)
    return dict(
        child=opened.child, period=opened.period, month=opened.month, plan=opened.plan, months=months,
        previous=months[index - 1] if index > 0 else None,
        next=months[index + 1] if index + 1 < len(months) else None,
        selected=opened.selected, message=message, mode=mode, establishment=opened.establishment,
        live_oob=wants_fragment(),  # an htmx answer also fills the page's live region
    )


def _open_month(child_id: int, period_id: int, month_text: str | None, mode: str) -> planning.OpenedMonth:
    """The month of the household's child on the period (404 when it is not theirs, 400 for a bad month)."""
    try:
        opened = planning.open_month(get_db(), current_user.family_id, child_id, period_id, month_text, utcnow(), mode)
    except ValueError:
        abort(400, description=BAD_MONTH)
    if opened is None:
        abort(404)
    return opened


@both_modes("/planning/<int:child_id>/<int:period_id>", methods=["GET"])
@parent_required
def planning_page(child_id: int, period_id: int, mode: str):
    """Page: the month planning; its month fragment for htmx (month picker, previous/next)."""
    opened = _open_month(child_id, period_id, request.args.get("mois"), mode)
    shown = f"Planning de {month_year(opened.month)} affiché." if wants_fragment() else ""  # said after a month change
    return page_or_fragment("reservations/planning.html", "partials/reservations/_month.html",
                            **_month_context(opened, mode, shown))


def _back_to_month(child: Child, period: Period, month: date, mode: str, anchor: str | None = None):
    return redirect(url_for("reservations.planning_page", child_id=child.id, period_id=period.id, mode=mode,
                            mois=month.strftime("%Y-%m"), _anchor=anchor))


@both_modes("/planning/<int:child_id>/<int:period_id>/cellule", methods=["POST"])
@parent_required
def toggle(child_id: int, period_id: int, mode: str):
    """Fragment: the clicked cell, with the other cells and the counter it changed (out of band)."""
    day_text, _, unit_text = (request.form.get("cellule") or "").partition(".")
    try:
        day, unit_id = date.fromisoformat(day_text), int(unit_text)
        done = planning.click(get_db(), current_user.family_id, child_id, period_id, unit_id, day, utcnow(), mode)
    except (ValueError, planning.OutsidePeriod):
        abort(400)
    if done is None:
        abort(404)
    month = _month_arg(done.period, request.form.get("mois"))
    if not is_htmx():
        flash(done.message, "success" if done.ok else "error")
        return _back_to_month(done.child, done.period, month, mode, f"cell-{day.isoformat()}-{done.unit.code}")
    plan, change = done.change.planning, done.change
    others = [plan.cell(plan.unit(u), d) for d in change.days for u in change.units if (u, d) != (unit_id, day)]
    return render_template("partials/reservations/_toggled.html", cell=plan.cell(done.unit, day), others=others,
                           child=done.child, period=done.period, month=month, message=done.message, ok=done.ok,
                           mode=mode, selected=done.selected)


CONFIRM_ABOVE = 3  # booked days a bulk cancellation marks without asking first

# action -> (select, scope), for booking and for cancellation (where "deselecting" a booked day
# selects its cancellation, as the guide says, and "retablir" keeps the days after all).
BULK_ACTIONS = {
    "book": {"periode": (True, "period"), "ecran": (True, "screen"),
             "deselection-periode": (False, "period"), "deselection-ecran": (False, "screen")},
    "cancel": {"deselection-periode": (True, "period"), "deselection-ecran": (True, "screen"),
               "retablir": (False, "period")},
}


@both_modes("/planning/<int:child_id>/<int:period_id>/lot", methods=["POST"])
@parent_required
def bulk(child_id: int, period_id: int, mode: str):
    """Fragment (the month) or redirect: select or deselect a unit on the period or on the screen."""
    child = _child_or_404(child_id)
    period = _period_or_404(child, period_id)
    unit = _unit_arg(period, request.form.get("unite"))
    month = _month_arg(period, request.form.get("mois"))
    if request.form.get("action") not in BULK_ACTIONS[mode]:
        abort(400)
    select_days, scope = BULK_ACTIONS[mode][request.form["action"]]
    days = planning.all_period_days(period) if scope == "period" else planning.month_days(period, month)
    # One tap that would mark many booked days for cancellation: asked first (the form again, confirme=1).
    ask = mode == "cancel" and request.form.get("confirme") != "1"
    return _apply_bulk(child, period, unit, month, days, select_days, mode, CONFIRM_ABOVE if ask else None)


def _apply_bulk(child, period, unit, month, days, select_days, mode="book", ask_above=None):
    """Select or deselect ``days``, then the month fragment (htmx) or a redirect to it with a message;
    or, when the service held a large selection back, the question (a dialog, or a page without JS)."""
    try:
        change = planning.bulk(get_db(), child, period, unit.id, days, select_days, utcnow(), mode, ask_above,
                               family_id=current_user.family_id)
        message = change.message
    except planning.PlanningError as exc:
        change, message = None, str(exc)
    if change is not None and change.to_confirm:
        context = dict(child=child, period=period, unit=unit, month=month, mode=mode, days=change.to_confirm,
                       action=request.form["action"])
        if not is_htmx():
            return render_template("reservations/bulk_confirm.html", **context)
        response = make_response(render_template("partials/reservations/_bulk_confirm_dialog.html", **context))
        response.headers.update({"HX-Retarget": "body", "HX-Reswap": "beforeend"})
        return response
    if not is_htmx():
        flash(message, "success")
        return _back_to_month(child, period, month, mode)
    opened = _open_month(child.id, period.id, f"{month:%Y-%m}", mode)
    response = make_response(render_template("partials/reservations/_month.html",
                                             **_month_context(opened, mode, message)))
    response.headers["HX-Trigger"] = "ribambelle:close-dialog"
    return response


@bp.route("/planning/<int:child_id>/<int:period_id>/automatique", methods=["GET", "POST"])
@parent_required
def auto(child_id: int, period_id: int):
    """Dialog fragment or page: "Sélection automatique des jours" for one unit."""
    child = _child_or_404(child_id)
    period = _period_or_404(child, period_id)
    unit = _unit_arg(period, request.values.get("unite"))
    month = _month_arg(period, request.values.get("mois"))
    weekdays = _open_weekdays(period, unit)
    weeks = planning.month_weeks(period, month)
    error = None
    ticked: set[int] = set()
    scope = request.form.get("portee", "period")
    if request.method == "POST" and scope == "week":
        week = _week_arg(weeks, request.form.get("semaine"))
    else:  # the first week with a day that can still be booked
        first = _soonest_day(period)
        week = next((monday for monday in weeks if monday + timedelta(days=6) >= first), weeks[-1])
    if request.method == "POST":
        try:
            ticked = {int(v) for v in request.form.getlist("jours")}
        except ValueError:
            abort(400)
        if not ticked or not ticked <= set(weekdays):
            error = "Cochez au moins un jour de la semaine."
        elif scope not in ("period", "week"):
            error = "Choisissez où appliquer la sélection."
        else:
            if scope == "period":
                days = planning.all_period_days(period)
            else:
                days = [d for d in planning.month_days(period, month) if week <= d < week + timedelta(days=7)]
            return _apply_bulk(child, period, unit, month, planning.auto_days(period, ticked, days), True, "book")
    context = dict(child=child, period=period, unit=unit, month=month, weekdays=weekdays, ticked=ticked,
                   scope=scope, error=error, names=planning.WEEKDAYS, mode="book", weeks=weeks, week=week,
                   one_week=timedelta(days=6))
    if is_htmx() and request.method == "POST":
        # an invalid dialog is drawn again in place, with status 200 so that htmx swaps it
        response = make_response(render_template("partials/reservations/_auto_dialog.html", **context))
        response.headers["HX-Retarget"] = "#auto-dialog"
        response.headers["HX-Reswap"] = "outerHTML"
        return response
    return page_or_fragment("reservations/auto.html", "partials/reservations/_auto_dialog.html", **context)


def _week_arg(weeks: list[date], value: str | None) -> date:
    """The Monday chosen in the automatic selection, one of the shown month's weeks (else 400)."""
    try:
        monday = date.fromisoformat(value or "")
    except ValueError:
        abort(400, description="La semaine choisie n'existe pas.")
    if monday not in weeks:
        abort(400, description="La semaine choisie n'est pas dans le mois affiché.")
    return monday


def _open_weekdays(period: Period, unit: Unit) -> list[int]:
    pu = get_db().exec(select(PeriodUnit).where(PeriodUnit.period_id == period.id,
                                                PeriodUnit.unit_id == unit.id)).first()
    if pu is None:
        abort(404)
    return [int(c) for c in pu.weekdays]


@bp.route("/absence", methods=["GET", "POST"])
@parent_required
def absence():
    """Page: "Signaler une absence" — a child's booked units today or tomorrow, cancelled in one tap."""
    db = get_db()
    family = family_service.family_of(db, current_user)
    today = paris_today(utcnow())
    if request.method == "POST":
        child = _child_or_404(request.form.get("enfant", type=int) or 0)
        try:
            day = date.fromisoformat(request.form.get("jour", ""))
        except ValueError:
            abort(400)
        try:
            made = planning.declare_absence(db, current_user.id, child, day, utcnow(), current_user.family_id)
        except planning.PlanningError as exc:
            flash(str(exc), "error")
            return redirect(url_for("reservations.absence"))
        outbox.send_soon(current_app._get_current_object())
        numbers = ", ".join(r.number for r in made)
        flash(f"L'absence de {child.first_name} le {day:%d/%m/%Y} est signalée à la structure ({numbers}). "
              "Elle décidera si l'absence est justifiée (non facturée).", "success")
        return redirect(url_for("account.home", _anchor="inscriptions"))
    options = planning.absence_options(db, family.id, today)
    children = {c.id: c for c in family.children}
    return render_template("reservations/absence.html", options=options, children=children, today=today)


@bp.get("/legende")
def legend():
    """Fragment or page: every cell state and reservation state, icon and words."""
    return page_or_fragment("reservations/legend.html", "partials/reservations/_legend.html",
                             states=planning.STATES, reservation_states=planning.RESERVATION_STATES)


# --- recap, confirmation, detail ------------------------------------------------------------------------


@both_modes("/planning/<int:child_id>/<int:period_id>/recapitulatif", methods=["GET"])
@parent_required
def recap(child_id: int, period_id: int, mode: str):
    """Page: "Valider le planning" — the days to check before "Confirmer la réservation"."""
    opened = planning.open_planning(get_db(), current_user.family_id, child_id, period_id, mode)
    if opened is None:
        abort(404)
    child, period = opened.child, opened.period
    draft, lines = planning.recap(get_db(), child, period, utcnow(), mode, current_user.family_id,
                                  opened=opened)
    month = _month_arg(period, request.args.get("mois"))
    blocking, warning = ([], []) if mode == "cancel" else documents.missing_for(
        get_db(), child, period.establishment_id, paris_today(utcnow()), current_user.family_id)
    return render_template("reservations/recap.html", child=child, period=period, draft=draft, lines=lines,
                           month=month, establishment=opened.establishment,
                           summary=planning.recap_summary(lines, mode),
                           icons=planning.CANCEL_OUTCOME_ICONS if mode == "cancel" else planning.OUTCOME_ICONS,
                           outcomes=planning.CANCEL_OUTCOMES if mode == "cancel" else planning.OUTCOMES, mode=mode,
                           documents_blocking=blocking, documents_warning=warning)


@both_modes("/planning/<int:child_id>/<int:period_id>/confirmer", methods=["POST"])
@parent_required
def confirm(child_id: int, period_id: int, mode: str):
    """Record the reservation (once, whatever the clicks), then show its summary."""
    db = get_db()
    opened = planning.open_planning(db, current_user.family_id, child_id, period_id, mode)
    if opened is None:
        abort(404)
    child, period = opened.child, opened.period
    revision = request.form.get("revision", type=int)
    if revision is None:
        abort(400)
    try:
        confirm_ = planning.confirm_cancellation if mode == "cancel" else planning.confirm
        reservation = confirm_(db, current_user.id, child, period, revision, utcnow(), current_user.family_id, opened)
    except planning.PlanningError as exc:
        flash(str(exc), "error")
        return redirect(url_for("reservations.recap", child_id=child.id, period_id=period.id, mode=mode))
    outbox.send_soon(current_app._get_current_object())  # a freed place may have mailed a waiting family
    return redirect(url_for("reservations.detail", reservation_id=reservation.id, terminer=1))


@bp.get("/<int:reservation_id>")
@parent_required
def detail(reservation_id: int):
    """Page: a reservation with each day and unit and its outcome; "Terminer" right after confirming."""
    db = get_db()
    reservation = db.get(Reservation, reservation_id)
    if reservation is None or reservation.family_id != current_user.family_id:
        abort(404)
    units = {u.id: u for u in db.exec(_units_query(reservation.period_id))}
    return render_template(
        "reservations/detail.html", reservation=reservation, child=db.get(Child, reservation.child_id),
        period=db.get(Period, reservation.period_id), units=units, just_confirmed=bool(request.args.get("terminer")),
        states=planning.RESERVATION_STATES, line_words=planning.line_words,
    )


def _units_query(period_id: int):
    return select(Unit).join(PeriodUnit, PeriodUnit.unit_id == Unit.id).where(PeriodUnit.period_id == period_id)
