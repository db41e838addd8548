"""The town's configuration, for admins: establishments and their units (issue 6, first part)."""
from __future__ import annotations

import re
import unicodedata

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import func
from sqlmodel import select

from blueprints.forms import EstablishmentForm, UnitForm, parse_euros, strip_all
from blueprints.listing import matches, paginate, search_text
from blueprints.web import admin_required
from db import get_db, get_or_404
from models import AuditEntry, Child, Enrollment, Establishment, Family, Period, Price, QfBracket, Unit, UnitExclusion
from services import audit
from services.formatting import count_words

bp = Blueprint("admin", __name__, url_prefix="/admin")

ESTABLISHMENT_FIELDS = ("name", "kind", "address", "phone", "email")
UNIT_FIELDS = ("label", "short_label", "position", "capacity")
PAGE_SIZE = 50  # enrolled children per page
CHOICES_SHOWN = 50  # children offered in the list to enrol; a search narrows them


@bp.get("/")
@admin_required
def home():
    """Page: the establishments and their units, and the latest changes made by staff."""
    db = get_db()
    establishments = db.exec(select(Establishment).order_by(Establishment.name)).all()
    entries = db.exec(select(AuditEntry).order_by(AuditEntry.at.desc()).limit(20)).all()
    return render_template("admin/home.html", establishments=establishments, entries=entries,
                           authors=audit.authors(db, entries))


@bp.get("/journal")
@admin_required
def journal():
    """Page: every change made by staff, newest first, searchable, with the values before and after."""
    db = get_db()
    q = search_text()
    query = select(AuditEntry)
    if q:
        query = query.where(matches(q, AuditEntry.summary))
    page = paginate(db, query, AuditEntry.at.desc(), AuditEntry.id.desc(), size=PAGE_SIZE)
    return render_template("admin/journal.html", page=page, authors=audit.authors(db, page.rows), q=q)


@bp.route("/etablissements/nouveau", methods=["GET", "POST"])
@admin_required
def new_establishment():
    """Page: create an establishment."""
    form = EstablishmentForm()
    if form.validate_on_submit():
        strip_all(form)
        db = get_db()
        est = Establishment(**{name: form[name].data or "" for name in ESTABLISHMENT_FIELDS})
        db.add(est)
        db.flush()
        audit.record(db, current_user.id, "create", "establishment", est.id, f"Établissement créé : {est.name}",
                     after=audit.snapshot(est, ESTABLISHMENT_FIELDS))
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
        before = audit.snapshot(est, ESTABLISHMENT_FIELDS)
        for name in ESTABLISHMENT_FIELDS:
            setattr(est, name, form[name].data or "")
        after = audit.snapshot(est, ESTABLISHMENT_FIELDS)
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
                           exclusions=_exclusions(db, [u.id for u in units]), periods=est_periods)


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
    brackets = _brackets(db)
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
        before_prices = {_bracket_label(b): saved[(b.qf_min, b.qf_max)].amount_cents
                         for b in brackets if (b.qf_min, b.qf_max) in saved}
        if before:
            before["tarifs"] = before_prices
        for row in saved.values():
            db.delete(row)
        prices = {}
        for b in brackets:
            if typed[b.id]:
                prices[_bracket_label(b)] = parse_euros(typed[b.id])
                db.add(Price(unit_id=current.id, qf_min=b.qf_min, qf_max=b.qf_max, amount_cents=prices[_bracket_label(b)]))
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
                           bracket_label=_bracket_label)


def _amount(cents: int) -> str:
    """Cents as typed in a form: 350 -> '3,50'."""
    return f"{cents // 100},{cents % 100:02d}"


def _brackets(db) -> list[QfBracket]:
    return list(db.exec(select(QfBracket).order_by(QfBracket.qf_min)).all())


def _bracket_label(b: QfBracket) -> str:
    return f"QF de {b.qf_min} à {b.qf_max} €" if b.qf_max is not None else f"QF à partir de {b.qf_min} €"


@bp.route("/tranches", methods=["GET", "POST"])
@admin_required
def brackets():
    """Page: the town's quotient-familial brackets, given by their ceilings (450, 800, 1200: four brackets)."""
    db = get_db()
    current = _brackets(db)
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
            before = [_bracket_label(b) for b in current]
            for b in current:
                db.delete(b)
            db.flush()
            new = [QfBracket(qf_min=low, qf_max=high) for low, high in wanted]
            db.add_all(new)
            after = [_bracket_label(b) for b in new]
            if after != before:
                audit.record(db, current_user.id, "update", "qf_brackets", 0, "Tranches de quotient familial modifiées",
                             {"tranches": before}, {"tranches": after})
            db.commit()
            flash("Tranches enregistrées. Vérifiez les tarifs de chaque unité : une tranche nouvelle n'a pas encore de tarif.",
                  "success")
            return redirect(url_for("admin.brackets"))
    typed = (typed + [""] * 3)[: max(len(typed) + 3, 6)]
    return render_template("admin/brackets.html", brackets=current, typed=typed, error=error,
                           bracket_label=_bracket_label), 422 if error else 200


@bp.route("/etablissements/<int:establishment_id>/inscriptions", methods=["GET", "POST"])
@admin_required
def enrollments(establishment_id: int):
    """Page: which children may book the establishment — enrol one child, a whole class, or withdraw."""
    db = get_db()
    est = get_or_404(Establishment, establishment_id)
    if request.method == "POST":
        action = request.form.get("action")
        if action == "classe":
            school, _, school_class = (request.form.get("classe") or "").partition("|")
            targets = db.exec(select(Child).where(Child.school == school, Child.school_class == school_class)).all()
            if not school or not targets:
                flash("Choisissez une classe.", "error")
                return redirect(url_for("admin.enrollments", establishment_id=est.id))
        else:
            child = db.get(Child, request.form.get("enfant", type=int) or 0)
            if child is None:
                abort(404)
            targets = [child]
        if action == "retirer":
            row = db.exec(select(Enrollment).where(Enrollment.child_id == targets[0].id,
                                                   Enrollment.establishment_id == est.id)).first()
            if row is not None:
                db.delete(row)
                audit.record(db, current_user.id, "delete", "enrollment", row.id,
                             f"Inscription retirée : {targets[0].full_name} ({est.name})",
                             family_id=targets[0].family_id)
                db.commit()
            flash(f"{targets[0].full_name} ne peut plus réserver à {est.name} ; ses réservations déjà faites restent.",
                  "success")
            return redirect(url_for("admin.enrollments", establishment_id=est.id))
        enrolled_ids = set(db.exec(select(Enrollment.child_id).where(Enrollment.establishment_id == est.id)).all())
        added = [c for c in targets if c.id not in enrolled_ids]
        for child in added:
            db.add(Enrollment(child_id=child.id, establishment_id=est.id))
            audit.record(db, current_user.id, "create", "enrollment", child.id,
                         f"Inscription : {child.full_name} ({est.name})", family_id=child.family_id)
        db.commit()
        flash(f"{count_words(len(added), 'enfant inscrit')} à {est.name}"
              + (f" ({len(targets) - len(added)} déjà inscrit{'s' * (len(targets) - len(added) > 1)})." if len(added) < len(targets) else "."),
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
