"""The town's configuration, for admins: one blueprint, one URL prefix (/admin), one module per subject.

    /admin/                       the establishments and the latest changes (this module)
    /admin/etablissements/…       establishments.py, and their units (units.py), enrolments (enrollments.py)
    /admin/unites/…               units.py
    /admin/periodes/…             periods.py (deadlines, closed days, capacities)
    /admin/tranches               brackets.py
    /admin/comptes, /familles     accounts.py
    /admin/journal                journal.py
    /admin/documents              documents.py (the papers asked for, the disk they take)
"""
from __future__ import annotations

from flask import Blueprint, render_template
from sqlmodel import select

from blueprints.web import admin_required
from db import get_db
from models import AuditEntry, Establishment
from services import audit

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.get("/")
@admin_required
def home():
    """Page: the establishments and their units, and the latest changes made by staff."""
    db = get_db()
    places = db.exec(select(Establishment).order_by(Establishment.name)).all()
    entries = db.exec(select(AuditEntry).order_by(AuditEntry.at.desc()).limit(20)).all()
    return render_template("admin/home.html", establishments=places, entries=entries,
                           authors=audit.authors(db, entries))


# The pages of each subject register on ``bp`` when their module is imported: after ``bp`` exists.
from blueprints.admin import (  # noqa: E402, F401
    accounts,
    brackets,
    documents,
    enrollments,
    establishments,
    journal,
    periods,
    units,
)
