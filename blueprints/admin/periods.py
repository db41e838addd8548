"""Periods, for admins: dates, booking window, units and weekdays, deadlines, closed days, per-day capacities.

A change that would remove booked days (shorter dates, a unit or weekday withdrawn, a day closed) is
shown with the bookings it affects and saved only once the admin confirms; the families are told.
"""
from __future__ import annotations

from datetime import datetime, timezone

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlmodel import select

from blueprints.admin import bp
from blueprints.forms import ClosedDayForm, DayCapacityForm, PeriodForm, strip_all
from blueprints.web import admin_required
from db import get_db, get_or_404
from models import ClosedDay, Establishment, Period, PeriodUnit, Unit, utcnow
from services import audit, periods
from services.calendar import WEEKDAYS
from services.formatting import PARIS, count_words, to_paris


def _utc(local: datetime) -> datetime:
    return local.replace(tzinfo=PARIS).astimezone(timezone.utc)


def _impact_key(lost, overlaps=()) -> str:
    """What the admin was shown (bookings lost, periods overlapping): a confirmation holds only for that."""
    return ",".join(str(item.booking.id) for item in lost) + "|" + ",".join(str(p.id) for p in overlaps)


def _fill(form: PeriodForm, period: Period) -> PeriodForm:
    """The stored values the form cannot read as they are: Paris local times, calendar or working days."""
    form.booking_opens_at.data = to_paris(period.booking_opens_at).replace(tzinfo=None)
    form.booking_closes_at.data = to_paris(period.booking_closes_at).replace(tzinfo=None)
    form.working_days.data = "1" if period.working_days else "0"
    return form


def _establishment_units(establishment_id: int) -> list[Unit]:
    return get_db().exec(select(Unit).where(Unit.establishment_id == establishment_id)
                         .order_by(Unit.position, Unit.id)).all()


def _in_period(field, period: Period) -> bool:
    """False, with a French error on ``field``, when its day is outside ``period``."""
    if period.start_date <= field.data <= period.end_date:
        return True
    field.errors.append(f"Choisissez un jour de la période (du {period.start_date:%d/%m/%Y} au {period.end_date:%d/%m/%Y}).")
    return False


@bp.route("/etablissements/<int:establishment_id>/periodes/nouvelle", methods=["GET", "POST"])
@bp.route("/periodes/<int:period_id>", methods=["GET", "POST"])
@admin_required
def period(establishment_id: int | None = None, period_id: int | None = None):
    """Page: create or modify a period; below it, its closed days and per-day capacities."""
    db = get_db()
    current = get_or_404(Period, period_id) if period_id else None
    est = get_or_404(Establishment, current.establishment_id if current else establishment_id)
    units = _establishment_units(est.id)
    saved = periods.offered_weekdays(db, current) if current else {u.id: "01234" for u in units}
    form = PeriodForm(obj=current)
    if current and request.method == "GET":
        _fill(form, current)
    weekdays, lost, overlaps, unit_error = saved, [], [], ""
    if request.method == "POST":
        posted = {key.removeprefix("unite-") for key in request.form if key.startswith("unite-")}
        if not posted <= {str(u.id) for u in units}:
            abort(404)  # a unit of another establishment
        weekdays = {}
        for u in units:
            if request.form.get(f"unite-{u.id}"):
                days = "".join(sorted({d for d in request.form.getlist(f"jours-{u.id}") if d in "0123456" and len(d) == 1}))
                weekdays[u.id] = days
        if not weekdays or not all(weekdays.values()):
            unit_error = "Cochez au moins une unité, et pour chaque unité cochée au moins un jour de la semaine."
    if form.validate_on_submit() and not unit_error:
        strip_all(form)
        start, end = form.start_date.data, form.end_date.data
        if current:
            closed = set(db.exec(select(ClosedDay.day).where(ClosedDay.period_id == current.id)).all())
            lost = periods.lost_bookings(db, current, start, end, weekdays, closed)
        overlaps = periods.overlapping(db, est.id, start, end, current.id if current else None)
        shown = _impact_key(lost, overlaps)
        if (lost or overlaps) and request.form.get("confirmer") != shown:
            return render_template("admin/period.html", form=form, establishment=est, period=current, units=units,
                                   weekdays=weekdays, lost=lost, overlaps=overlaps, weekday_names=WEEKDAYS,
                                   confirm_key=shown, **_panels(current))
        values = {name: form[name].data for name in periods.PERIOD_FIELDS}
        values.update(booking_opens_at=_utc(form.booking_opens_at.data), booking_closes_at=_utc(form.booking_closes_at.data),
                      working_days=form.working_days.data == "1")
        done = periods.save_period(db, current_user.id, est, current, values, weekdays, lost, utcnow())
        target, holidays = done.period, done.holidays_closed
        message = f"La période « {target.name} » est enregistrée."
        if holidays:
            message += f" {count_words(holidays, 'jour férié fermé')} d'office (vous pouvez les rouvrir ci-dessous)."
        if lost:
            message += _removed(lost)
        flash(message, "success")
        return redirect(url_for("admin.period", period_id=target.id))
    return render_template("admin/period.html", form=form, establishment=est, period=current, units=units,
                           weekdays=weekdays, lost=lost, overlaps=overlaps, unit_error=unit_error,
                           weekday_names=WEEKDAYS, **_panels(current))


def _panels(current: Period | None) -> dict:
    """The closed days and per-day capacities shown under an existing period."""
    if current is None:
        return {}
    db = get_db()
    closed = db.exec(select(ClosedDay).where(ClosedDay.period_id == current.id).order_by(ClosedDay.day)).all()
    return {"closed": closed, "missing_holidays": periods.missing_holidays(db, current),
            "closed_form": ClosedDayForm(prefix="fermeture", meta={"csrf": False}), "capacity_form": _capacity_form(current),
            "capacities": periods.day_capacities(db, current)}


def _capacity_form(period: Period) -> DayCapacityForm:
    """The per-day capacity form, its units those the period offers."""
    form = DayCapacityForm(prefix="capacite", meta={"csrf": False})
    form.unit.choices = [(u.id, u.label) for u in get_db().exec(
        select(Unit).join(PeriodUnit, PeriodUnit.unit_id == Unit.id)
        .where(PeriodUnit.period_id == period.id).order_by(Unit.position))]
    return form


def _removed(lost) -> str:
    return f" {count_words(len(lost), 'réservation retirée')} ; les familles sont prévenues par mail."


@bp.post("/periodes/<int:period_id>/fermetures")
@admin_required
def close_day(period_id: int):
    """Action: close a day of the period (or every proposed public holiday); asks first if it is booked."""
    db = get_db()
    current = get_or_404(Period, period_id)
    weekdays = periods.offered_weekdays(db, current)
    closed = set(db.exec(select(ClosedDay.day).where(ClosedDay.period_id == current.id)).all())
    if request.form.get("feries"):
        new = {d: f"Jour férié : {name}" for d, name in periods.missing_holidays(db, current)}
        form = None
    else:
        form = ClosedDayForm(prefix="fermeture", meta={"csrf": False})
        if not form.validate_on_submit():
            return _period_page(current, closed_form=form)
        strip_all(form)
        if not _in_period(form.day, current):
            return _period_page(current, closed_form=form)
        if form.day.data in closed:
            form.day.errors.append("Ce jour est déjà fermé.")
            return _period_page(current, closed_form=form)
        new = {form.day.data: form.reason.data}
    lost = periods.lost_bookings(db, current, current.start_date, current.end_date, weekdays, closed | set(new))
    shown = _impact_key(lost)
    if lost and request.form.get("confirmer") != shown:
        return _period_page(current, closed_form=form, closing=new, lost=lost, confirm_key=shown)
    for day, reason in new.items():
        db.add(ClosedDay(period_id=current.id, day=day, reason=reason))
    if lost:
        periods.drop_bookings(db, current_user.id, current, lost, utcnow())
    audit.record(db, current_user.id, "create", "closed_day", current.id,
                 f"{count_words(len(new), 'jour fermé')} ({current.name}) : "
                 + ", ".join(f"{d:%d/%m/%Y}" for d in sorted(new)), after={d.isoformat(): r for d, r in new.items()})
    db.commit()
    flash(f"{count_words(len(new), 'jour fermé')}." + (_removed(lost) if lost else ""), "success")
    return redirect(url_for("admin.period", period_id=current.id) + "#fermetures")


@bp.post("/periodes/<int:period_id>/fermetures/<int:closed_id>/rouvrir")
@admin_required
def reopen_day(period_id: int, closed_id: int):
    """Action: reopen a closed day (a public holiday the town opens, a day closed by mistake)."""
    db = get_db()
    current = get_or_404(Period, period_id)
    row = db.get(ClosedDay, closed_id)
    if row is None or row.period_id != current.id:
        abort(404)
    db.delete(row)
    audit.record(db, current_user.id, "delete", "closed_day", current.id,
                 f"Jour rouvert ({current.name}) : {row.day:%d/%m/%Y}", before={row.day.isoformat(): row.reason})
    db.commit()
    flash(f"Le {row.day:%d/%m/%Y} est de nouveau ouvert à la réservation.", "success")
    return redirect(url_for("admin.period", period_id=current.id) + "#fermetures")


@bp.post("/periodes/<int:period_id>/capacites")
@admin_required
def day_capacity(period_id: int):
    """Action: give a unit its own capacity on one day of the period (empty: back to the usual one)."""
    db = get_db()
    current = get_or_404(Period, period_id)
    form = _capacity_form(current)
    if not form.validate_on_submit() or not _in_period(form.day, current):
        return _period_page(current, capacity_form=form)
    unit = db.get(Unit, form.unit.data)
    taken = periods.set_day_capacity(db, unit.id, form.day.data, form.capacity.data)
    audit.record(db, current_user.id, "update", "day_capacity", unit.id,
                 f"Capacité de {unit.label} le {form.day.data:%d/%m/%Y} : "
                 + (str(form.capacity.data) if form.capacity.data is not None else f"habituelle ({unit.capacity})"),
                 after={"capacite": form.capacity.data})
    db.commit()
    message = f"Capacité de {unit.label} le {form.day.data:%d/%m/%Y} enregistrée."
    level = "success"
    if form.capacity.data is not None and taken > form.capacity.data:
        message += (f" Attention : {taken} enfants ont déjà une place ce jour-là ; ils la gardent, "
                    "et aucune nouvelle place ne sera donnée tant que le nombre ne sera pas repassé sous la capacité.")
        level = "warning"
    flash(message, level)
    return redirect(url_for("admin.period", period_id=current.id) + "#capacites")


def _period_page(current: Period, **overrides):
    """The period page again, with a panel's form and its errors (what was typed is kept)."""
    db = get_db()
    est = db.get(Establishment, current.establishment_id)
    form = _fill(PeriodForm(obj=current, formdata=None), current)
    panels = _panels(current)
    panels.update({k: v for k, v in overrides.items() if v is not None})
    status = 200 if "lost" in overrides else 422
    return render_template("admin/period.html", form=form, establishment=est, period=current,
                           units=_establishment_units(est.id), weekdays=periods.offered_weekdays(db, current),
                           weekday_names=WEEKDAYS, overlaps=[],
                           **{"lost": [], **panels}), status
