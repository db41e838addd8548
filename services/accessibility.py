"""The accessibility statement ("déclaration d'accessibilité", RGAA 4.1), from the project's own tests.

tests/test_accessibility.py checks every page and dialog with axe-core in Chromium and writes what it
found to instance/accessibilite.json; the statement page reads it.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

RESULTS_FILE = Path(__file__).resolve().parent.parent / "instance" / "accessibilite.json"

METHODS = [
    "axe-core (règles WCAG 2.1 niveaux A et AA) sur chaque page et chaque fenêtre des parcours des parents "
    "et des agents, vides, remplies, en erreur et confirmées, dans Chromium",
    "le parcours complet de réservation au clavier seul, focus visible, fenêtres qui gardent le focus et le rendent",
    "l'affichage à 320 pixels de large (équivalent d'un zoom à 200 %) sans défilement horizontal, hors grille du planning",
    "chaque parcours avec JavaScript désactivé",
    "l'avertissement avant la fin de session et la possibilité de la prolonger (critère 13.1)",
]
KNOWN_LIMITS = [
    "Les documents PDF (factures, listes de présence) ne sont pas balisés pour les lecteurs d'écran ; "
    "les mêmes informations sont disponibles en HTML sur le portail.",
    "Aucun audit manuel complet avec lecteur d'écran (NVDA, VoiceOver) n'a encore été mené.",
]


def save_results(results: dict) -> None:
    """Merge the latest test results into the results file."""
    data = load_results() or {"pages": {}}
    data["pages"].update(results)
    data["checked_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    RESULTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_FILE.write_text(json.dumps(data, ensure_ascii=False, indent=1))


def load_results() -> dict | None:
    try:
        return json.loads(RESULTS_FILE.read_text())
    except (OSError, ValueError):
        return None
