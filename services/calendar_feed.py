"""The children's calendar: a private ICS feed per child of its booked days ("Ajouter à mon agenda").

The link carries a token that is an HMAC of the child and its ``calendar_version`` with the portal's
secret key: nothing secret is stored, and "Renouveler le lien" moves the version on, so the old link
stops at once. The feed says the days, the units' hours and the establishment's address; never health,
money or anything of the family's file. Calendar apps poll it: it is made from the bookings of the
moment, so a change shows at their next refresh.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime, timedelta

from icalendar import Calendar, Event
from sqlmodel import Session, select

from models import Booking, Child, ChildHousehold, Establishment, Unit, utcnow
from services.formatting import PARIS

PAST_DAYS = 92  # the feed keeps three months of the past: a calendar app has them already


def token(secret: str, child: Child, link: ChildHousehold | None = None) -> str:
    """The link's secret: of the child's file's household, or of its second household (``link``, shared
    custody), each with its own version, so that one renewing its link leaves the other's working."""
    message = (f"calendar:{child.id}:{child.calendar_version}" if link is None
               else f"calendar:{child.id}:household:{link.family_id}:{link.calendar_version}")
    digest = hmac.new(secret.encode(), message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:24]).decode()


def valid(secret: str, child: Child | None, typed: str, link: ChildHousehold | None = None) -> bool:
    return child is not None and hmac.compare_digest(token(secret, child, link), typed or "")


def feed(db: Session, child: Child, host: str, family_id: int | None = None) -> bytes:
    """The child's accepted bookings from three months ago on, one event per day and unit: those of the
    household ``family_id`` (the child's file's by default; shared custody: the other home's days are
    not in it)."""
    since = utcnow().astimezone(PARIS).date() - timedelta(days=PAST_DAYS)
    rows = db.exec(select(Booking, Unit, Establishment).join(Unit, Unit.id == Booking.unit_id)
                   .join(Establishment, Establishment.id == Unit.establishment_id)
                   .where(Booking.child_id == child.id, Booking.status == "accepted", Booking.day >= since,
                          Booking.family_id == (family_id or child.family_id))
                   .order_by(Booking.day, Unit.position)).all()
    calendar = Calendar()
    calendar.add("prodid", "-//Ribambelle//Portail famille//FR")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("x-wr-calname", f"Planning de {child.first_name}")
    calendar.add("x-wr-timezone", "Europe/Paris")
    calendar.add("refresh-interval", timedelta(hours=6), parameters={"VALUE": "DURATION"})
    for booking, unit, establishment in rows:
        event = Event()
        event.add("uid", f"booking-{booking.id}@{host}")
        event.add("dtstamp", booking.created_at)
        event.add("summary", f"{child.first_name} : {unit.label} — {establishment.name}")
        if unit.starts_at and unit.ends_at:
            event.add("dtstart", datetime.combine(booking.day, unit.starts_at, PARIS))
            event.add("dtend", datetime.combine(booking.day, unit.ends_at, PARIS))
        else:
            event.add("dtstart", booking.day)
            event.add("dtend", booking.day + timedelta(days=1))
        if establishment.address:
            event.add("location", f"{establishment.name}, {establishment.address}")
        event.add("transp", "TRANSPARENT")
        calendar.add_component(event)
    calendar.add_missing_timezones()
    return calendar.to_ical()
