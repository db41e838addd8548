"""French dates and money for the templates (Babel), in Europe/Paris time."""
from __future__ import annotations

import re
from datetime import date, datetime, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime
from babel.numbers import NumberFormatError, format_currency, parse_decimal

PARIS = ZoneInfo("Europe/Paris")


def to_paris(value: datetime) -> datetime:
    """A naive UTC datetime from the database, as Paris local time."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(PARIS)


@lru_cache(maxsize=2048)  # said for every cell of a planning: Babel is slow next to a dict
def date_long(value: date | None) -> str:
    """'lundi 6 juillet 2027'."""
    return format_date(value, format="full", locale="fr_FR") if value else ""


@lru_cache(maxsize=2048)
def date_short(value: date | None) -> str:
    """'06/07/2027'."""
    return format_date(value, format="dd/MM/yyyy", locale="fr_FR") if value else ""


def datetime_short(value: datetime | None) -> str:
    """'06/07/2027 à 14:05', in Paris time."""
    if not value:
        return ""
    return format_datetime(to_paris(value), "dd/MM/yyyy 'à' HH:mm", locale="fr_FR")


@lru_cache(maxsize=2048)
def day_month(value: date | None) -> str:
    """'6 juillet'."""
    return format_date(value, format="d MMMM", locale="fr_FR") if value else ""


@lru_cache(maxsize=2048)
def day_short(value: date | None) -> str:
    """'lun. 6'."""
    return format_date(value, format="EEE d", locale="fr_FR") if value else ""


@lru_cache(maxsize=2048)
def month_year(value: date | None) -> str:
    """'juillet 2027'."""
    return format_date(value, format="LLLL yyyy", locale="fr_FR") if value else ""


@lru_cache(maxsize=2048)
def month_short(value: date | None) -> str:
    """'juil. 2027': the month list of the planning, on a phone's width."""
    return format_date(value, format="LLL yyyy", locale="fr_FR") if value else ""


@lru_cache(maxsize=4096)  # an invoice says a dozen amounts, a statement a hundred: Babel is slow next to a dict
def euros(cents: int | None) -> str:
    """Integer cents as '12,50 €'."""
    if cents is None:
        return ""
    return format_currency(cents / 100, "EUR", locale="fr_FR")


AMOUNT = re.compile(r"\d[\d\u202f]*([.,]\d{1,2})?")  # digits, groups of thousands, at most two decimals
MAX_EUROS = 1_000_000  # no amount of a town's childcare is a million euros: a typing error


def parse_euros(text: str) -> int | None:
    """'12,50', '12.5', '1 234,50 €' (as ``euros`` writes it) as integer cents; None when not an amount.

    Babel reads the French number (its groups of thousands, its decimal comma); a point is taken as the
    decimal mark too, as parents type it on an English keyboard.
    """
    cleaned = (text or "").replace("€", "").strip().replace("\u00a0", "\u202f").replace(" ", "\u202f")
    if not AMOUNT.fullmatch(cleaned):
        return None
    try:
        value = parse_decimal(cleaned.replace(".", ","), locale="fr_FR", strict=True)
    except NumberFormatError:
        return None
    return int(value * 100) if 0 <= value < MAX_EUROS else None


def count_words(count: int, words: str) -> str:
    """'3 jours fermés', '1 jour fermé': the count, then each word in the plural when it is over one."""
    return f"{count} {plural(count, words)}"


# Words that stay as they are in the plural (adverbs, prepositions); words ending in s, x or z too.
INVARIABLE = {"à", "de", "déjà", "du", "en", "non", "par", "pas", "sur"}


def plural(count: int, words: str) -> str:
    """'jours fermés' for 3, 'jour fermé' for 1, 'déjà inscrits' for 2 (each word takes an s but the
    invariable ones): the words of ``count_words``."""
    if count <= 1:
        return words
    return " ".join(word if word in INVARIABLE or word[-1] in "sxz" else f"{word}s" for word in words.split())


def init_app(app) -> None:
    app.add_template_filter(date_long)
    app.add_template_filter(date_short)
    app.add_template_filter(datetime_short)
    app.add_template_filter(euros)
    app.add_template_filter(day_short)
    app.add_template_filter(day_month)
    app.add_template_filter(month_year)
    app.add_template_filter(month_short)
    app.add_template_filter(count_words)
    app.add_template_filter(plural)
