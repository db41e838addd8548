"""Establishments: create one, change its details, see its units and periods."""
from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from flask_login import current_user
from sqlmodel import select

from blueprints.admin import bp
from blueprints.forms import EstablishmentForm, strip_all
from blueprints.web import admin_required
from db import get_db, get_or_404
from models import Establishment, Period, Unit
from services import audit, configuration

ESTABLISHMENT_FIELDS = ("name", "kind", "address", "phone", "email")
ENROLMENT_FIELDS = ("enrolment_open", "enrolment_until", "enrolment_cap")  # a box, a date, a number: no "" for them


@bp.route("/etablissements/nouveau", methods=["GET", "POST"])
@admin_required
def new_establishment():
    """Page: create an establishment."""
    form = EstablishmentForm()
    if form.validate_on_submit():
        strip_all(form)
        db = get_db()
        est = Establishment(**{name: form[name].data or "" for name in ESTABLISHMENT_FIELDS},
                            **{name: form[name].data for name in ENROLMENT_FIELDS})
        db.add(est)
        db.flush()
        audit.record(db, current_user.id, "create", "establishment", est.id, f"Établissement créé : {est.name}",
                     after=audit.snapshot(est, ESTABLISHMENT_FIELDS + ENROLMENT_FIELDS))
        db.commit()
        flash(f"L'établissement « {est.name} » est créé. Ajoutez-lui ses unités.", "success")
        return redirect(url_for("admin.establishment", establishment_id=est.id))
    return render_template("admin/establishment.html", form=form, establishment=None)


@bp.route("/etablissements/<int:establishment_id>", methods=["GET", "POST"])
@admin_required
def establishment(establishment_id: int):
    """Page: an establishment's details (to modify) and its units."""
    db = get_db()
    est = get_or_404(Establishment, establishment_id)
    form = EstablishmentForm(obj=est)
    if form.validate_on_submit():
        strip_all(form)
        before = audit.snapshot(est, ESTABLISHMENT_FIELDS + ENROLMENT_FIELDS)
        for name in ESTABLISHMENT_FIELDS:
            setattr(est, name, form[name].data or "")
        for name in ENROLMENT_FIELDS:
            setattr(est, name, form[name].data)
        after = audit.snapshot(est, ESTABLISHMENT_FIELDS + ENROLMENT_FIELDS)
        if after != before:
            db.add(est)
            audit.record(db, current_user.id, "update", "establishment", est.id, f"Établissement modifié : {est.name}",
                         before, after)
            db.commit()
            flash("Modifications enregistrées.", "success")
        else:
            flash("Aucune modification à enregistrer.", "info")
        return redirect(url_for("admin.establishment", establishment_id=est.id))
    units = db.exec(select(Unit).where(Unit.establishment_id == est.id).order_by(Unit.position, Unit.id)).all()
    est_periods = db.exec(select(Period).where(Period.establishment_id == est.id).order_by(Period.start_date.desc())).all()
    return render_template("admin/establishment.html", form=form, establishment=est, units=units,
                           exclusions=configuration.unit_exclusions(db, [u.id for u in units]), periods=est_periods)
