"""PDF documents (invoices, attendance lists) from their HTML template, with xhtml2pdf."""
from __future__ import annotations

import io

from xhtml2pdf import pisa


class PdfError(Exception):
    """xhtml2pdf could not lay the document out."""


def html_to_pdf(html: str) -> bytes:
    out = io.BytesIO()
    if pisa.CreatePDF(html, dest=out, encoding="utf-8").err:
        raise PdfError("Le document PDF n'a pas pu être produit.")
    return out.getvalue()
