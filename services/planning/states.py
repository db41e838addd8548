"""The states of reservations and of their lines, in the words shown to families and agents."""
from __future__ import annotations

from models import (
    ReservationLine,
)
from services.formatting import count_words

RESERVATION_STATES = {
    "pending": ("En attente de traitement", "request"),
    "accepted": ("Acceptée", "booked"),
    "partial": ("Partiellement acceptée", "partial"),
    "refused": ("Refusée", "refused"),
}


LINE_STATES = {
    ("accepted", "accepted"): "Réservation acceptée",
    ("request", "pending"): "Demande de réservation, en attente",
    ("request", "accepted"): "Demande acceptée",
    ("waitlist", "pending"): "Liste d'attente",
    ("waitlist", "accepted"): "Place obtenue (liste d'attente)",
    ("cancel-accepted", "accepted"): "Annulation acceptée",
    ("cancel-request", "pending"): "Demande d'annulation, en attente",
    ("cancel-request", "accepted"): "Annulation acceptée par la structure",
}


def state_summary(lines: list[ReservationLine], cancellation: bool = False) -> str:
    """What the lines became, counted: "13 jours acceptés, 4 en attente" (the overall state alone would
    say "En attente de traitement" for 13 accepted days and 4 waiting)."""
    if cancellation:
        noun, e = "annulation", "e"
    elif len({l.day for l in lines}) == len(lines):
        noun, e = "jour", ""
    else:  # several units on one day: count the boxes ticked, not the days
        noun, e = "case", "e"
    parts = []  # the noun said once, with the first count
    for state, word in (("accepted", f"accepté{e}"), ("pending", None), ("refused", f"refusé{e}")):
        n = sum(1 for l in lines if l.state == state)
        if not n:
            continue
        if word is None:  # "en attente" does not take the plural
            parts.append(f"{count_words(n, noun) if not parts else n} en attente")
        else:
            parts.append(count_words(n, f"{noun} {word}" if not parts else word))
    return ", ".join(parts)


def reservation_status(lines: list[ReservationLine]) -> str:
    states = {l.state for l in lines}
    if "pending" in states:
        return "pending"
    if states == {"accepted"}:
        return "accepted"
    if states == {"refused"}:
        return "refused"
    return "partial"
