"""Ribambelle, the family portal: the application factory.

Every setting is listed in SETTINGS below with its default. Set one with an environment variable
``FLASK_<NAME>`` (read by ``app.config.from_prefixed_env()``; values are parsed as JSON when they
can be, so ``FLASK_MAIL_PORT=2525`` is a number and ``FLASK_DEMO_MAILBOX=true`` a boolean).
The database is the one exception: ``DATABASE_URL``, as most hosting tools expect.
"""
from __future__ import annotations

import logging
import os
import re
import secrets
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import click
from flask import Flask, Request, abort, flash, g, render_template, request, url_for
from flask.globals import _cv_request
from flask.sessions import SecureCookieSessionInterface
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from jinja2 import ChoiceLoader, FileSystemLoader, PrefixLoader
from markupsafe import Markup
from sqlmodel import func, select
from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.exceptions import SecurityError
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter

from blueprints import (
    account,
    admin,
    auth,
    children,
    demo,
    documents,
    enrolments,
    households,
    regie,
    reservations,
    simulator,
    staff,
    web,
)
from blueprints import billing as billing_pages  # services.billing is the other billing
from blueprints.web import is_htmx
from db import close_db, get_db, make_engine
from extensions import csrf, login_manager, mail
from models import Payment, PaymentStatus, utcnow
from services import (
    accessibility,
    assets,
    backup,
    billing,
    demo_data,
    direct_debit,
    formatting,
    migrations,
    outbox,
    payments,
    planning,
    reminders,
)
from services import documents as document_rules  # blueprints.documents is the pages
from services.calendar import paris_today
from services.payments import SUPPORTED
from services.security import log_event

ROOT = Path(__file__).resolve().parent

# Every setting, with its default. Environment: FLASK_<NAME>.
SETTINGS = {
    # The portal's public address, as parents type it ("https://famille.ville.fr", no trailing slash).
    # Every link in mails and PDFs and the payment provider's return and notification addresses are
    # built from it, never from the request, and requests naming any other host are refused. Required:
    # the portal does not start without it (`make run` sets it to its own address).
    "BASE_URL": None,
    # Signs the session cookie and the CSRF tokens. When unset, one is generated once and kept in
    # instance/secret_key. With several app servers, set the same value on all of them.
    "SECRET_KEY": None,
    # Name and address of the town, shown in page footers, mails and invoices.
    "TOWN_NAME": "Ville de Démonstration",
    "TOWN_ADDRESS": "1 place de la Mairie, 00000 Démonstration",
    # Where parents report an accessibility problem or ask for help (accessibility statement).
    "TOWN_EMAIL": "enfance@ville-demonstration.invalid",
    # The town's multi-year accessibility plan (schéma pluriannuel, RGAA) and this year's action plan,
    # linked from the accessibility statement; None until the town publishes them.
    "A11Y_PLAN_URL": None,
    # Outgoing mail. With no MAIL_SERVER, mails wait in the outbox (and, with DEMO_MAILBOX,
    # can be read at /demo/courriels). A mail that fails is retried until the server takes it.
    "MAIL_SERVER": None,
    "MAIL_PORT": 25,
    "MAIL_USE_TLS": False,
    "MAIL_USE_SSL": False,
    "MAIL_USERNAME": None,
    "MAIL_PASSWORD": None,
    "MAIL_DEFAULT_SENDER": "Portail famille <ne-pas-repondre@ribambelle.invalid>",
    "MAIL_TIMEOUT": 10,  # seconds to wait for the SMTP server
    # Seconds between two runs of the outbox sender inside each app process; 0 turns it off
    # (then run `flask mail send` from cron).
    "OUTBOX_INTERVAL": 30,
    # Demo only: a page listing every mail the portal wrote, links included. Never in production.
    "DEMO_MAILBOX": False,
    # Sessions: ended after this many idle minutes, and after this many hours whatever happens.
    "SESSION_IDLE_MINUTES": 30,
    "SESSION_MAX_HOURS": 12,
    # The session cookie is always Secure over HTTPS; set True to force it (behind a proxy that
    # does not say the request came over HTTPS).
    "SESSION_COOKIE_SECURE": False,
    # Number of reverse proxies in front of the app whose X-Forwarded-* headers are trusted.
    "PROXY_COUNT": 0,
    # argon2id cost: time (iterations) and memory (KiB) per password hash. The default is OWASP's
    # recommended minimum (19 MiB, 2 iterations): a login costs about 40 ms of one core, so a
    # registration morning is not spent hashing. Hashes made with other costs are redone at login.
    "ARGON2_TIME_COST": 2,
    "ARGON2_MEMORY_COST": 19456,
    # Online payment through eopayment: the provider ("payfip_ws" for PayFiP, "systempayv2", "payzen";
    # services/payments.SUPPORTED) and its options, e.g. FLASK_PAYMENT_OPTIONS='{"numcli": "123456",
    # "saisie": "W"}' for PayFiP in production, or SystemPay's vads_site_id, vads_ctx_mode and
    # certificates. Answers in another mode (test/production) or for another site are refused.
    "PAYMENT_BACKEND": "payfip_ws",
    "PAYMENT_OPTIONS": {},
    # Seconds to wait for the provider's web service (PayFiP) before telling the parent it is unavailable.
    "PAYMENT_TIMEOUT": 15,
    # Demo and tests only: a local simulator plays the provider, speaking its protocol:
    # "payfip_ws", "systempayv2" or "payzen" (true: systempayv2).
    "PAYMENT_SIMULATOR": False,
    # Invoices: days allowed to pay after the invoice is issued.
    "INVOICE_DUE_DAYS": 30,
    # Direct debit (prélèvement automatique SEPA), offered to families once the town's creditor
    # identifier (ICS, "FR72ZZZ123456", given by the Banque de France), and the IBAN and BIC of the
    # account the debits are paid into (the régie's account at the Trésor public) are all set; the
    # creditor's name is TOWN_NAME unless set. The portal refuses to start with an invalid one.
    "SEPA_CREDITOR_ID": None,
    "SEPA_CREDITOR_NAME": None,
    "SEPA_CREDITOR_IBAN": None,
    "SEPA_CREDITOR_BIC": None,
    # Days between an invoice and its debit: the invoice mail tells the family the amount and the date
    # (the SEPA pre-notification, 14 days unless the mandate says otherwise).
    "DEBIT_NOTICE_DAYS": 14,
    # The tax certificate (attestation fiscale) counts childcare only: the codes of the units that are
    # meals (lunch at the centre, the school canteen), left out as the tax office asks.
    "TAX_CERTIFICATE_EXCLUDED_UNITS": ["repas", "cantine"],
    # The families' documents (pièces justificatives): the directory they are kept in, outside static/
    # and never served by nginx (default: instance/documents; back it up with the database), and what
    # one family may store, in bytes.
    "DOCUMENTS_DIR": None,
    "DOCUMENTS_FAMILY_QUOTA": 50 * 1024 * 1024,
    # Reminder mails of a past-due invoice: days after its due date (never two within a week; none
    # once the invoice is paid or the régie marks it disputed). Sent by `flask billing remind` (cron).
    "REMINDER_DAYS": [7, 21],
    # Rate limits, "COUNT/SECONDS", counted in the database so every process and server shares them;
    # empty turns one off. Failed logins per client address (credential stuffing; only failures count,
    # so a school or a town hall with hundreds of parents behind one address logs them all in, and the
    # quota leaves room for their typos: in the rush benchmark 194 families behind one address, one in
    # five mistyping once, made 39 failures in four minutes; each login also has its own growing
    # delays), and the "forgotten password" mails per client address and per login (no mailbox flooded).
    "RATE_LIMIT_LOGIN_FAILURES": "100/300",
    "RATE_LIMIT_FORGOT_IP": "10/3600",
    "RATE_LIMIT_FORGOT_EMAIL": "3/3600",
    # Level of the application and security logs, written to stderr (gunicorn's error log, journald).
    "LOG_LEVEL": "INFO",
    # Largest request accepted, in bytes (a bigger one gets a French error page): a 10 MB document and
    # its form.
    "MAX_CONTENT_LENGTH": 12 * 1024 * 1024,
}


# Ids and numbers in URLs, query strings and forms: the database's INTEGER holds no more than this.
# A bigger one ("?page=99999999999999999999", "/enfants/99999999999999999999") is a French 400 or
# 404 page, never an overflow error deep in the database driver.
MAX_INT = 2**31 - 1


class BoundedIntConverter(IntegerConverter):
    """``<int:...>`` in a route: 0 to MAX_INT; anything bigger matches no route (404)."""

    def __init__(self, map, fixed_digits=0, min=0, max=MAX_INT, signed=False):
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


class BoundedArgs(ImmutableMultiDict):
    """Query string and form values: ``get(name, type=int)`` refuses a number the database cannot hold."""

    def get(self, key, default=None, type=None):
        value = super().get(key, default, type)
        if type is int and isinstance(value, int) and not -MAX_INT <= value <= MAX_INT:
            abort(400, description="Un nombre de la demande est trop grand.")
        return value


class BoundedRequest(Request):
    parameter_storage_class = BoundedArgs


class SessionInterface(SecureCookieSessionInterface):
    """Marks the session cookie Secure whenever the request came over HTTPS."""

    def get_cookie_secure(self, app):
        return bool(app.config["SESSION_COOKIE_SECURE"] or (request and request.is_secure))


class Portal(Flask):
    """Flask, whose ``url_for`` keeps the in-page URLs it built: a page builds some twenty (its menu, the
    planning's forms and links, each unit's), the same at every request, at a fortieth of its time each.

    A URL is known by its endpoint, method, anchor and values under the request's script root; it depends
    on nothing else, for the portal's ``url_defaults`` (the static files' versions, ``services.assets``)
    depend on the endpoint and the values alone. External URLs, relative endpoints (".x") and values that
    cannot be a key (a list) are built each time, as Flask does.
    """

    URLS_KEPT = 4096  # then forgotten all at once: enough for the links of a few hundred children a day

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._urls: dict = {}

    def url_for(self, endpoint: str, /, *, _anchor=None, _method=None, _scheme=None, _external=None, **values) -> str:
        context = _cv_request.get(None)
        if context is None or _external or _scheme is not None or endpoint[:1] == ".":
            return super().url_for(endpoint, _anchor=_anchor, _method=_method, _scheme=_scheme,
                                   _external=_external, **values)
        try:
            key = (context.request.script_root, endpoint, _method, _anchor, frozenset(values.items()))
            url = self._urls.get(key)
        except TypeError:  # a value that cannot be a key
            return super().url_for(endpoint, _anchor=_anchor, _method=_method, **values)
        if url is None:
            url = super().url_for(endpoint, _anchor=_anchor, _method=_method, **values)
            if len(self._urls) >= self.URLS_KEPT:
                self._urls.clear()
            self._urls[key] = url
        return url


def create_app(test_config: dict | None = None) -> Flask:
    """Build the application: settings, extensions, templates, blueprints and CLI."""
    app = Portal(__name__, instance_path=str(ROOT / "instance"), template_folder="templates")
    app.request_class = BoundedRequest
    app.url_map.converters["int"] = BoundedIntConverter
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)

    app.config.update(SETTINGS)
    app.config.update(
        DATABASE_URL=os.environ.get(
            "DATABASE_URL", f"sqlite:///{Path(app.instance_path) / 'ribambelle.sqlite'}"
        ),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_NAME="ribambelle_session",
        SESSION_REFRESH_EACH_REQUEST=False,  # rewritten only when changed (see enforce_session_age)
        WTF_CSRF_TIME_LIMIT=None,  # the session lifetime bounds the token
        WTF_I18N_ENABLED=False,  # WTForms' own French messages (FrenchForm.Meta.locales), not Flask-Babel's
        MAX_FORM_MEMORY_SIZE=None,
    )
    app.config.from_prefixed_env()
    if test_config:
        app.config.update(test_config)
    # The browser keeps the cookie for the longest session; the server ends an idle one (and says so).
    app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(hours=app.config["SESSION_MAX_HOURS"])
    app.config["MAX_FORM_MEMORY_SIZE"] = app.config["MAX_CONTENT_LENGTH"]
    if not app.config["SECRET_KEY"]:
        app.config["SECRET_KEY"] = _instance_secret(Path(app.instance_path) / "secret_key")
    app.session_interface = SessionInterface()
    _check_base_url(app)
    _check_payment_backend(app)
    _check_creditor(app)
    _configure_logging(app)
    if app.config["PROXY_COUNT"]:
        n = int(app.config["PROXY_COUNT"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)

    # Pages live in templates/, fragments in partials/ (included as "partials/<area>/_x.html").
    app.jinja_loader = ChoiceLoader(
        [
            FileSystemLoader(str(ROOT / "templates")),
            PrefixLoader({"partials": FileSystemLoader(str(ROOT / "partials"))}),
        ]
    )

    app.jinja_env.trim_blocks = True  # smaller pages: no blank lines left by {% %} tags
    app.jinja_env.lstrip_blocks = True

    app.extensions["ribambelle.engine"] = make_engine(app.config["DATABASE_URL"])
    # SQLite: each process in service holds a shared lock, so that `flask restore` can tell it is running.
    app.extensions["ribambelle.running_lock"] = backup.hold_running_lock(app.config["DATABASE_URL"])
    app.teardown_appcontext(close_db)

    csrf.init_app(app)
    mail.init_app(app)
    login_manager.init_app(app)

    formatting.init_app(app)
    assets.init_app(app)
    app.add_template_global(planning.state_summary, "state_summary")
    app.add_template_global(_legends(app), "legend")
    # Whether the town offers direct debit (its links shown): the same test as its pages' own.
    app.add_template_global(lambda: direct_debit.creditor(app.config) is not None, "debit_offered")
    # Said in every footer, as RGAA asks: the statement's status, from the grid and the published run.
    app.jinja_env.globals["accessibility_status"] = accessibility.audit(accessibility.load_results()).status
    web.init_app(app)

    app.register_blueprint(auth.bp)
    app.register_blueprint(account.bp)
    app.register_blueprint(children.bp)
    app.register_blueprint(reservations.bp)
    app.register_blueprint(billing_pages.bp)
    app.register_blueprint(simulator.bp)
    # The provider posts its notification (and the simulator its page) without our CSRF token:
    # they are checked by the provider's signature instead.
    csrf.exempt(billing_pages.payment_notification)
    csrf.exempt(simulator.entry)
    csrf.exempt(simulator.decision)
    csrf.exempt(simulator.payfip_service)
    csrf.exempt(simulator.payfip_decision)
    app.register_blueprint(staff.bp)
    app.register_blueprint(regie.bp)
    app.register_blueprint(documents.bp)
    app.register_blueprint(enrolments.bp)
    app.register_blueprint(households.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(demo.bp)

    _register_errors(app)
    _register_cli(app)

    outbox.start_worker(app)
    return app


LOCAL_HOSTS = ("127.0.0.1", "localhost")


# The legends, the same for every visitor and every request: each drawn at its first use, then kept by
# the process (issue 16: drawing them was a tenth of the family space's instructions).
LEGENDS = {
    "planning": ("partials/reservations/_legend.html",
                 {"states": planning.STATES, "reservation_states": planning.RESERVATION_STATES}),
    "billing": ("partials/billing/_legend.html",
                {"invoice_states": billing.INVOICE_STATES, "payment_states": billing.PAYMENT_STATES}),
}


def _legends(app: Flask):
    drawn: dict[tuple[str, int], Markup] = {}

    def legend(name: str, heading: int = 2) -> Markup:
        """``{{ legend("planning", heading=4) }}``: the legend ``name`` with headings of that level."""
        if (name, heading) not in drawn:
            template, values = LEGENDS[name]
            drawn[name, heading] = Markup(app.jinja_env.get_template(template).render(heading=heading, **values))
        return drawn[name, heading]

    return legend


def _check_base_url(app: Flask) -> None:
    """Refuse to start without a valid BASE_URL; trust only its host (Flask's TRUSTED_HOSTS)."""
    base = (app.config.get("BASE_URL") or "").rstrip("/")
    if not base and app.testing:
        base = "http://localhost"
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise RuntimeError(
            "Réglage BASE_URL manquant ou invalide : donnez l'adresse publique du portail, par exemple "
            "FLASK_BASE_URL=https://famille.ville.fr (les liens des courriels et du paiement en ligne en "
            f"dépendent). Valeur lue : {base!r}"
        )
    app.config["BASE_URL"] = base
    # Its host, and the machine's own names for the health checks of nginx or a load balancer, which
    # ask the app server by address (gunicorn listens on 127.0.0.1 only; nginx drops other names).
    app.config["TRUSTED_HOSTS"] = list(dict.fromkeys([parts.hostname, *LOCAL_HOSTS]))


def _check_payment_backend(app: Flask) -> None:
    """Refuse to start with a payment provider the portal cannot check the answers of."""
    kind = app.config["PAYMENT_BACKEND"]
    if kind not in SUPPORTED and not app.config.get("PAYMENT_SIMULATOR"):
        raise RuntimeError(f"PAYMENT_BACKEND {kind!r} n'est pas pris en charge : choisissez parmi "
                           f"{', '.join(SUPPORTED)} (README, « Paiement en ligne »).")


def _check_creditor(app: Flask) -> None:
    """Refuse to start with a creditor identifier or account the bank would refuse (nothing set: no debit)."""
    cred = direct_debit.creditor(app.config)
    if cred is None:
        return
    if not direct_debit.valid_ics(cred.ics):
        raise RuntimeError(f"SEPA_CREDITOR_ID {cred.ics!r} n'est pas un identifiant créancier SEPA valide "
                           "(ICS, par exemple FR72ZZZ123456).")
    try:
        direct_debit.read_iban(cred.iban)
    except direct_debit.DebitError as error:
        raise RuntimeError(f"SEPA_CREDITOR_IBAN : {error}") from None
    if not re.fullmatch(r"[A-Z]{6}[A-Z0-9]{2}([A-Z0-9]{3})?", cred.bic):
        raise RuntimeError(f"SEPA_CREDITOR_BIC {cred.bic!r} n'est pas un BIC (8 ou 11 caractères).")


def _configure_logging(app: Flask) -> None:
    """Application and security logs to stderr at LOG_LEVEL: under gunicorn, into its error log.

    Flask's own logger stays at WARNING unless told otherwise, which dropped every info line under
    gunicorn; the "ribambelle" loggers (security log included) get one handler of their own.
    """
    level = str(app.config["LOG_LEVEL"]).upper()
    logger = logging.getLogger("ribambelle")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(level)
    app.logger.setLevel(level)


def _instance_secret(path: Path) -> str:
    """Read the generated secret key, creating it (readable by the owner only) the first time."""
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    return path.read_text().strip()


SERVER_ERROR_TITLE = "Erreur du serveur"
# What is known: a request that failed wrote nothing of its own, but what was confirmed before stays.
SERVER_ERROR = ("Une erreur est survenue de notre côté. Réessayez dans un instant ; vos réservations "
                "confirmées et vos paiements validés restent enregistrés.")
PLAIN_SERVER_ERROR = (f'<!doctype html><html lang="fr"><meta charset="utf-8"><title>{SERVER_ERROR_TITLE}</title>'
                      f"<h1>{SERVER_ERROR_TITLE}</h1><p>{SERVER_ERROR}</p></html>")


def _register_errors(app: Flask) -> None:
    def page(code: int, title: str, message: str):
        return render_template("error.html", code=code, title=title, message=message), code

    @app.errorhandler(SecurityError)
    def untrusted_host(e):
        # Raised before routing: no URL can be built for this host, so a page without templates.
        log_event("host.refused", host=request.environ.get("HTTP_HOST", "")[:200],
                  forwarded_host=request.environ.get("HTTP_X_FORWARDED_HOST", "")[:200])
        body = ("<!doctype html><html lang=\"fr\"><meta charset=\"utf-8\"><title>Adresse inconnue</title>"
                "<h1>Adresse inconnue</h1><p>Ce portail ne répond pas à cette adresse.</p></html>")
        return body, 400, {"Content-Type": "text/html; charset=utf-8"}

    @app.errorhandler(400)
    def bad_request(e):
        # Our own abort(400, description=...) is French; Werkzeug's default words are English.
        ours = getattr(e, "description", None) != type(e).description
        return page(400, "Requête invalide", e.description if ours else "La demande envoyée n'a pas pu être comprise.")

    @app.errorhandler(CSRFError)
    def csrf_error(e):
        if is_htmx():
            # A click on a page left open (its session cookie gone): never a silent 400 in a fragment,
            # the whole page goes to the login, or is drawn again; what was selected stays in the draft.
            if not current_user.is_authenticated:
                flash("Votre session a expiré. Reconnectez-vous : vos jours sélectionnés sont gardés.", "info")
                return "", 204, {"HX-Redirect": url_for("auth.login")}
            flash("Cette page avait expiré : elle est rechargée. Refaites votre dernier choix.", "info")
            return "", 204, {"HX-Refresh": "true"}
        return page(
            400,
            "Formulaire expiré",
            "Ce formulaire a expiré ou a déjà été envoyé. Revenez à la page précédente, "
            "rechargez-la et recommencez.",
        )

    @app.errorhandler(403)
    def forbidden(e):
        return page(403, "Accès refusé", "Cette page n'est pas accessible avec votre compte.")

    @app.errorhandler(404)
    def not_found(e):
        return page(404, "Page introuvable", "Cette page n'existe pas ou n'est pas accessible.")

    @app.errorhandler(405)
    def method_not_allowed(e):
        return page(405, "Action impossible", "Cette action n'est pas possible sur cette page.")

    @app.errorhandler(413)
    def too_large(e):
        return page(
            413,
            "Envoi trop volumineux",
            "Les informations envoyées sont trop volumineuses. Raccourcissez les textes saisis, ou, pour "
            "un document, envoyez un fichier de 10 Mo au plus (une photo en qualité normale), et recommencez.",
        )

    @app.errorhandler(500)
    def server_error(e):
        # The database may be what failed (a restart, a broken transaction): the page never touches it.
        db = g.pop("db", None)
        if db is not None:
            try:
                db.close()
            except Exception:  # the connection is gone: nothing more to close
                pass
        # Rendering would load the logged-in user (Flask-Login's context processor): shown as a visitor.
        g._login_user = login_manager.anonymous_user()
        try:
            body = render_template("error.html", code=500, title=SERVER_ERROR_TITLE, message=SERVER_ERROR)
        except Exception:
            app.logger.exception("The error page could not be rendered")
            body = PLAIN_SERVER_ERROR
        return body, 500


def _register_cli(app: Flask) -> None:
    @app.cli.command("migrate")
    def migrate_command():
        """Apply the database migrations (Alembic) up to the newest."""
        migrations.upgrade(app.config["DATABASE_URL"])
        click.echo("Base de données à jour.")

    @app.cli.command("seed-demo")
    @click.option("--force", is_flag=True, help="Load even if the database holds data.")
    def seed_demo_command(force):
        """Load the demo town when the database is empty."""
        with app.app_context():
            loaded = demo_data.seed(get_db(), force=force, hasher=app.extensions["ribambelle.hasher"])
        click.echo("Données de démonstration chargées." if loaded else "Base déjà remplie : rien chargé.")

    @app.cli.command("backup")
    @click.argument("destination", required=False, type=click.Path(dir_okay=False, path_type=Path))
    def backup_command(destination):
        """Save the database to DESTINATION (default: instance/backups/), while the portal runs; verify it."""

        url = app.config["DATABASE_URL"]
        destination = destination or backup.default_destination(url, Path(app.instance_path) / "backups")
        try:
            written = backup.backup(url, destination, document_rules.directory(app.config, app.instance_path))
        except backup.BackupError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"Sauvegarde écrite et vérifiée : {written} (documents des familles : "
                   f"{backup.documents_archive(written)})")

    @app.cli.command("restore")
    @click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.option("--yes", is_flag=True, help="Replace the current data without asking.")
    def restore_command(source, yes):
        """Replace the current data with the backup SOURCE: all or nothing, the portal stopped."""

        if not yes:
            click.confirm("Les données actuelles seront remplacées par la sauvegarde. Continuer ?", abort=True)
        app.extensions["ribambelle.engine"].dispose()
        own_lock = app.extensions.pop("ribambelle.running_lock", None)
        if own_lock:
            own_lock.close()  # this command's own process is not "the portal in service"
        try:
            backup.restore(app.config["DATABASE_URL"], source, document_rules.directory(app.config, app.instance_path))
        except backup.BackupError as exc:
            raise click.ClickException(f"{exc} Les données actuelles n'ont pas été modifiées.") from None
        finally:
            app.extensions["ribambelle.running_lock"] = backup.hold_running_lock(app.config["DATABASE_URL"])
        click.echo("Sauvegarde restaurée. Appliquez ensuite les migrations : flask migrate")

    @app.cli.group("billing")
    def billing_group():
        """Monthly billing."""

    @billing_group.command("run")
    @click.argument("month")
    def billing_run_command(month):
        """Make the invoices of MONTH (AAAA-MM), once: a second run bills only what is new."""

        try:
            first = billing.parse_month(month)
        except billing.BillingError as exc:
            raise click.BadParameter(str(exc)) from None
        with app.app_context():
            report = billing.run(app.extensions["ribambelle.engine"], first, paris_today(utcnow()),
                                 app.config["INVOICE_DUE_DAYS"], notice_days=direct_debit.notice_days(app.config))
        outbox.deliver_pending(app)
        click.echo(report.summary())
        for number in report.invoices:
            click.echo(f"  {number}")

    @billing_group.command("remind")
    @click.option("--today", "on", default="", help="AAAA-MM-JJ : le jour à considérer (par défaut aujourd'hui)")
    def billing_remind_command(on):
        """Mail today's reminders of past-due invoices (REMINDER_DAYS); run it daily from cron."""
        try:
            today = date.fromisoformat(on) if on else paris_today(utcnow())
        except ValueError:
            raise click.BadParameter(f"Date invalide : « {on[:20]} » (attendu : AAAA-MM-JJ).") from None
        with app.app_context():
            sent = reminders.send(get_db(), today, reminders.schedule(app.config))
        outbox.deliver_pending(app)
        click.echo(f"{len(sent)} rappel(s) envoyé(s).")
        for number in sent:
            click.echo(f"  {number}")

    @app.cli.group("documents")
    def documents_group():
        """The families' documents."""

    @documents_group.command("remind")
    def documents_remind_command():
        """Mail the families whose documents stop being valid within 30 days (once each); run it daily."""
        with app.app_context():
            count = document_rules.remind_expiring(get_db(), paris_today(utcnow()))
        outbox.deliver_pending(app)
        click.echo(f"{count} rappel(s) de document envoyé(s).")

    @app.cli.group("payments")
    def payments_group():
        """Online payments."""

    @payments_group.command("check")
    def payments_check_command():
        """Ask the provider about online payments left without an answer (PayFiP), then expire them."""

        with app.app_context():
            db = get_db()
            payments.refresh_pending(db, payments.provider(app.config))
            left = db.exec(select(func.count()).select_from(Payment).where(Payment.status == PaymentStatus.PENDING)).one()
        click.echo(f"Paiements en ligne vérifiés ; {left} encore en cours.")

    @app.cli.group("mail")
    def mail_group():
        """The mail outbox."""

    @mail_group.command("send")
    @click.option("--now", is_flag=True, help="Also the mails waiting for their next try (the SMTP server is back).")
    def mail_send_command(now):
        """Send the mails of the outbox that are due (with --now: every waiting one)."""
        if now:
            outbox.retry_now(app)
        sent, failed = outbox.deliver_pending(app)
        click.echo(f"{sent} envoyé(s), {failed} en échec (nouvel essai plus tard).")
