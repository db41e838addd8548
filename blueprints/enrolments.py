"""« Les Inscriptions » (/inscriptions/): "Inscrire mon enfant" (child, establishment, the documents it
requires, the consents, "Envoyer la demande d'inscription"), the family's requests, the agents' queue."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlmodel import select

from blueprints.web import parent_required, staff_required
from db import get_db, get_or_404
from models import Child, Document, DocumentType, EnrolmentRequest, Establishment, Family, utcnow
from services import documents, enrolments
from services import family as family_service
from services.calendar import paris_today

bp = Blueprint("enrolments", __name__, url_prefix="/inscriptions")


@bp.route("/nouvelle", methods=["GET", "POST"])
@parent_required
def new():
    """Page "Inscrire mon enfant": choose the child and the establishment, then send the documents it
    requires and the consents; "Envoyer la demande d'inscription"."""
    db = get_db()
    today = paris_today(utcnow())
    family = db.get(Family, current_user.family_id)
    places = enrolments.open_establishments(db, today)
    child = establishment = None
    if request.values.get("enfant") and request.values.get("structure"):
        child = family_service.child_of_family(db, family.id, request.values.get("enfant", type=int) or 0)
        establishment = db.get(Establishment, request.values.get("structure", type=int) or 0)
        if child is None or establishment is None:
            abort(404)
        if establishment not in places:
            flash(f"{establishment.name} ne prend pas d'inscription en ligne en ce moment.", "error")
            return redirect(url_for("enrolments.new"))
    required = [(kind, blocking, found[0] if found else None)  # the newest one still good, if any
                for kind, blocking, found in documents.required_for(db, child, establishment.id, today, family.id)] if child else []
    if request.method == "POST" and child:
        files = {}
        try:
            for kind, _, have in required:
                upload = request.files.get(f"piece-{kind.id}")
                data = upload.read(documents.MAX_SIZE + 1) if upload and upload.filename else b""
                if data:
                    documents.check_file(data)  # every file checked before anything is written
                    files[kind.id] = (kind, upload.filename, data)
                elif have is None:
                    raise documents.DocumentError(f"Joignez le document « {kind.name} ».")
            made = enrolments.ask(db, current_user, child, establishment, today, bool(request.form.get("reglement")),
                                  request.form.get("photos") == "oui", request.form.get("seul") == "oui")
            directory = documents.directory(current_app.config, current_app.instance_path)
            for kind, name, data in files.values():
                documents.upload(db, directory, current_app.config["DOCUMENTS_FAMILY_QUOTA"], current_user, kind, child,
                                 name, data)
        except (documents.DocumentError, enrolments.EnrolmentError) as error:
            db.rollback()
            flash(str(error), "error")
        else:
            words = ("sur la liste d'attente (la structure est complète)" if made.status == "waitlist"
                     else "envoyée : le service enfance vous répondra par courriel")
            flash(f"Demande d'inscription de {child.first_name} à {establishment.name} {words}.", "success")
            return redirect(url_for("account.home") + "#inscriptions")
    return render_template("enrolments/new.html", family=family, places=places, child=child, establishment=establishment,
                           required=required, leave_alone_age=enrolments.LEAVE_ALONE_AGE,
                           child_age=enrolments.age_on(child, today) if child else None)


@bp.get("/a-traiter")
@staff_required
def queue():
    """Page: the requests waiting for an agent (then each waiting list, in order), with their documents."""
    db = get_db()
    rows = db.exec(select(EnrolmentRequest, Child, Establishment, Family)
                   .join(Child, Child.id == EnrolmentRequest.child_id)
                   .join(Establishment, Establishment.id == EnrolmentRequest.establishment_id)
                   .join(Family, Family.id == EnrolmentRequest.family_id)
                   .where(EnrolmentRequest.status.in_(["pending", "waitlist"]))
                   .order_by(EnrolmentRequest.status, EnrolmentRequest.id)).all()
    papers = {}
    for req, child, _, _ in rows:
        papers[req.id] = db.exec(select(Document, DocumentType).join(DocumentType, DocumentType.id == Document.document_type_id)
                                 .where((Document.child_id == child.id)  # either household's, in shared custody
                                        | ((Document.family_id == req.family_id) & Document.child_id.is_(None)))
                                 .order_by(Document.uploaded_at.desc())).all()
    return render_template("enrolments/queue.html", rows=rows, papers=papers, states=enrolments.STATES,
                           counts={e.id: enrolments.enrolled_count(db, e.id) for _, _, e, _ in rows})


@bp.post("/<int:request_id>/decision")
@staff_required
def decide(request_id: int):
    """Action: "Accepter" or "Refuser" (with its reason), mailed to every guardian of the family."""
    db = get_db()
    made = get_or_404(EnrolmentRequest, request_id)
    accept = request.form.get("decision") == "accepter"
    try:
        enrolments.decide(db, current_user.id, made, accept, request.form.get("message", ""))
        flash("Inscription acceptée : l'enfant peut réserver." if accept else "Demande refusée : la famille est prévenue.",
              "success")
    except enrolments.EnrolmentError as error:
        db.rollback()
        flash(str(error), "error")
    return redirect(url_for("enrolments.queue"))
