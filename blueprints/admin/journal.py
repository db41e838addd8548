"""The journal of every change made by staff, searchable."""
from __future__ import annotations

from flask import render_template
from sqlmodel import select

from blueprints.admin import bp
from blueprints.admin.enrollments import PAGE_SIZE
from blueprints.listing import matches, paginate, search_text
from blueprints.web import admin_required
from db import get_db
from models import AuditEntry
from services import audit


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
