"""The month planning: what each cell is, what a click does, the confirmation, and what agents decide.

Everything here takes ``now`` (an aware datetime) so that the deadlines can be tested at their
boundaries. Deadlines follow DOMAIN.md: days are counted from the counting start (today before the
period's cut-off time, tomorrow after it) to the booked date, in calendar or working days.

One idea per module: rules (days and deadlines), grid (cells and their words), drafts (what is ticked),
places (and the waiting list), confirmation (and cancellation), decisions (agents), absences. The names
below are re-exported so that callers write ``planning.toggle(...)`` whatever module holds it.
"""
from services.calendar import WEEKDAYS, holiday_name, paris_now, public_holidays  # noqa: F401
from services.planning.absences import absence_options, declare_absence  # noqa: F401
from services.planning.confirmation import (  # noqa: F401
    RecapLine,
    cancel_line,
    claim_draft,
    commit_or_existing,
    confirm,
    confirm_cancellation,
    drop_booking,
    new_reservation,
    next_number,
    recap,
    recap_summary,
    why_changed,
)
from services.planning.decisions import Decided, decide, decide_line, pending_lines  # noqa: F401
from services.planning.drafts import (  # noqa: F401
    Change,
    Click,
    OutsidePeriod,
    bulk,
    clear_excluded,
    click,
    draft_for,
    toggle,
)
from services.planning.grid import (  # noqa: F401
    CANCEL_OUTCOMES,
    OUTCOMES,
    STATES,
    Cell,
    OpenedMonth,
    OpenedPlanning,
    Planning,
    load_planning,
    open_month,
    open_planning,
)
from services.planning.places import (  # noqa: F401
    free_place,
    free_places,
    mail_promoted,
    overbooked,
    release_place,
    take_place,
    take_places,
)
from services.planning.rules import (  # noqa: F401
    PlanningError,
    all_period_days,
    auto_days,
    bookable_periods,
    booking_rule,
    cancel_rule,
    counting_start,
    days_ahead,
    month_asked,
    month_days,
    month_weeks,
    period_for_child,
    period_months,
    soonest_day,
)
from services.planning.states import (  # noqa: F401
    CANCEL_OUTCOME_ICONS,
    LINE_STATES,
    OUTCOME_ICONS,
    RESERVATION_STATES,
    line_words,
    reservation_status,
    state_summary,
    summary_words,
)
