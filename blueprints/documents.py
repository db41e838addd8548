"""Pièces justificatives (/documents/): the family's papers and their upload; the agents' queue and decision;
the download, for that family and staff only."""
from __future__ import annotations

from datetime import date
from pathlib import Path

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, send_file, url_for
from flask_login import current_user, login_required
from sqlmodel import select

from blueprints.web import parent_required, staff_required
from db import get_db, get_or_404
from models import Child, Document, DocumentType, Family, utcnow
from services import documents
from services import family as family_service
from services.calendar import paris_today

bp = Blueprint("documents", __name__, url_prefix="/documents")


def _directory() -> Path:
    return documents.directory(current_app.config, current_app.instance_path)


@bp.route("/", methods=["GET", "POST"])
@parent_required
def family_documents():
    """Page "Mes documents": what each establishment asks for (the family's and each child's), its state,
    and "Envoyer" (a photo from the phone's camera, or a file)."""
    db = get_db()
    today = paris_today(utcnow())
    if request.method == "POST":
        kind = db.get(DocumentType, request.form.get("type", type=int) or 0)
        child = None
        if request.form.get("enfant"):
            child = family_service.child_of_family(db, current_user.family_id, request.form.get("enfant", type=int) or 0)
            if child is None:
                abort(404)
        wanted = {(n.kind.id, n.child.id if n.child else None) for n in documents.needed(db, current_user.family_id, today)}
        if kind is None or (kind.id, child.id if child else None) not in wanted:
            abort(404)  # a paper nobody asks of this family (a forged form)
        upload = request.files.get("fichier")
        data = upload.read(documents.MAX_SIZE + 1) if upload else b""
        try:
            documents.upload(db, _directory(), current_app.config["DOCUMENTS_FAMILY_QUOTA"], current_user, kind, child,
                             upload.filename if upload else "", data)
            flash(f"Document « {kind.name} » envoyé : le service enfance va le vérifier.", "success")
            return redirect(url_for("documents.family_documents"))
        except documents.DocumentError as error:
            db.rollback()
            flash(str(error), "error")
            return redirect(url_for("documents.family_documents") + f"#piece-{kind.id}-{child.id if child else 0}")
    return render_template("documents/family.html", needed=documents.needed(db, current_user.family_id, today),
                           states=documents.STATES, max_mb=documents.MAX_SIZE // (1024 * 1024))


@bp.get("/<int:document_id>")
@login_required
def download(document_id: int):
    """Download: the file, as an attachment, never cached; for its family and staff only (else 404)."""
    db = get_db()
    document = db.get(Document, document_id)
    if document is None or not (current_user.is_staff or document.family_id == current_user.family_id or (
            document.child_id and family_service.child_of_family(db, current_user.family_id, document.child_id))):
        abort(404)  # a child's paper is also its other household's (shared custody)
    path = documents.path_of(_directory(), document)
    if not path.is_file():
        abort(404)
    name = document.file_name if document.file_name.lower().endswith(path.suffix) else document.file_name + path.suffix
    response = send_file(path, mimetype=document.content_type, as_attachment=True, download_name=name, max_age=0,
                         conditional=False, etag=False)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


@bp.get("/a-valider")
@staff_required
def queue():
    """Page: the documents waiting for an agent, the oldest first, with their family and child."""
    db = get_db()
    rows = db.exec(select(Document, DocumentType, Family).join(DocumentType, DocumentType.id == Document.document_type_id)
                   .join(Family, Family.id == Document.family_id).where(Document.status == "pending")
                   .order_by(Document.uploaded_at)).all()
    children = {c.id: c for c in db.exec(select(Child).where(Child.id.in_({d.child_id for d, _, _ in rows if d.child_id})))}
    return render_template("documents/queue.html", rows=rows, children=children, today=paris_today(utcnow()),
                           valid_until=documents.valid_until)


@bp.post("/<int:document_id>/decision")
@staff_required
def decide(document_id: int):
    """Action: "Accepter" (valid until the date shown) or "Refuser" with a message, mailed to the family."""
    db = get_db()
    document = get_or_404(Document, document_id)
    accept = request.form.get("decision") == "accepter"
    until = None
    if accept and request.form.get("jusquau"):
        try:
            until = date.fromisoformat(request.form["jusquau"])
        except ValueError:
            flash("Date de fin de validité invalide.", "error")
            return redirect(url_for("documents.queue"))
    try:
        documents.decide(db, current_user.id, document, accept, request.form.get("message", ""),
                         paris_today(utcnow()), until)
        flash("Document accepté." if accept else "Document refusé : la famille est prévenue.", "success")
    except documents.DocumentError as error:
        db.rollback()
        flash(str(error), "error")
    return redirect(url_for("documents.queue"))
