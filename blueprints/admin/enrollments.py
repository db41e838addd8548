"""Enrolments: which children may book an establishment (one child, a class, withdrawals)."""
from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import func
from sqlmodel import select

from blueprints.admin import bp
from blueprints.listing import matches, paginate, search_text
from blueprints.web import admin_required
from db import get_db, get_or_404
from models import Child, Enrollment, Establishment, Family
from services import configuration
from services.formatting import count_words

PAGE_SIZE = 50  # enrolled children per page


CHOICES_SHOWN = 50  # children offered in the list to enrol; a search narrows them


@bp.route("/etablissements/<int:establishment_id>/inscriptions", methods=["GET", "POST"])
@admin_required
def enrollments(establishment_id: int):
    """Page: which children may book the establishment — enrol one child, a whole class, or withdraw."""
    db = get_db()
    est = get_or_404(Establishment, establishment_id)
    if request.method == "POST":
        action = request.form.get("action")
        if action == "classe":
            school, _, name = (request.form.get("classe") or "").partition("|")
            targets = configuration.school_class(db, school, name)
            if not targets:
                flash("Choisissez une classe.", "error")
                return redirect(url_for("admin.enrollments", establishment_id=est.id))
        else:
            targets = [get_or_404(Child, request.form.get("enfant", type=int) or 0)]
        if action == "retirer":
            configuration.withdraw(db, current_user.id, est, targets[0])
            flash(f"{targets[0].full_name} ne peut plus réserver à {est.name} ; ses réservations déjà faites restent.",
                  "success")
            return redirect(url_for("admin.enrollments", establishment_id=est.id))
        added = configuration.enrol(db, current_user.id, est, targets)
        flash(f"{count_words(len(added), 'enfant inscrit')} à {est.name}"
              + (f" ({count_words(len(targets) - len(added), 'déjà inscrit')})." if len(added) < len(targets) else "."),
              "success")
        return redirect(url_for("admin.enrollments", establishment_id=est.id))
    q = search_text()
    named = select(Child)
    if q:
        named = named.where(matches(q, Child.first_name, Child.last_name, Child.school_class))
    in_est = select(Enrollment.child_id).where(Enrollment.establishment_id == est.id)
    order = (Child.last_name, Child.first_name, Child.id)
    others_total = db.exec(select(func.count()).select_from(named.where(Child.id.not_in(in_est)).subquery())).one()
    others = db.exec(named.where(Child.id.not_in(in_est)).order_by(*order).limit(CHOICES_SHOWN)).all()
    enrolled = paginate(db, named.where(Child.id.in_(in_est)), *order, size=PAGE_SIZE)
    families = {f.id: f for f in db.exec(select(Family).where(Family.id.in_({c.family_id for c in [*others, *enrolled.rows]})))}
    classes = db.exec(select(Child.school, Child.school_class).where(Child.school != "", Child.school_class != "")
                      .distinct().order_by(Child.school, Child.school_class)).all()
    return render_template("admin/enrollments.html", establishment=est, families=families, enrolled=enrolled,
                           others=others, others_total=others_total, classes=classes, q=q)
