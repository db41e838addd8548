"""The accessibility statement ("déclaration d'accessibilité", RGAA 4.1), from the project's own tests.

``CHECKS`` names each test the statement relies on and what it checks. The statement is published only
from a complete run of them (``make accessibility``): tests/conftest.py writes static/accessibilite.json
when every one ran and passed, dated by that run; the page says only what those tests check.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

RESULTS_FILE = Path(__file__).resolve().parent.parent / "static" / "accessibilite.json"

# test id -> what it checks, in the statement's words. A claim without its test is not made.
CHECKS = {
    "tests/test_accessibility.py::test_parent_pages_and_dialogs_have_no_axe_violation":
        "axe-core (règles WCAG 2.1 niveaux A et AA) sur les pages et fenêtres des parents, vides, remplies, "
        "en erreur et confirmées, dans Chromium",
    "tests/test_accessibility.py::test_agent_pages_have_no_axe_violation":
        "axe-core (mêmes règles) sur les pages des agents et des administrateurs",
    "tests/test_payments.py::test_payment_pages_have_no_axe_violation":
        "axe-core (mêmes règles) sur les pages du paiement en ligne",
    "tests/test_accessibility.py::test_pages_reflow_at_320_px_without_horizontal_scrolling":
        "l'affichage à 320 pixels de large (l'équivalent d'un zoom à 400 % sur un écran de 1 280 pixels) sans "
        "défilement horizontal, hors grille du planning",
    "tests/test_accessibility.py::test_whole_booking_journey_with_the_keyboard_only":
        "la réservation complète au clavier seul : focus visible, fenêtres qui gardent le focus puis le rendent",
    "tests/test_payments.py::test_payment_with_the_keyboard_only":
        "le paiement en ligne d'une facture au clavier seul",
    "tests/test_booking_journey.py::test_whole_booking_with_javascript_off":
        "la réservation complète avec JavaScript désactivé",
    "tests/test_payments.py::test_cancellation_invoice_and_payment_with_javascript_off":
        "la demande d'annulation, le détail d'une facture et son paiement en ligne avec JavaScript désactivé",
    "tests/test_accessibility.py::test_session_warning_lets_the_parent_extend_the_session":
        "l'avertissement avant la fin de session et le bouton pour la prolonger (critère 13.1)",
}
KNOWN_LIMITS = [
    "Les documents PDF (factures, listes de présence) ne sont pas balisés pour les lecteurs d'écran ; "
    "les mêmes informations sont disponibles en HTML sur le portail.",
    "Aucun audit manuel complet (grille RGAA, lecteurs d'écran NVDA et VoiceOver) n'a encore été mené : "
    "les contrôles automatiques ne couvrent qu'une partie des critères.",
]


def save_results(path: Path, pages: dict, checks: list[str]) -> None:
    """Write the results of a complete run: the checks that passed, axe-core's findings per page, the date."""
    data = {"checked_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "complete": True,
            "checks": checks, "pages": dict(sorted(pages.items()))}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n")


def load_results(path: Path | None = None) -> dict | None:
    """The published results, or None when there are none from a complete run."""
    try:
        data = json.loads((path or RESULTS_FILE).read_text())
    except (OSError, ValueError):
        return None
    return data if data.get("complete") else None


def methods(results: dict | None) -> list[str]:
    """What the statement may say was checked: the checks of the published run, nothing else."""
    passed = set((results or {}).get("checks", []))
    return [words for test, words in CHECKS.items() if test in passed]
