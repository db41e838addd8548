"""The states of reservations and of their lines, in the words shown to families and agents."""
from __future__ import annotations

from models import Action, LineState, Outcome, ReservationLine, ReservationStatus
from services.formatting import count_words

# state -> (words shown, icon file): the one table of each.
RESERVATION_STATES = {
    ReservationStatus.PENDING: ("En attente de traitement", "request"),
    ReservationStatus.ACCEPTED: ("Acceptée", "booked"),
    ReservationStatus.PARTIAL: ("Partiellement acceptée", "partial"),
    ReservationStatus.REFUSED: ("Refusée", "refused"),
}


# What confirming gives (a selected cell, a line of the recap) -> its icon; for a cancellation, its own.
OUTCOME_ICONS = {Outcome.ACCEPTED: "booked", Outcome.REQUEST: "request", Outcome.WAITLIST: "waitlist"}
CANCEL_OUTCOME_ICONS = {Outcome.ACCEPTED: "cancel-selected", Outcome.REQUEST: "cancel-request"}

# (outcome, state) of a line -> its words.
LINE_STATES = {
    (Outcome.ACCEPTED, LineState.ACCEPTED): "Réservation acceptée",
    (Outcome.REQUEST, LineState.PENDING): "Demande de réservation, en attente",
    (Outcome.REQUEST, LineState.ACCEPTED): "Demande acceptée",
    (Outcome.WAITLIST, LineState.PENDING): "Liste d'attente",
    (Outcome.WAITLIST, LineState.ACCEPTED): "Place obtenue (liste d'attente)",
    (Outcome.CANCEL_ACCEPTED, LineState.ACCEPTED): "Annulation acceptée",
    (Outcome.CANCEL_REQUEST, LineState.PENDING): "Demande d'annulation, en attente",
    (Outcome.CANCEL_REQUEST, LineState.ACCEPTED): "Annulation acceptée par la structure",
}


def state_summary(lines: list[ReservationLine], cancellation: bool = False) -> str:
    """What the lines became, counted: "13 jours acceptés, 4 en attente" (the overall state alone would
    say "En attente de traitement" for 13 accepted days and 4 waiting)."""
    counts = {state: sum(1 for l in lines if l.state == state) for state in LineState}
    return summary_words(counts, len({l.day for l in lines}) == len(lines), cancellation)


def summary_words(counts: dict[str, int], one_per_day: bool, cancellation: bool = False) -> str:
    """``state_summary`` from the count of lines per state, as a query may give them (``one_per_day``:
    no two lines on one day, so the boxes are days)."""
    if cancellation:
        noun, e = "annulation", "e"
    elif one_per_day:
        noun, e = "jour", ""
    else:  # several units on one day: count the boxes ticked, not the days
        noun, e = "case", "e"
    parts = []  # the noun said once, with the first count
    for state, word in ((LineState.ACCEPTED, f"accepté{e}"), (LineState.PENDING, None), (LineState.REFUSED, f"refusé{e}")):
        n = counts.get(state, 0)
        if not n:
            continue
        if word is None:  # "en attente" does not take the plural
            parts.append(f"{count_words(n, noun) if not parts else n} en attente")
        else:
            parts.append(count_words(n, f"{noun} {word}" if not parts else word))
    return ", ".join(parts)


def reservation_status(lines: list[ReservationLine]) -> ReservationStatus:
    """The reservation's state from its lines': waiting while one waits (or is being decided)."""
    return status_of_states({l.state for l in lines})


def status_of_states(states: set[str]) -> ReservationStatus:
    """The reservation's state from the set of its lines' states."""
    if states & {LineState.PENDING, LineState.DECIDING}:
        return ReservationStatus.PENDING
    if states == {LineState.ACCEPTED}:
        return ReservationStatus.ACCEPTED
    if states == {LineState.REFUSED}:
        return ReservationStatus.REFUSED
    return ReservationStatus.PARTIAL


def line_words(line: ReservationLine) -> tuple[str, str]:
    """(words, icon) of a reservation line, as the family's reservation page shows it."""
    if line.state == LineState.REFUSED:
        return RESERVATION_STATES[ReservationStatus.REFUSED]
    words = LINE_STATES.get((line.outcome, line.state), line.outcome)
    if line.action == Action.CANCEL:
        icon = "cancel-request" if line.state == LineState.PENDING else "cancelled"
    elif line.state == LineState.ACCEPTED:
        icon = "booked"
    else:
        icon = OUTCOME_ICONS[Outcome.REQUEST if line.outcome == Outcome.REQUEST else Outcome.WAITLIST]
    if line.justified:
        words += f" — absence justifiée ({line.justification})"
    elif line.billable:
        words += " — facturée (annulation tardive)"
    return words, icon
