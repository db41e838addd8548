"""The accessibility statement ("déclaration d'accessibilité", RGAA 4.1), from the project's own tests
and its audit grid.

``CHECKS`` names each test the statement relies on and what it checks. The statement is published only
from a complete run of them (``make accessibility``): tests/conftest.py writes static/accessibilite.json
when every one ran and passed, dated by that run; the page says only what those tests check.

``services/rgaa-4.1.csv`` is the audit grid: each of the 106 RGAA 4.1 criteria, conforme (C), non
conforme (NC) or non applicable (NA), with its proof: a test of ``CHECKS`` ("test:…") or the reason.
The compliance rate and the status come from it, and only when the published run holds every test
the grid names; otherwise the statement says « non conforme ».
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

RESULTS_FILE = Path(__file__).resolve().parent.parent / "static" / "accessibilite.json"
GRID_FILE = Path(__file__).resolve().parent / "rgaa-4.1.csv"
GRID_DATE = date(2026, 12, 2)  # when the grid was last gone through, criterion by criterion
GRID_BY = "l'équipe du logiciel libre Ribambelle (auto-évaluation, pas un audit indépendant)"
STATUS_WORDS = {"C": "conforme", "NC": "non conforme", "NA": "non applicable"}

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
    "tests/test_booking_journey.py::test_whole_booking_with_htmx":
        "la réservation complète avec JavaScript, sans aucun style ni script refusé par la politique de sécurité",
    "tests/test_phone_planning.py::test_the_month_fits_a_phone":
        "le planning sur un téléphone de 360 et 320 pixels de large, avec et sans JavaScript : une journée entière "
        "sans défilement horizontal, des cases de 44 pixels au moins",
    "tests/test_phone_planning.py::test_the_legend_opens_with_one_tap_and_closes_with_escape":
        "la légende et les menus des unités : un toucher les ouvre, Échap les ferme, ils restent dans l'écran",
    "tests/test_phone_planning.py::test_every_cell_is_named_and_tooltips_stay_in_the_screen":
        "chaque case du planning nommée (jour, unité, état, raison) ; les infobulles dans l'écran, fermées par Échap",
    "tests/test_phone_planning.py::test_focus_and_announcements_stay_with_the_parent":
        "le focus qui reste où est l'utilisateur après chaque mise à jour, et les messages annoncés par une seule zone",
    "tests/test_phone_planning.py::test_a_focused_element_is_never_under_a_bar":
        "aucun élément qui a le focus caché sous une barre, sur un téléphone et à un zoom de 400 % (320 × 256 pixels)",
}
KNOWN_LIMITS = [
    "Les documents PDF (factures, listes de présence) ne sont pas balisés pour les lecteurs d'écran ; "
    "les mêmes informations sont disponibles en HTML sur le portail.",
    "La grille a été remplie par l'équipe du logiciel, pas par un auditeur indépendant, et le portail n'a pas "
    "encore été essayé avec des lecteurs d'écran (NVDA, JAWS, VoiceOver) ni par des utilisateurs handicapés.",
]
AXE_PACKAGE = Path(__file__).resolve().parent.parent / "tests" / "a11y" / "package.json"


def axe_version() -> str:
    """The axe-core version the tests run (tests/a11y/package.json)."""
    try:
        return json.loads(AXE_PACKAGE.read_text())["dependencies"]["axe-core"]
    except (OSError, ValueError, KeyError):
        return ""


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


@dataclass
class Criterion:
    number: str
    title: str
    status: str  # C, NC or NA
    proof: str  # "test:<id of CHECKS>" or the reason, in words

    @property
    def test(self) -> str | None:
        return self.proof.removeprefix("test:") if self.proof.startswith("test:") else None

    @property
    def theme(self) -> int:
        return int(self.number.split(".")[0])


def grid(path: Path | None = None) -> list[Criterion]:
    """The audit grid, one criterion per line."""
    with (path or GRID_FILE).open(newline="", encoding="utf-8") as f:
        return [Criterion(row["critere"], row["intitule"], row["statut"], row["preuve"])
                for row in csv.DictReader(f, delimiter=";")]


@dataclass
class Audit:
    criteria: list[Criterion]
    published: bool  # every test the grid names is in the published complete run

    def count(self, status: str) -> int:
        return sum(1 for c in self.criteria if c.status == status)

    @property
    def rate(self) -> int | None:
        """RGAA's compliance rate: conforming criteria over applicable ones, in whole percent."""
        applicable = self.count("C") + self.count("NC")
        return int(100 * self.count("C") / applicable) if self.published and applicable else None

    @property
    def status(self) -> str:
        """As RGAA words it: totalement conforme at 100 %, partiellement from 50 %, else non conforme."""
        if self.rate is None or self.rate < 50:
            return "non conforme"
        return "totalement conforme" if self.rate == 100 else "partiellement conforme"

    def failing(self) -> list[Criterion]:
        return [c for c in self.criteria if c.status == "NC"]


def audit(results: dict | None, path: Path | None = None) -> Audit:
    criteria = grid(path)
    passed = set((results or {}).get("checks", []))
    named = {c.test for c in criteria if c.test}
    return Audit(criteria, published=bool(results) and named <= passed)
