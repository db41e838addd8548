"""French days: public holidays (the holidays package) and weekday names (Babel), and today in Paris."""
from __future__ import annotations

from datetime import date, datetime
from functools import lru_cache

import holidays
from babel.dates import get_day_names

from services.formatting import PARIS

# "Lundi" … "Dimanche", Monday first (0, as date.weekday()): Babel's French names, capitalised for a list.
WEEKDAYS = [name.capitalize() for _, name in sorted(get_day_names("wide", locale="fr_FR").items())]


@lru_cache(maxsize=16)
def public_holidays(year: int) -> dict:
    """French public holidays of ``year``, with their French names."""
    return dict(holidays.France(years=year, language="fr"))


def holiday_name(day: date) -> str | None:
    """« Ascension », « Lundi de Pentecôte »…, or None on a working day."""
    return public_holidays(day.year).get(day)


def paris_now(now: datetime) -> datetime:
    """``now`` (aware) on the town's clock: the date of "today" is its ``.date()``."""
    return now.astimezone(PARIS)


def paris_today(now: datetime) -> date:
    """Today's date on the town's clock, for ``now`` (aware): the one way "today" is computed."""
    return paris_now(now).date()
