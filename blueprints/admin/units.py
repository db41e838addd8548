"""Units of an establishment: label, short label, capacity, exclusions and prices per QF bracket."""
from __future__ import annotations

import re
import unicodedata

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlmodel import select

from blueprints.admin import bp
from blueprints.admin.brackets import bracket_label_of, town_brackets
from blueprints.forms import UnitForm, strip_all
from blueprints.web import admin_required
from db import get_db, get_or_404
from models import Establishment, Price, Unit, UnitExclusion
from services import audit
from services.formatting import parse_euros

UNIT_FIELDS = ("label", "short_label", "position", "capacity")


def _exclusions(db, unit_ids: list[int]) -> dict[int, set[int]]:
    result: dict[int, set[int]] = {u: set() for u in unit_ids}
    for ex in db.exec(select(UnitExclusion).where(UnitExclusion.unit_id.in_(unit_ids))):
        result.setdefault(ex.unit_id, set()).add(ex.excluded_unit_id)
        result.setdefault(ex.excluded_unit_id, set()).add(ex.unit_id)
    return result


def _slug(label: str, taken: set[str]) -> str:
    text = unicodedata.normalize("NFKD", label).encode("ascii", "ignore").decode().lower()
    base = re.sub(r"[^a-z0-9]+", "-", text).strip("-")[:25] or "unite"
    slug, n = base, 2
    while slug in taken:
        slug, n = f"{base}-{n}", n + 1
    return slug


@bp.route("/etablissements/<int:establishment_id>/unites/nouvelle", methods=["GET", "POST"])
@bp.route("/unites/<int:unit_id>", methods=["GET", "POST"])
@admin_required
def unit(establishment_id: int | None = None, unit_id: int | None = None):
    """Page: create or modify a unit — label, order, capacity, and the units it excludes."""
    db = get_db()
    current = get_or_404(Unit, unit_id) if unit_id else None
    est = get_or_404(Establishment, current.establishment_id if current else establishment_id)
    siblings = [u for u in db.exec(select(Unit).where(Unit.establishment_id == est.id).order_by(Unit.position))
                if not current or u.id != current.id]
    form = UnitForm(obj=current)
    excluded = _exclusions(db, [current.id])[current.id] if current else set()
    brackets = town_brackets(db)
    saved = {(p.qf_min, p.qf_max): p for p in db.exec(select(Price).where(Price.unit_id == current.id,
                                                                         Price.period_id.is_(None)))} if current else {}
    typed = {b.id: _amount(saved[(b.qf_min, b.qf_max)].amount_cents) if (b.qf_min, b.qf_max) in saved else ""
             for b in brackets}
    price_errors: dict[int, str] = {}
    if request.method == "POST":
        typed = {b.id: (request.form.get(f"tarif-{b.id}") or "").strip()[:20] for b in brackets}
        for b in brackets:
            if typed[b.id] and parse_euros(typed[b.id]) is None:
                price_errors[b.id] = "Montant invalide : en euros, par exemple 3,50."
    if form.validate_on_submit() and not price_errors:
        strip_all(form)
        try:
            wanted = {int(v) for v in request.form.getlist("exclut")}
        except ValueError:
            abort(400)
        if not wanted <= {u.id for u in siblings}:
            abort(404)
        before = {**audit.snapshot(current, UNIT_FIELDS), "exclut": sorted(excluded)} if current else {}
        if current is None:
            current = Unit(establishment_id=est.id, code=_slug(form.label.data, {u.code for u in siblings}),
                           label="", position=0, capacity=0)
        for name in UNIT_FIELDS:
            setattr(current, name, form[name].data)
        db.add(current)
        db.flush()
        for other in excluded - wanted:
            for a, b in ((current.id, other), (other, current.id)):
                row = db.get(UnitExclusion, (a, b))
                if row:
                    db.delete(row)
        for other in wanted - excluded:
            db.add(UnitExclusion(unit_id=current.id, excluded_unit_id=other))
        before_prices = {bracket_label_of(b): saved[(b.qf_min, b.qf_max)].amount_cents
                         for b in brackets if (b.qf_min, b.qf_max) in saved}
        if before:
            before["tarifs"] = before_prices
        for row in saved.values():
            db.delete(row)
        prices = {}
        for b in brackets:
            if typed[b.id]:
                prices[bracket_label_of(b)] = parse_euros(typed[b.id])
                db.add(Price(unit_id=current.id, qf_min=b.qf_min, qf_max=b.qf_max, amount_cents=prices[bracket_label_of(b)]))
        after = {**audit.snapshot(current, UNIT_FIELDS), "exclut": sorted(wanted), "tarifs": prices}
        audit.record(db, current_user.id, "update" if before else "create", "unit", current.id,
                     f"Unité {'modifiée' if before else 'créée'} : {current.label} ({est.name})", before, after)
        db.commit()
        flash(f"L'unité « {current.label} » est enregistrée.", "success")
        return redirect(url_for("admin.establishment", establishment_id=est.id))
    if request.method == "POST":
        try:
            excluded = {int(v) for v in request.form.getlist("exclut")}  # keep what was ticked
        except ValueError:
            abort(400)
    return render_template("admin/unit.html", form=form, establishment=est, unit=current, siblings=siblings,
                           excluded=excluded, brackets=brackets, typed=typed, price_errors=price_errors,
                           bracket_label=bracket_label_of)


def _amount(cents: int) -> str:
    """Cents as typed in a form: 350 -> '3,50'."""
    return f"{cents // 100},{cents % 100:02d}"
