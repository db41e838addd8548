"""The rules of days and deadlines: which days a period offers, when a day can still be booked or
cancelled (counted as DOMAIN.md says), which periods a child may book."""
from __future__ import annotations

import calendar
from datetime import date, datetime, timedelta

from sqlmodel import Session, select

from models import (
    Booking,
    Child,
    Enrollment,
    Establishment,
    Period,
    Unit,
)
from services.calendar import holiday_name, paris_now, paris_today
from services.family import in_household


class PlanningError(Exception):
    """A request the rules refuse; the message is French and shown as is."""


def counting_start(period: Period, now: datetime) -> date:
    """The first counted day: today until the cut-off time, tomorrow after it (Paris time)."""
    local = paris_now(now)
    start = local.date()
    if local.time().replace(tzinfo=None) > period.cutoff_time:
        start += timedelta(days=1)
    return start


def days_ahead(period: Period, day: date, now: datetime) -> int:
    """Days from the counting start to ``day``: calendar days, or Monday-Friday non-holidays."""
    start = counting_start(period, now)
    if not period.working_days:
        return (day - start).days
    if day <= start:
        return (day - start).days
    count, current = 0, start
    while current < day:
        current += timedelta(days=1)
        if current.weekday() < 5 and holiday_name(current) is None:
            count += 1
    return count


def booking_rule(period: Period, day: date, now: datetime) -> tuple[str | None, str]:
    """('accepted'|'request', '') when ``day`` may be booked now, else (None, why it is locked)."""
    if day < paris_today(now):
        return None, "Date passée"
    if now < period.booking_opens_at:
        opens = paris_now(period.booking_opens_at)
        return None, f"Réservations ouvertes à partir du {opens:%d/%m/%Y à %H:%M}"
    if now > period.booking_closes_at:
        return None, "Période de réservation terminée : contactez la structure"
    ahead = days_ahead(period, day, now)
    if ahead < period.min_days:
        return None, f"Délai dépassé : il faut réserver au moins {period.min_days} jours à l'avance ; contactez la structure"
    if ahead < period.auto_accept_days:
        return "request", f"Moins de {period.auto_accept_days} jours à l'avance : demande traitée par la structure"
    return "accepted", ""


def cancel_rule(period: Period, status: str, day: date, now: datetime) -> tuple[str | None, str]:
    """('accepted'|'request', why) when a booking of ``day`` may be cancelled now, else (None, why not).

    A request or a waiting-list place not yet granted is withdrawn at once; an accepted booking
    follows the period's cancellation deadlines.
    """
    if day < paris_today(now):
        return None, "Date passée : contactez la structure"
    if status in ("request", "waitlist"):
        return "accepted", ""
    ahead = days_ahead(period, day, now)
    if ahead < period.cancel_min_days:
        return None, "Délai d'annulation dépassé : contactez la structure"
    if ahead < period.cancel_auto_days:
        return "request", (f"Moins de {period.cancel_auto_days} jours à l'avance : demande d'annulation traitée par "
                           "la structure, facturée sauf absence justifiée")
    return "accepted", ""


def month_days(period: Period, month: date) -> list[date]:
    """The days of ``month`` inside the period."""
    last = calendar.monthrange(month.year, month.month)[1]
    first_day, last_day = date(month.year, month.month, 1), date(month.year, month.month, last)
    start, end = max(first_day, period.start_date), min(last_day, period.end_date)
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def period_months(period: Period) -> list[date]:
    """First day of every month the period touches."""
    months, current = [], date(period.start_date.year, period.start_date.month, 1)
    while current <= period.end_date:
        months.append(current)
        current = date(current.year + (current.month == 12), current.month % 12 + 1, 1)
    return months


def soonest_day(period: Period, now: datetime) -> date:
    """Roughly the first day that can still be booked: what the month and the week shown start from."""
    return paris_today(now) + timedelta(days=period.min_days)


def month_asked(period: Period, value: str | None, now: datetime) -> date:
    """The month asked for ("YYYY-MM"), kept inside the period; by default the month of the first day
    that can still be booked. ValueError when ``value`` is not a month."""
    months = period_months(period)
    if value:
        year, month = (int(part) for part in value.split("-"))
        try:
            wanted = date(year, month, 1)
        except OverflowError as error:
            raise ValueError(value) from error
    else:
        first = max(soonest_day(period, now), period.start_date)
        wanted = date(first.year, first.month, 1)
    return min(max(wanted, months[0]), months[-1])


def bookable_periods(db: Session, child: Child, now: datetime,
                     mode: str = "book") -> list[tuple[Establishment, list[Period]]]:
    """Establishments the child is enrolled in, with their periods open for booking now.

    For cancellations: the periods not over yet in which the child holds a booking.
    """
    result = []
    establishments = db.exec(
        select(Establishment).join(Enrollment, Enrollment.establishment_id == Establishment.id)
        .where(Enrollment.child_id == child.id).order_by(Establishment.name)
    ).all()
    for est in establishments:
        if mode == "cancel":
            periods = db.exec(
                select(Period).where(Period.establishment_id == est.id, Period.end_date >= paris_today(now))
                .where(select(Booking.id).join(Unit, Unit.id == Booking.unit_id)
                       .where(Booking.child_id == child.id, Unit.establishment_id == est.id,
                              Booking.day >= Period.start_date, Booking.day <= Period.end_date).exists())
                .order_by(Period.start_date)
            ).all()
            result.append((est, list(periods)))
            continue
        periods = db.exec(
            select(Period).where(
                Period.establishment_id == est.id,
                Period.booking_opens_at <= now,
                Period.booking_closes_at >= now,
                Period.end_date >= paris_today(now),
            ).order_by(Period.start_date)
        ).all()
        result.append((est, list(periods)))
    return result


def period_for_child(db: Session, child: Child, period_id: int) -> Period | None:
    """The period, only when the child is enrolled in its establishment (else None: 404)."""
    return db.exec(select(Period).join(Child, Child.id == child.id)
                   .where(Period.id == period_id, enrolled(child.family_id))).first()


def enrolled(family_id: int):
    """The condition that the child is the household's (shared custody included) and enrolled in the period's establishment, for a
    query that has Child and Period in its FROM (or correlates them)."""
    return in_household(family_id) & (
        select(Enrollment.id).where(Enrollment.child_id == Child.id,
                                    Enrollment.establishment_id == Period.establishment_id).exists())


def month_weeks(period: Period, month: date) -> list[date]:
    """The Mondays of the weeks of ``month`` that hold days of the period (the automatic selection's weeks)."""
    return sorted({day - timedelta(days=day.weekday()) for day in month_days(period, month)})


def auto_days(period: Period, weekdays: set[int], days: list[date]) -> list[date]:
    """The days among ``days`` that fall on the ticked weekdays (0 = Monday)."""
    return [d for d in days if d.weekday() in weekdays]


def all_period_days(period: Period) -> list[date]:
    return [period.start_date + timedelta(days=i) for i in range((period.end_date - period.start_date).days + 1)]
