"""Addresses that leave the page: links in mails and PDFs, the payment provider's return and notification.

They are built from the BASE_URL setting and never from the request, so a forged ``Host`` or
``X-Forwarded-Host`` header cannot put another site into a parent's password-reset mail.
"""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app


def external_url(endpoint: str, **values) -> str:
    """The absolute address of ``endpoint`` on the portal's public address (works outside a request too)."""
    base = urlsplit(current_app.config["BASE_URL"])
    adapter = current_app.url_map.bind(base.netloc, script_name=base.path or "/", url_scheme=base.scheme)
    return adapter.build(endpoint, values, force_external=True)


def portal_url() -> str:
    """The portal's home page, for the foot of mails."""
    return current_app.config["BASE_URL"] + "/"
