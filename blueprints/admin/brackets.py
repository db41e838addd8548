"""The town's quotient-familial brackets."""
from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user

from blueprints.admin import bp
from blueprints.web import admin_required
from db import get_db
from services import configuration


@bp.route("/tranches", methods=["GET", "POST"])
@admin_required
def brackets():
    """Page: the town's quotient-familial brackets, given by their ceilings (450, 800, 1200: four brackets)."""
    db = get_db()
    current = configuration.town_brackets(db)
    typed = [str(b.qf_max) for b in current if b.qf_max is not None]
    error = ""
    if request.method == "POST":
        typed = [(v or "").strip()[:10] for v in request.form.getlist("plafond")][:configuration.MAX_BRACKETS]
        try:
            configuration.save_brackets(db, current_user.id, typed)
        except configuration.ConfigurationError as exc:
            error = str(exc)
        else:
            flash("Tranches enregistrées. Vérifiez les tarifs de chaque unité : une tranche nouvelle n'a pas encore de tarif.",
                  "success")
            return redirect(url_for("admin.brackets"))
    typed = (typed + [""] * 3)[: max(len(typed) + 3, 6)]
    return render_template("admin/brackets.html", brackets=current, typed=typed, error=error,
                           bracket_label=configuration.bracket_label), 422 if error else 200
