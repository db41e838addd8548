"""/admin/documents: the papers the town asks for, which establishment requires them (warning or
blocking booking), and the disk the families' files take."""
from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import func
from sqlmodel import select

from blueprints.admin import bp
from blueprints.web import admin_required
from db import get_db, get_or_404
from models import Document, DocumentType, Establishment, Family, RequiredDocument
from services import audit, documents

REQUIREMENT = {"": "Non demandé", "warn": "Demandé", "block": "Obligatoire pour réserver"}


@bp.route("/documents", methods=["GET", "POST"])
@admin_required
def documents_home():
    """Page: the document types (add one: name, for the family or each child, validity) with what each
    establishment requires, and the space used by the families' files."""
    db = get_db()
    if request.method == "POST":
        name = (request.form.get("nom") or "").strip()[:100]
        validity = request.form.get("validite", "")
        months = request.form.get("mois", type=int) or 0
        if not name:
            flash("Indiquez le nom du document (par exemple « Attestation d'assurance »).", "error")
        elif validity not in documents.VALIDITY:
            flash("Choisissez la durée de validité.", "error")
        elif validity == "months" and not 1 <= months <= 120:
            flash("Indiquez une validité entre 1 et 120 mois.", "error")
        else:
            kind = DocumentType(name=name, per_child=request.form.get("pour") != "famille", validity=validity,
                                months=months if validity == "months" else 0)
            db.add(kind)
            db.flush()
            audit.record(db, current_user.id, "create", "document_type", kind.id, f"Document demandé créé : {name}")
            db.commit()
            flash(f"Document « {name} » ajouté : choisissez les structures qui le demandent.", "success")
        return redirect(url_for("admin.documents_home"))
    kinds = db.exec(select(DocumentType).order_by(DocumentType.name)).all()
    places = db.exec(select(Establishment).order_by(Establishment.name)).all()
    required = {(r.document_type_id, r.establishment_id): ("block" if r.blocking else "warn")
                for r in db.exec(select(RequiredDocument))}
    usage = db.exec(select(Family, func.count(Document.id), func.sum(Document.size)).join(Document, Document.family_id == Family.id)
                    .group_by(Family.id).order_by(func.sum(Document.size).desc()).limit(20)).all()
    return render_template("admin/documents.html", kinds=kinds, establishments=places, required=required,
                           requirement=REQUIREMENT, validity=documents.VALIDITY, usage=usage,
                           total=documents.used_bytes(db), quota=current_app.config["DOCUMENTS_FAMILY_QUOTA"])


@bp.post("/documents/<int:type_id>/structures")
@admin_required
def document_requirements(type_id: int):
    """Action: which establishments ask for this document, and whether it blocks booking there."""
    db = get_db()
    kind = get_or_404(DocumentType, type_id)
    before = {r.establishment_id: r for r in db.exec(select(RequiredDocument).where(RequiredDocument.document_type_id == kind.id))}
    after = {}
    for est in db.exec(select(Establishment)):
        choice = request.form.get(f"structure-{est.id}", "")
        if choice not in REQUIREMENT:
            abort(400)
        if choice:
            after[est.id] = choice
    for est_id, row in before.items():
        if est_id not in after:
            db.delete(row)
    for est_id, choice in after.items():
        row = before.get(est_id) or RequiredDocument(establishment_id=est_id, document_type_id=kind.id)
        row.blocking = choice == "block"
        db.add(row)
    audit.record(db, current_user.id, "update", "document_type", kind.id, f"Structures qui demandent : {kind.name}",
                 {str(k): ("block" if v.blocking else "warn") for k, v in before.items()}, {str(k): v for k, v in after.items()})
    db.commit()
    flash(f"Enregistré : {kind.name}.", "success")
    return redirect(url_for("admin.documents_home"))
