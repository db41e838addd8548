"""Static files under names that change with their content, cached for good by browsers.

Every ``url_for("static", filename=...)`` gets ``?v=`` and the first characters of the file's SHA-256,
read once at start: a new CSS or script after an upgrade is a new address, so an address can be cached
for a year without asking again (``Cache-Control: immutable``, from the app here and from nginx in
deploy/nginx.conf). The portal's logo is small enough to travel inside the page (a ``data:`` address):
no request at all. Every other icon is a fragment of one file, icons/sprite.svg, made from the icons
beside it (``make sprite``; a test checks it is up to date): one request for all of them, under the
same address from the CSS and from the pages, which nginx caches a day.
"""
from __future__ import annotations

import hashlib
import re
import urllib.parse
from pathlib import Path

from flask import request

YEAR = 365 * 24 * 3600
SPRITE = "sprite.svg"
NOT_IN_SPRITE = {SPRITE, "ribambelle.svg"}  # the logo travels in the page
SVG = re.compile(r'<svg xmlns="http://www.w3.org/2000/svg"(.*?)>(.*)</svg>$', re.S)


def versions(folder: Path) -> dict[str, str]:
    """Each file under ``folder`` (its path with forward slashes) -> its version."""
    return {path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()[:12]
            for path in sorted(folder.rglob("*")) if path.is_file()}


def svg_data_uri(path: Path) -> str:
    return "data:image/svg+xml," + urllib.parse.quote(path.read_text().strip(), safe="/=:'\",.-")


def build_sprite(icons: Path) -> str:
    """The sprite of the icons in ``icons``: each one an inner <svg> named by its file's stem, drawn only
    when the address names it (``sprite.svg#state-booked``)."""
    inner = []
    for path in sorted(icons.glob("*.svg")):
        if path.name not in NOT_IN_SPRITE:
            attributes, body = SVG.match(path.read_text().strip()).groups()
            inner.append(f'<svg id="{path.stem}"{attributes}>{body}</svg>')
    return ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24">\n'
            "<!-- Made by `make sprite` from the icons beside it (services/assets.py): do not edit. -->\n"
            "<style>svg svg { display: none } svg svg:target { display: inline }</style>\n"
            + "\n".join(inner) + "\n</svg>\n")


def write_sprite(icons: Path) -> None:
    (icons / SPRITE).write_text(build_sprite(icons))


def init_app(app) -> None:
    folder = Path(app.static_folder)
    known = versions(folder)
    app.jinja_env.globals["logo_uri"] = svg_data_uri(folder / "icons" / "ribambelle.svg")
    sprite = f"{app.static_url_path}/icons/{SPRITE}"
    app.jinja_env.globals["icon_url"] = lambda name: f"{sprite}#{name}"

    @app.url_defaults
    def versioned_static(endpoint, values):
        if endpoint == "static" and values.get("filename") in known:
            values.setdefault("v", known[values["filename"]])

    @app.after_request
    def cache_versioned(response):
        if request.endpoint == "static" and response.status_code == 200:
            filename = (request.view_args or {}).get("filename")
            if filename in known and request.args.get("v") == known[filename]:
                response.cache_control.public = True
                response.cache_control.max_age = YEAR
                response.cache_control.immutable = True
                response.cache_control.no_cache = None
        return response
