"""Pièces justificatives: the papers each establishment requires, what a family sent, the agents' decisions.

A file is accepted only for what its content is, never its name: a PDF (no script, not encrypted, no
stream that inflates past DECOMPRESSED_LIMIT) or a JPEG or PNG photo, which is re-encoded by Pillow —
turned as the camera held it, its EXIF and location dropped. At most MAX_SIZE, within the family's
quota; stored under a random name in DOCUMENTS_DIR (outside ``static/``, never served by nginx), and
given back only to the family and staff, as an attachment.
"""
from __future__ import annotations

import calendar
import hashlib
import io
import os
import re
import secrets
import unicodedata
import zlib
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError
from pypdf import PdfReader
from pypdf.errors import PyPdfError
from sqlalchemy import func
from sqlmodel import Session, select

from models import Child, Document, DocumentType, Enrollment, RequiredDocument, utcnow
from services import audit, outbox
from services.family import household_children
from services.security import log_event

MAX_SIZE = 10 * 1024 * 1024
DECOMPRESSED_LIMIT = 100 * 1024 * 1024  # what the streams of one PDF may inflate to, all together
MAX_PIXELS = 40_000_000  # a 40-megapixel photo; a bigger "image" is a decompression bomb
VALIDITY = {"school_year": "l'année scolaire", "calendar_year": "l'année civile", "months": "un nombre de mois",
            "none": "sans limite"}
STATES = {"missing": ("Manquant", "refused"), "pending": ("En attente de validation", "request"),
          "valid": ("Valide", "booked"), "expiring": ("Expire bientôt", "partial"), "refused": ("Refusé", "refused")}
EXPIRING_DAYS = 30


class DocumentError(Exception):
    """A French message; nothing was stored."""


# --- the file itself ----------------------------------------------------------------------------------


@dataclass
class CheckedFile:
    content: bytes
    content_type: str
    extension: str


def clean_name(name: str) -> str:
    """The name as shown: no folder (``../``), no control or odd characters, at most 100 characters."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = unicodedata.normalize("NFC", base)
    base = re.sub(r"[^\w .()-]", "_", base).strip(" .") or "document"
    return base[:100]


def check_file(data: bytes) -> CheckedFile:
    """The file as it will be stored, or DocumentError: the type read from its first bytes."""
    if not data:
        raise DocumentError("Le fichier est vide : choisissez la photo ou le PDF du document.")
    if len(data) > MAX_SIZE:
        raise DocumentError("Le fichier dépasse 10 Mo : prenez la photo en qualité normale, ou envoyez un PDF plus léger.")
    if data.startswith(b"%PDF-"):
        _check_pdf(data)
        return CheckedFile(data, "application/pdf", "pdf")
    if data.startswith(b"\xff\xd8\xff") or data.startswith(b"\x89PNG\r\n\x1a\n"):
        return _reencode(data)
    raise DocumentError("Ce fichier n'est ni un PDF, ni une photo JPEG ou PNG : envoyez le document sous l'une de ces formes.")


def _check_pdf(data: bytes) -> None:
    inflated = 0
    for match in re.finditer(rb"(?<!end)stream\r?\n", data):
        end = data.find(b"endstream", match.end())
        if end < 0:
            break
        inflater = zlib.decompressobj()
        try:
            out = inflater.decompress(data[match.end():end], DECOMPRESSED_LIMIT - inflated + 1)
        except zlib.error:
            continue  # not a Flate stream (an image in DCT, say)
        inflated += len(out)
        if inflated > DECOMPRESSED_LIMIT:
            raise DocumentError("Ce PDF n'est pas accepté : son contenu décompressé est démesuré.")
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            raise DocumentError("Ce PDF est protégé par un mot de passe : envoyez-le sans protection, ou une photo.")
        pages = len(reader.pages)
    except DocumentError:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, RecursionError, zlib.error):
        raise DocumentError("Ce PDF est illisible : enregistrez-le de nouveau, ou envoyez une photo du document.") from None
    if pages == 0:
        raise DocumentError("Ce PDF n'a aucune page.")
    if re.search(rb"/(JavaScript|JS|Launch|EmbeddedFile|XFA)\b", data):
        raise DocumentError("Ce PDF contient un script ou un fichier joint : il n'est pas accepté. Envoyez une photo du document.")


def _reencode(data: bytes) -> CheckedFile:
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        with Image.open(io.BytesIO(data)) as probe:
            probe.verify()
        with Image.open(io.BytesIO(data)) as image:
            kind = image.format
            if kind not in ("JPEG", "PNG"):
                raise DocumentError("Cette image n'est ni une photo JPEG ni une image PNG.")
            turned = ImageOps.exif_transpose(image)  # as the camera was held, before the EXIF goes
            out = io.BytesIO()
            if kind == "JPEG":
                turned.convert("RGB").save(out, "JPEG", quality=85, optimize=True)  # no exif= : none kept
            else:
                keep = turned if turned.mode in ("RGB", "RGBA", "L", "LA", "P") else turned.convert("RGBA")
                keep.save(out, "PNG", optimize=True)  # text chunks (and any location in them) are not copied
    except DocumentError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise DocumentError("Cette image est démesurée : prenez la photo en qualité normale.") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise DocumentError("Cette image est illisible ou abîmée : reprenez la photo.") from None
    return CheckedFile(out.getvalue(), "image/jpeg" if kind == "JPEG" else "image/png", "jpg" if kind == "JPEG" else "png")


# --- validity and what a family must send -------------------------------------------------------------


def valid_until(kind: DocumentType, on: date) -> date | None:
    """The last day a document accepted ``on`` is valid."""
    if kind.validity == "school_year":
        return date(on.year if on.month < 9 else on.year + 1, 8, 31)
    if kind.validity == "calendar_year":
        return date(on.year, 12, 31)
    if kind.validity == "months":
        month = on.month - 1 + max(kind.months, 1)
        year, month = on.year + month // 12, month % 12 + 1
        return date(year, month, min(on.day, calendar.monthrange(year, month)[1]))
    return None


@dataclass
class Needed:
    """One paper the family owes: for the family or one child, the latest sent, and its state today."""

    kind: DocumentType
    child: Child | None
    blocking: bool
    document: Document | None
    state: str  # missing, pending, valid, expiring, refused

    @property
    def words(self) -> str:
        return STATES[self.state][0]


def _state(document: Document | None, today: date) -> str:
    if document is None:
        return "missing"
    if document.status == "valid":
        if document.valid_until is not None and document.valid_until < today:
            return "missing"
        if document.valid_until is not None and document.valid_until <= today + timedelta(days=EXPIRING_DAYS):
            return "expiring"
        return "valid"
    return document.status


def needed(db: Session, family_id: int, today: date) -> list[Needed]:
    """Every paper the establishments of the family's children require, with where each stands."""
    children = household_children(db, family_id)
    if not children:
        return []
    rows = db.exec(select(Enrollment.child_id, RequiredDocument, DocumentType)
                   .join(RequiredDocument, RequiredDocument.establishment_id == Enrollment.establishment_id)
                   .join(DocumentType, DocumentType.id == RequiredDocument.document_type_id)
                   .where(Enrollment.child_id.in_(list(children)))).all()
    latest: dict[tuple[int, int | None], Document] = {}
    for document in db.exec(select(Document).where(_household_papers(family_id, list(children)))
                            .order_by(Document.uploaded_at)):
        latest[(document.document_type_id, document.child_id)] = document
    wanted: dict[tuple[int, int | None], Needed] = {}
    for child_id, required, kind in rows:
        key = (kind.id, child_id if kind.per_child else None)
        if key in wanted:
            wanted[key].blocking = wanted[key].blocking or required.blocking
            continue
        document = latest.get(key)
        wanted[key] = Needed(kind, children[child_id] if kind.per_child else None, required.blocking, document,
                             _state(document, today))
    return sorted(wanted.values(), key=lambda n: (n.child.first_name if n.child else "", n.kind.name))


def _household_papers(family_id: int, child_ids: list[int]):
    """The household's own papers, and those of its children sent by their other household (shared
    custody: a child's papers are the child's, whichever home sent them)."""
    return (Document.family_id == family_id) | Document.child_id.in_(child_ids)


def required_for(db: Session, child: Child, establishment_id: int, today: date,
                 family_id: int | None = None) -> list[tuple[DocumentType, bool, list[Document]]]:
    """What ``establishment_id`` requires of ``child`` (or of the household ``family_id``, the child's
    file's by default): each paper, whether it blocks booking, and the documents of it still good (valid
    and not expired, or waiting), newest first."""
    required = db.exec(select(DocumentType, RequiredDocument.blocking)
                       .join(RequiredDocument, RequiredDocument.document_type_id == DocumentType.id)
                       .where(RequiredDocument.establishment_id == establishment_id).order_by(DocumentType.name)).all()
    if not required:
        return []
    usable: dict[tuple[int, int | None], list[Document]] = {}
    for document in db.exec(select(Document).where(
            _household_papers(family_id or child.family_id, [child.id]),
            Document.document_type_id.in_([kind.id for kind, _ in required]),
            Document.status.in_(["valid", "pending"]), (Document.valid_until.is_(None)) | (Document.valid_until >= today))
            .order_by(Document.uploaded_at.desc())):
        usable.setdefault((document.document_type_id, document.child_id), []).append(document)
    return [(kind, blocks, usable.get((kind.id, child.id if kind.per_child else None), [])) for kind, blocks in required]


def missing_for(db: Session, child: Child, establishment_id: int, today: date,
                family_id: int | None = None) -> tuple[list[str], list[str]]:
    """The papers ``establishment_id`` requires that ``child`` (or the household) has no valid one of:
    (those that block booking, those that only warn), by name."""
    blocking, warning = [], []
    for kind, blocks, documents in required_for(db, child, establishment_id, today, family_id):
        if not any(d.status == "valid" for d in documents):
            (blocking if blocks else warning).append(kind.name)
    return blocking, warning


# --- sending, deciding, storing ------------------------------------------------------------------------


def directory(config, instance_path: str) -> Path:
    """Where the documents are kept: DOCUMENTS_DIR, else instance/documents."""
    return Path(config.get("DOCUMENTS_DIR") or Path(instance_path) / "documents")


def used_bytes(db: Session, family_id: int | None = None) -> int:
    query = select(func.coalesce(func.sum(Document.size), 0))
    if family_id is not None:
        query = query.where(Document.family_id == family_id)
    return db.exec(query).one()


def upload(db: Session, directory: Path, quota: int, user, kind: DocumentType, child: Child | None, name: str,
           data: bytes) -> Document:
    """Store a family's file for ``kind`` (and ``child``); committed. DocumentError: nothing stored."""
    if kind.per_child and child is None:
        raise DocumentError("Choisissez l'enfant que concerne ce document.")
    checked = check_file(data)
    if used_bytes(db, user.family_id) + len(checked.content) > quota:
        raise DocumentError("Votre espace de documents est plein : contactez le service enfance.")
    stored = f"{secrets.token_hex(16)}.{checked.extension}"
    directory.mkdir(parents=True, exist_ok=True)
    temporary = directory / f".{stored}.part"
    temporary.write_bytes(checked.content)
    os.replace(temporary, directory / stored)  # whole or not at all
    document = Document(family_id=user.family_id, child_id=child.id if kind.per_child else None,
                        document_type_id=kind.id, file_name=clean_name(name), stored_name=stored,
                        content_type=checked.content_type, size=len(checked.content),
                        sha256=hashlib.sha256(checked.content).hexdigest(), uploaded_by_id=user.id)
    db.add(document)
    try:
        db.commit()
    except Exception:
        (directory / stored).unlink(missing_ok=True)
        raise
    log_event("document.uploaded", user.id, family=user.family_id, document=document.id, bytes=document.size)
    return document


def path_of(directory: Path, document: Document) -> Path:
    return directory / document.stored_name


def decide(db: Session, agent_id: int, document: Document, accept: bool, message: str, today: date,
           until: date | None = None) -> Document:
    """An agent accepts (valid until the type's end, or ``until``) or refuses with a message; mailed; committed."""
    if document.status != "pending":
        raise DocumentError("Ce document a déjà été traité.")
    message = (message or "").strip()[:500]
    if not accept and not message:
        raise DocumentError("Dites à la famille pourquoi le document est refusé.")
    kind = db.get(DocumentType, document.document_type_id)
    document.status = "valid" if accept else "refused"
    document.valid_until = (until or valid_until(kind, today)) if accept else None
    document.decided_by_id, document.decided_at, document.message = agent_id, utcnow(), message
    db.add(document)
    child = db.get(Child, document.child_id) if document.child_id else None
    about = f"{kind.name}{f' de {child.first_name}' if child else ''}"
    audit.record(db, agent_id, "update", "document", document.id,
                 f"Document {'accepté' if accept else 'refusé'} : {about}", {"etat": "pending"},
                 {"etat": document.status, "message": message}, family_id=document.family_id)
    outbox.queue_family(db, document.family_id, f"Document {'accepté' if accept else 'refusé'} : {about}",
                        "document_decided", document=document, about=about, accepted=accept)
    db.commit()
    return document


def remind_expiring(db: Session, today: date) -> int:
    """Mail the families whose valid documents end in EXPIRING_DAYS (once each); committed."""
    soon = today + timedelta(days=EXPIRING_DAYS)
    documents = db.exec(select(Document).where(Document.status == "valid", Document.valid_until.is_not(None),
                                               Document.valid_until <= soon, Document.valid_until >= today,
                                               Document.reminded_on.is_(None))).all()
    for document in documents:
        kind = db.get(DocumentType, document.document_type_id)
        child = db.get(Child, document.child_id) if document.child_id else None
        about = f"{kind.name}{f' de {child.first_name}' if child else ''}"
        outbox.queue_family(db, document.family_id, f"Document bientôt expiré : {about}", "document_expiring",
                            document=document, about=about)
        document.reminded_on = today
        db.add(document)
    db.commit()
    return len(documents)
