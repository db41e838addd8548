"""Prélèvement automatique: SEPA Core mandates (the file and its rejects: ``services.debit_file``).

A family opts in online (the consenting login is kept) or on paper (an agent records it): one mandate
per family that is not revoked, with its unique reference (RUM). An invoice issued while the family's
mandate is active is announced for debit ``DEBIT_NOTICE_DAYS`` later (the pre-notification, in the
invoice mail) and is not payable online.
"""
from __future__ import annotations

import gettext
import re
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

import pycountry
from schwifty import IBAN
from schwifty import exceptions as iban_errors
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from models import (
    DebitState,
    Family,
    Invoice,
    Mandate,
    MandateStatus,
    User,
    utcnow,
)
from services import audit, outbox
from services.counters import next_value
from services.security import log_event

MAX_HOLDER = 70  # SEPA's debtor name

CONSENT = ("En signant ce mandat, vous autorisez {creditor} à envoyer des instructions à votre banque pour "
           "débiter votre compte, et votre banque à débiter votre compte conformément aux instructions de "
           "{creditor}. Vous bénéficiez du droit d'être remboursé par votre banque selon les conditions "
           "décrites dans la convention que vous avez passée avec elle. Une demande de remboursement doit être "
           "présentée dans les 8 semaines suivant la date de débit de votre compte pour un prélèvement autorisé.")


class DebitError(Exception):
    """A French message for the parent or the régie; nothing was written."""


@dataclass(frozen=True)
class Creditor:
    """The town as SEPA creditor: its name, identifier (ICS) and the account the debits are paid to."""

    name: str
    ics: str
    iban: str
    bic: str

    @property
    def consent(self) -> str:
        return CONSENT.format(creditor=self.name)


def creditor(config) -> Creditor | None:
    """The town's creditor settings, or None when direct debit is not offered (not all set)."""
    ics, iban, bic = (config.get(k) for k in ("SEPA_CREDITOR_ID", "SEPA_CREDITOR_IBAN", "SEPA_CREDITOR_BIC"))
    if not (ics and iban and bic):
        return None
    return Creditor(config.get("SEPA_CREDITOR_NAME") or config["TOWN_NAME"], compact(ics), compact(iban), compact(bic))


def notice_days(config) -> int | None:
    """Days between an invoice and its debit when direct debit is offered; None when it is not."""
    return int(config["DEBIT_NOTICE_DAYS"]) if creditor(config) else None


def compact(text: str) -> str:
    return re.sub(r"\s+", "", text or "").upper()


def _mod97(text: str) -> int:
    return int("".join(str(int(ch, 36)) for ch in text)) % 97


def valid_ics(value: str) -> bool:
    """A SEPA creditor identifier ("FR72ZZZ123456"): country, check digits over the national identifier
    and the country (ISO 7064 mod 97-10, as an IBAN's), the creditor business code (not checked)."""
    ics = compact(value)
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{3}[A-Z0-9]{1,28}", ics):
        return False
    return _mod97(ics[7:] + ics[:2] + ics[2:4]) == 1


def read_iban(text: str) -> IBAN:
    """The IBAN typed by a parent or an agent (spaces allowed), checked with schwifty: length and
    check digits, the country's format and national key (the French RIB key), a SEPA country."""
    typed = (text or "").strip()
    if not typed:
        raise DebitError("Saisissez l'IBAN du compte à débiter (il figure sur votre RIB).")
    if len(typed) > 50:
        raise DebitError("L'IBAN saisi est trop long : un IBAN a au plus 34 caractères.")
    try:
        iban = IBAN(typed, validate_bban=True)
    except iban_errors.InvalidCountryCode:
        where = country_name(typed[:2])
        raise DebitError(f"Cet IBAN ne commence pas par le code d'un pays de la zone SEPA (FR pour la France)"
                         f"{f' ; ici : {where}, hors de la zone SEPA' if where else ''}.") from None
    except iban_errors.InvalidLength:
        raise DebitError("L'IBAN saisi n'a pas la bonne longueur : vérifiez qu'il ne manque aucun caractère.") from None
    except iban_errors.InvalidChecksumDigits:
        raise DebitError("L'IBAN saisi n'est pas valide (sa clé de contrôle ne correspond pas) : vérifiez chaque "
                         "caractère recopié de votre RIB.") from None
    except iban_errors.SchwiftyException:
        raise DebitError("L'IBAN saisi n'est pas valide : vérifiez chaque caractère recopié de votre RIB.") from None
    if not iban.in_sepa_zone:
        raise DebitError(f"Le prélèvement n'est possible que sur un compte de la zone SEPA ; cet IBAN est celui d'un "
                         f"compte hors de la zone SEPA ({country_name(iban.country_code) or iban.country_code}).")
    return iban


@lru_cache(maxsize=1)
def _country_words():
    return gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=["fr"], fallback=True)


def country_name(code: str) -> str:
    """The country's French name ("Brésil"), "" when ``code`` is no country."""
    country = pycountry.countries.get(alpha_2=(code or "").upper())
    return _country_words().gettext(country.name) if country else ""


def read_holder(text: str) -> str:
    holder = " ".join((text or "").split())
    if not holder:
        raise DebitError("Saisissez le nom du titulaire du compte, tel qu'il figure sur le RIB.")
    if len(holder) > MAX_HOLDER:
        raise DebitError(f"Le nom du titulaire du compte a au plus {MAX_HOLDER} caractères.")
    return holder


def masked(iban: str) -> str:
    """'FR76 •••• •••• 0189': enough for a parent to recognise the account, not to copy it."""
    return f"{iban[:4]} •••• •••• {iban[-4:]}" if iban else ""


def live_mandate(db: Session, family_id: int) -> Mandate | None:
    """The family's mandate that is not revoked (active or suspended), if any."""
    return db.exec(select(Mandate).where(Mandate.family_id == family_id, Mandate.status != MandateStatus.REVOKED)).first()


def active_mandates(db: Session, family_ids) -> dict[int, Mandate]:
    """The active mandates of these families, by family (one statement for a billing batch)."""
    query = select(Mandate).where(Mandate.family_id.in_(list(family_ids)), Mandate.status == MandateStatus.ACTIVE)
    return {m.family_id: m for m in db.exec(query)}


def _new_rum(db: Session, family_id: int, today: date) -> str:
    return f"RBL{today:%Y}-{family_id:06d}-{next_value(db, 'mandate'):06d}"


def sign(db: Session, family: Family, user: User, holder: str, iban_text: str, consent: bool, today: date) -> Mandate:
    """A parent signs a mandate online: the consenting login and the date are kept; committed, confirmed by mail."""
    iban, holder = read_iban(iban_text), read_holder(holder)
    if not consent:
        raise DebitError("Cochez la case « J'accepte le mandat de prélèvement SEPA » pour signer le mandat.")
    mandate = _create(db, family, iban, holder, today, "Votre famille a déjà un mandat de prélèvement : changez son "
                      "IBAN ou arrêtez-le.", signed_on=today, signed_by_id=user.id)
    log_event("mandate.signed", user.id, family=family.id, mandate=mandate.id)
    db.commit()
    return mandate


def record_paper(db: Session, agent_id: int, family: Family, holder: str, iban_text: str, signed_on: date | None,
                 today: date) -> Mandate:
    """An agent records a mandate the family signed on paper (its date as written on it)."""
    iban, holder = read_iban(iban_text), read_holder(holder)
    if signed_on is None or signed_on > today or signed_on < today - timedelta(days=36 * 30):
        raise DebitError("Indiquez la date de signature écrite sur le mandat (au plus tard aujourd'hui, "
                         "et un mandat inutilisé depuis 36 mois n'est plus valable).")
    mandate = _create(db, family, iban, holder, today, "Cette famille a déjà un mandat de prélèvement : changez son "
                      "IBAN ou arrêtez-le d'abord.", signed_on=signed_on, recorded_by_id=agent_id)
    audit.record(db, agent_id, "create", "mandate", mandate.id, f"Mandat de prélèvement papier enregistré ({mandate.rum})",
                 after={"rum": mandate.rum, "iban": masked(mandate.iban), "signe_le": signed_on.isoformat()},
                 family_id=family.id)
    db.commit()
    return mandate


def _create(db: Session, family: Family, iban: IBAN, holder: str, today: date, already: str, **signature) -> Mandate:
    """The family's new mandate, written and confirmed by mail (the caller commits). One live mandate per
    family: a second one, even at the same moment (two guardians, a double submit), is refused (``already``)."""
    if live_mandate(db, family.id) is not None:
        raise DebitError(already)
    mandate = Mandate(family_id=family.id, rum=_new_rum(db, family.id, today), holder="", iban="", **signature)
    _set_account(mandate, iban, holder)
    db.add(mandate)
    try:
        db.flush()
    except IntegrityError:  # the unique index of live mandates
        db.rollback()
        raise DebitError(already) from None
    _mail(db, mandate, "Votre mandat de prélèvement SEPA", "signed")
    return mandate


def _set_account(mandate: Mandate, iban: IBAN, holder: str) -> None:
    mandate.iban, mandate.holder = iban.compact, holder
    mandate.bic, mandate.bank_name = _bic(iban), _bank(iban)


def amend(db: Session, mandate: Mandate, holder: str, iban_text: str, by_id: int, by_agent: bool = False) -> Mandate:
    """A new account for the mandate (same RUM): its next debit is a first one; a suspended mandate is active again."""
    iban, holder = read_iban(iban_text), read_holder(holder)
    if mandate.status == MandateStatus.REVOKED:
        raise DebitError("Ce mandat est arrêté : signez-en un nouveau.")
    before = {"iban": masked(mandate.iban), "titulaire": mandate.holder, "etat": mandate.status}
    mandate.previous_iban = mandate.iban
    _set_account(mandate, iban, holder)
    mandate.amended_at, mandate.first_debit, mandate.status = utcnow(), True, MandateStatus.ACTIVE
    db.add(mandate)
    _record(db, mandate, by_id, by_agent, "mandate.amended", f"IBAN du mandat {mandate.rum} changé", before,
            {"iban": masked(mandate.iban), "titulaire": holder, "etat": mandate.status})
    _mail(db, mandate, "Votre mandat de prélèvement SEPA est modifié", "amended")
    db.commit()
    return mandate


def revoke(db: Session, mandate: Mandate, by_id: int, by_agent: bool = False) -> Mandate:
    """Stop the mandate: no invoice is debited any more, those announced and not yet sent included
    (they are to pay online or at the counter, by their due date)."""
    if mandate.status == MandateStatus.REVOKED:
        raise DebitError("Ce mandat est déjà arrêté.")
    mandate.status, mandate.revoked_at = MandateStatus.REVOKED, utcnow()
    db.add(mandate)
    for invoice in db.exec(select(Invoice).where(Invoice.family_id == mandate.family_id,
                                                 Invoice.debit_state == DebitState.PLANNED)):
        invoice.debit_state, invoice.debit_on = "", None
        db.add(invoice)
    _record(db, mandate, by_id, by_agent, "mandate.revoked", f"Mandat de prélèvement {mandate.rum} arrêté",
            {"etat": "active"}, {"etat": "revoked"})
    _mail(db, mandate, "Votre prélèvement automatique est arrêté", "revoked")
    db.commit()
    return mandate


def _record(db: Session, mandate: Mandate, by_id: int, by_agent: bool, event: str, summary: str, before: dict,
            after: dict) -> None:
    """An agent's change goes to the staff journal, a parent's to the security log."""
    if by_agent:
        audit.record(db, by_id, "update", "mandate", mandate.id, summary, before, after, family_id=mandate.family_id)
    else:
        log_event(event, by_id, family=mandate.family_id, mandate=mandate.id)


def _bic(iban: IBAN) -> str:
    try:
        return str(iban.bic or "")[:11]
    except iban_errors.SchwiftyException:
        return ""


def _bank(iban: IBAN) -> str:
    try:
        return (iban.bank_name or "")[:100]
    except iban_errors.SchwiftyException:
        return ""


def _mail(db: Session, mandate: Mandate, subject: str, change: str) -> None:
    """Every guardian is told of the mandate signed, amended or stopped (mail/mandate_signed)."""
    outbox.queue_family(db, mandate.family_id, subject, "mandate_signed", mandate=mandate, change=change,
                        masked_iban=masked(mandate.iban))


# --- at billing ------------------------------------------------------------------------------------


def announce(invoice: Invoice, mandate: Mandate | None, today: date, notice_days: int) -> None:
    """An invoice of a family with an active mandate is debited ``notice_days`` after it is issued."""
    if mandate is not None and mandate.status == MandateStatus.ACTIVE and invoice.total_cents > 0:
        invoice.debit_on, invoice.debit_state = today + timedelta(days=notice_days), DebitState.PLANNED
