"""The web pages, one blueprint per area; each URL prefix belongs to exactly one of them.

| URL prefix               | module                    | templates/, partials/         |
|--------------------------|---------------------------|-------------------------------|
| `/` (login, forgotten password, `/accessibilite`, `/healthz`, `/readyz`, `/session/…`) | `auth.py` | `auth/` |
| `/compte/`               | `account.py` (family space, family file, login, password) | `account/` |
| `/enfants/`              | `children.py`             | `children/`                   |
| `/reservations/`         | `reservations.py` (planning, cancellations, absences) | `reservations/`, `partials/reservations/` |
| `/factures/`             | `billing.py` (invoices, online payment) | `billing/`, `partials/billing/` |
| `/agent/`                | `staff.py` (validations, attendance lists, billing run) | `staff/` |
| `/foyers/`               | `households.py` (shared custody: a child's second household) | `households/` |
| `/admin/`                | `admin/` package (establishments, units, periods, brackets, enrolments, accounts, journal) | `admin/` |
| `/simulateur-paiement/`  | `simulator.py` (demo and tests only) | `simulator/`     |
| `/demo/`                 | `demo.py` (demo mailbox)  | `demo/`                       |

`web.py` holds what every blueprint shares: the login decorators, the request hooks, the CSP, the
htmx helpers; `forms.py` the WTForms forms; `listing.py` search and pagination.
"""
