"""Units of an establishment: label, short label, capacity, exclusions and prices per QF bracket."""
from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlmodel import select

from blueprints.admin import bp
from blueprints.forms import UnitForm, strip_all
from blueprints.web import admin_required
from db import get_db, get_or_404
from models import Establishment, Unit
from services import configuration
from services.configuration import UNIT_FIELDS
from services.formatting import parse_euros

PRICE_ERROR = "Montant invalide : en euros, par exemple 3,50."


@bp.route("/etablissements/<int:establishment_id>/unites/nouvelle", methods=["GET", "POST"])
@bp.route("/unites/<int:unit_id>", methods=["GET", "POST"])
@admin_required
def unit(establishment_id: int | None = None, unit_id: int | None = None):
    """Page: create or modify a unit — label, order, capacity, the units it excludes, its prices."""
    db = get_db()
    current = get_or_404(Unit, unit_id) if unit_id else None
    est = get_or_404(Establishment, current.establishment_id if current else establishment_id)
    siblings = [u for u in db.exec(select(Unit).where(Unit.establishment_id == est.id).order_by(Unit.position))
                if not current or u.id != current.id]
    form = UnitForm(obj=current)
    brackets = configuration.town_brackets(db)
    excluded = configuration.unit_exclusions(db, [current.id])[current.id] if current else set()
    saved = configuration.unit_prices(db, current.id) if current else {}
    typed = {b.id: _amount(saved[(b.qf_min, b.qf_max)].amount_cents) if (b.qf_min, b.qf_max) in saved else ""
             for b in brackets}
    price_errors: dict[int, str] = {}
    if request.method == "POST":
        typed = {b.id: (request.form.get(f"tarif-{b.id}") or "").strip()[:20] for b in brackets}
        price_errors = {b.id: PRICE_ERROR for b in brackets if typed[b.id] and parse_euros(typed[b.id]) is None}
        try:
            excluded = {int(v) for v in request.form.getlist("exclut")}  # kept as ticked if the form comes back
        except ValueError:
            abort(400)
        if not excluded <= {u.id for u in siblings}:
            abort(404)
    if form.validate_on_submit() and not price_errors:
        strip_all(form)
        prices = {b.id: parse_euros(typed[b.id]) for b in brackets if typed[b.id]}
        saved_unit = configuration.save_unit(db, current_user.id, est, current,
                                             {name: form[name].data for name in UNIT_FIELDS}, excluded, prices)
        flash(f"L'unité « {saved_unit.label} » est enregistrée.", "success")
        return redirect(url_for("admin.establishment", establishment_id=est.id))
    return render_template("admin/unit.html", form=form, establishment=est, unit=current, siblings=siblings,
                           excluded=excluded, brackets=brackets, typed=typed, price_errors=price_errors,
                           bracket_label=configuration.bracket_label)


def _amount(cents: int) -> str:
    """Cents as typed in a form: 350 -> '3,50'."""
    return f"{cents // 100},{cents % 100:02d}"
