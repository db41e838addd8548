"""PDF documents (invoices, attendance lists) from their HTML template, with xhtml2pdf."""
from __future__ import annotations

import hashlib
import io

from sqlmodel import Session, select
from xhtml2pdf import pisa

from db import upsert_insert
from models import InvoicePdf, utcnow


class PdfError(Exception):
    """xhtml2pdf could not lay the document out."""


def html_to_pdf(html: str) -> bytes:
    out = io.BytesIO()
    if pisa.CreatePDF(html, dest=out, encoding="utf-8").err:
        raise PdfError("Le document PDF n'a pas pu être produit.")
    return out.getvalue()


def invoice_pdf(db: Session, invoice_id: int, html: str) -> bytes:
    """The invoice's PDF made from ``html``: the stored one when it was made from this same HTML (one
    cheap read), else made now and stored in its place (a payment or a cancellation changes the HTML,
    so its next download is the new version). Laying a PDF out costs a hundred times more than its HTML.
    """
    digest = hashlib.sha256(html.encode()).hexdigest()
    stored = db.exec(select(InvoicePdf.content)
                     .where(InvoicePdf.invoice_id == invoice_id, InvoicePdf.source_hash == digest)).first()
    if stored is not None:
        return stored
    # End the read first: on SQLite a transaction that has read cannot then write once another download
    # has written ("database is locked" at once, whatever the busy timeout); a new one waits its turn.
    db.commit()
    content = html_to_pdf(html)
    row = {"source_hash": digest, "content": content, "made_at": utcnow()}
    db.execute(upsert_insert(db)(InvoicePdf).values(invoice_id=invoice_id, **row)
               .on_conflict_do_update(index_elements=["invoice_id"], set_=row))  # two downloads at once: one row
    db.commit()
    return content
