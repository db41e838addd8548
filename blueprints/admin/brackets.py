"""The town's quotient-familial brackets."""
from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlmodel import select

from blueprints.admin import bp
from blueprints.web import admin_required
from db import get_db
from models import QfBracket
from services import audit


def town_brackets(db) -> list[QfBracket]:
    return list(db.exec(select(QfBracket).order_by(QfBracket.qf_min)).all())


def bracket_label_of(b: QfBracket) -> str:
    return f"QF de {b.qf_min} à {b.qf_max} €" if b.qf_max is not None else f"QF à partir de {b.qf_min} €"


@bp.route("/tranches", methods=["GET", "POST"])
@admin_required
def brackets():
    """Page: the town's quotient-familial brackets, given by their ceilings (450, 800, 1200: four brackets)."""
    db = get_db()
    current = town_brackets(db)
    typed = [str(b.qf_max) for b in current if b.qf_max is not None]
    error = ""
    if request.method == "POST":
        typed = [(v or "").strip()[:10] for v in request.form.getlist("plafond")][:12]
        ceilings = [v for v in typed if v]
        if not all(v.isdigit() and 0 < int(v) < 100000 for v in ceilings):
            error = "Chaque plafond est un nombre entier d'euros, entre 1 et 99 999."
        elif [int(v) for v in ceilings] != sorted({int(v) for v in ceilings}):
            error = "Les plafonds doivent aller en croissant, sans doublon (par exemple 450, 800, 1200)."
        if not error:
            bounds = [int(v) for v in ceilings]
            wanted = list(zip([0] + [c + 1 for c in bounds], bounds + [None]))
            before = [bracket_label_of(b) for b in current]
            for b in current:
                db.delete(b)
            db.flush()
            new = [QfBracket(qf_min=low, qf_max=high) for low, high in wanted]
            db.add_all(new)
            after = [bracket_label_of(b) for b in new]
            if after != before:
                audit.record(db, current_user.id, "update", "qf_brackets", 0, "Tranches de quotient familial modifiées",
                             {"tranches": before}, {"tranches": after})
            db.commit()
            flash("Tranches enregistrées. Vérifiez les tarifs de chaque unité : une tranche nouvelle n'a pas encore de tarif.",
                  "success")
            return redirect(url_for("admin.brackets"))
    typed = (typed + [""] * 3)[: max(len(typed) + 3, 6)]
    return render_template("admin/brackets.html", brackets=current, typed=typed, error=error,
                           bracket_label=bracket_label_of), 422 if error else 200
