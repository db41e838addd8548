"""Prélèvement automatique: SEPA Core mandates, the direct-debit file (pain.008), rejects.

A family opts in online (the consenting login is kept) or on paper (an agent records it): one mandate
per family that is not revoked, with its unique reference (RUM). An invoice issued while the family's
mandate is active is announced for debit ``DEBIT_NOTICE_DAYS`` later (the pre-notification, in the
invoice mail) and is not payable online. The régie builds the file of a collection date with sepaxml
(pain.008.001.02, validated against its XSD): every announced invoice due by then, once — building it
again makes nothing twice. The invoice is then paid by a ``direct-debit`` payment; a reject (recorded
by hand or read from the bank's pain.002 report) takes that payment back, makes the invoice payable
again online or at the counter, and mails the family why; a second reject in a row suspends the mandate.
"""
from __future__ import annotations

import gettext
import re
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

import pycountry
from lxml import etree
from schwifty import IBAN
from schwifty import exceptions as iban_errors
from sepaxml import SepaDD
from sqlalchemy import func
from sqlmodel import Session, select

from models import (
    DebitBatch,
    DebitLine,
    DebitState,
    Family,
    Invoice,
    Mandate,
    MandateStatus,
    Payment,
    PaymentStatus,
    User,
    utcnow,
)
from services import audit, outbox
from services.counters import next_value
from services.formatting import date_short, euros
from services.security import log_event

SCHEMA = "pain.008.001.02"  # the version French banks and the DGFiP take
REJECT_PAY_DAYS = 15  # after a reject, days left to pay the invoice otherwise (online included)
MAX_HOLDER = 70  # SEPA's debtor name

# The reasons of the SEPA rulebook a bank returns most, in French for the régie and the family.
REJECT_REASONS = {
    "AC01": "IBAN incorrect",
    "AC04": "compte clôturé",
    "AC06": "compte bloqué",
    "AG01": "prélèvement interdit sur ce compte",
    "AM04": "provision insuffisante",
    "BE05": "créancier inconnu de la banque",
    "MD01": "pas de mandat valide",
    "MD06": "remboursement demandé par le titulaire du compte",
    "MD07": "titulaire du compte décédé",
    "MS02": "opposition du titulaire du compte",
    "MS03": "raison non communiquée par la banque",
    "RR04": "raison réglementaire",
    "SL01": "service particulier de la banque",
}

CONSENT = ("En signant ce mandat, vous autorisez {creditor} à envoyer des instructions à votre banque pour "
           "débiter votre compte, et votre banque à débiter votre compte conformément aux instructions de "
           "{creditor}. Vous bénéficiez du droit d'être remboursé par votre banque selon les conditions "
           "décrites dans la convention que vous avez passée avec elle. Une demande de remboursement doit être "
           "présentée dans les 8 semaines suivant la date de débit de votre compte pour un prélèvement autorisé.")


def reason_words(code: str) -> str:
    return REJECT_REASONS.get(code, f"motif bancaire {code}")


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
    if live_mandate(db, family.id) is not None:
        raise DebitError("Votre famille a déjà un mandat de prélèvement : changez son IBAN ou arrêtez-le.")
    mandate = Mandate(family_id=family.id, rum=_new_rum(db, family.id, today), holder=holder, iban=iban.compact,
                      bic=_bic(iban), bank_name=_bank(iban), signed_on=today, signed_by_id=user.id)
    db.add(mandate)
    db.flush()
    log_event("mandate.signed", user=user.id, family=family.id, mandate=mandate.id)
    _mail(db, family.id, "Votre mandat de prélèvement SEPA", "mandate_signed", mandate=mandate, change="signed")
    db.commit()
    return mandate


def record_paper(db: Session, agent_id: int, family: Family, holder: str, iban_text: str, signed_on: date | None,
                 today: date) -> Mandate:
    """An agent records a mandate the family signed on paper (its date as written on it)."""
    iban, holder = read_iban(iban_text), read_holder(holder)
    if signed_on is None or signed_on > today or signed_on < today - timedelta(days=36 * 30):
        raise DebitError("Indiquez la date de signature écrite sur le mandat (au plus tard aujourd'hui, "
                         "et un mandat inutilisé depuis 36 mois n'est plus valable).")
    if live_mandate(db, family.id) is not None:
        raise DebitError("Cette famille a déjà un mandat de prélèvement : changez son IBAN ou arrêtez-le d'abord.")
    mandate = Mandate(family_id=family.id, rum=_new_rum(db, family.id, today), holder=holder, iban=iban.compact,
                      bic=_bic(iban), bank_name=_bank(iban), signed_on=signed_on, recorded_by_id=agent_id)
    db.add(mandate)
    db.flush()
    audit.record(db, agent_id, "create", "mandate", mandate.id, f"Mandat de prélèvement papier enregistré ({mandate.rum})",
                 after={"rum": mandate.rum, "iban": masked(mandate.iban), "signe_le": signed_on.isoformat()},
                 family_id=family.id)
    _mail(db, family.id, "Votre mandat de prélèvement SEPA", "mandate_signed", mandate=mandate, change="signed")
    db.commit()
    return mandate


def amend(db: Session, mandate: Mandate, holder: str, iban_text: str, by_id: int, by_agent: bool = False) -> Mandate:
    """A new account for the mandate (same RUM): its next debit is a first one; a suspended mandate is active again."""
    iban, holder = read_iban(iban_text), read_holder(holder)
    if mandate.status == MandateStatus.REVOKED:
        raise DebitError("Ce mandat est arrêté : signez-en un nouveau.")
    before = {"iban": masked(mandate.iban), "titulaire": mandate.holder, "etat": mandate.status}
    mandate.previous_iban, mandate.iban, mandate.holder = mandate.iban, iban.compact, holder
    mandate.bic, mandate.bank_name = _bic(iban), _bank(iban)
    mandate.amended_at, mandate.first_debit, mandate.status = utcnow(), True, MandateStatus.ACTIVE
    db.add(mandate)
    if by_agent:
        audit.record(db, by_id, "update", "mandate", mandate.id, f"IBAN du mandat {mandate.rum} changé", before,
                     {"iban": masked(mandate.iban), "titulaire": holder, "etat": mandate.status}, family_id=mandate.family_id)
    else:
        log_event("mandate.amended", user=by_id, family=mandate.family_id, mandate=mandate.id)
    _mail(db, mandate.family_id, "Votre mandat de prélèvement SEPA est modifié", "mandate_signed", mandate=mandate,
          change="amended")
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
    if by_agent:
        audit.record(db, by_id, "update", "mandate", mandate.id, f"Mandat de prélèvement {mandate.rum} arrêté",
                     {"etat": "active"}, {"etat": "revoked"}, family_id=mandate.family_id)
    else:
        log_event("mandate.revoked", user=by_id, family=mandate.family_id, mandate=mandate.id)
    _mail(db, mandate.family_id, "Votre prélèvement automatique est arrêté", "mandate_signed", mandate=mandate,
          change="revoked")
    db.commit()
    return mandate


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


def _mail(db: Session, family_id: int, subject: str, template: str, **context) -> None:
    outbox.queue_family(db, family_id, subject, template, masked_iban=masked(context["mandate"].iban), **context)


# --- at billing ------------------------------------------------------------------------------------


def announce(invoice: Invoice, mandate: Mandate | None, today: date, notice_days: int) -> None:
    """An invoice of a family with an active mandate is debited ``notice_days`` after it is issued."""
    if mandate is not None and mandate.status == MandateStatus.ACTIVE and invoice.total_cents > 0:
        invoice.debit_on, invoice.debit_state = today + timedelta(days=notice_days), DebitState.PLANNED


# --- the file --------------------------------------------------------------------------------------


def planned(db: Session) -> list[tuple[date, int, int]]:
    """(debit date, invoices, cents) of the debits announced and not yet in a file."""
    rows = db.exec(select(Invoice.debit_on, func.count(Invoice.id), func.sum(Invoice.total_cents - Invoice.paid_cents))
                   .where(Invoice.debit_state == DebitState.PLANNED, Invoice.cancelled == False)  # noqa: E712
                   .group_by(Invoice.debit_on).order_by(Invoice.debit_on)).all()
    return [(day, count, cents or 0) for day, count, cents in rows]


def build_file(db: Session, cred: Creditor | None, agent_id: int, collection_on: date, today: date) -> DebitBatch:
    """The direct-debit file of ``collection_on``: every announced invoice to debit by then, each once.

    Built again for the same date with nothing new, it is the same file (stored); invoices announced
    since then make a second file with only them. The caller's transaction must be a writing one
    (``writing_session``): the invoices are locked while they move to the file.
    """
    if cred is None:
        raise DebitError("Le prélèvement n'est pas configuré : renseignez l'identifiant créancier SEPA (ICS), "
                         "l'IBAN et le BIC de la régie dans les réglages.")
    if collection_on <= today:
        raise DebitError(f"La date de prélèvement doit être après aujourd'hui (au plus tôt le "
                         f"{date_short(today + timedelta(days=1))}) : la banque doit recevoir le fichier avant.")
    if collection_on > today + timedelta(days=365):
        raise DebitError("La date de prélèvement doit être dans l'année qui vient.")
    query = (select(Invoice).where(Invoice.debit_state == DebitState.PLANNED, Invoice.debit_on <= collection_on,
                                   Invoice.cancelled == False).order_by(Invoice.number))  # noqa: E712
    if db.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    invoices = [i for i in db.exec(query).all() if i.left_cents > 0]
    if not invoices:
        stored = db.exec(select(DebitBatch).where(DebitBatch.collection_on == collection_on)
                         .order_by(DebitBatch.id.desc())).first()
        if stored is not None:
            return stored
        raise DebitError(f"Aucune facture n'est à prélever au {date_short(collection_on)}.")
    mandates = active_mandates(db, {i.family_id for i in invoices})
    sepa = SepaDD({"name": cred.name, "IBAN": cred.iban, "BIC": cred.bic, "batch": True, "creditor_id": cred.ics,
                   "currency": "EUR"}, schema=SCHEMA)
    lines = []
    for invoice in invoices:
        mandate = mandates.get(invoice.family_id)
        if mandate is None:  # suspended since it was announced: to pay otherwise
            invoice.debit_state, invoice.debit_on = "", None
            db.add(invoice)
            continue
        sequence = "FRST" if mandate.first_debit else "RCUR"
        payment = {"name": mandate.holder, "IBAN": mandate.iban, "amount": invoice.left_cents, "type": sequence,
                   "collection_date": collection_on, "mandate_id": mandate.rum, "mandate_date": mandate.signed_on,
                   "description": f"{cred.name} facture {invoice.number}", "endtoend_id": invoice.number}
        if mandate.bic:
            payment["BIC"] = mandate.bic
        sepa.add_payment(payment)
        lines.append((invoice, mandate, sequence))
    if not lines:
        db.commit()
        raise DebitError(f"Aucune facture n'est à prélever au {date_short(collection_on)}.")
    content = sepa.export(validate=True, pretty_print=True)
    total = sum(invoice.left_cents for invoice, _, _ in lines)
    check_totals(content, len(lines), total)
    batch = DebitBatch(collection_on=collection_on, message_id=sepa.msg_id[:35], count=len(lines), total_cents=total,
                       content=content, created_by_id=agent_id)
    db.add(batch)
    db.flush()
    for invoice, mandate, sequence in lines:
        amount = invoice.left_cents
        paid = Payment(invoice_id=invoice.id, family_id=invoice.family_id, amount_cents=amount, method="direct-debit",
                       status=PaymentStatus.PAID, reference=mandate.rum, recorded_by_id=agent_id, completed_at=utcnow())
        db.add(paid)
        db.flush()
        db.add(DebitLine(batch_id=batch.id, invoice_id=invoice.id, mandate_id=mandate.id, payment_id=paid.id,
                         end_to_end_id=invoice.number, sequence=sequence, amount_cents=amount))
        invoice.paid_cents += amount
        invoice.debit_state = DebitState.SENT
        db.add(invoice)
        mandate.first_debit = False
        db.add(mandate)
    audit.record(db, agent_id, "create", "debit_file", batch.id,
                 f"Fichier de prélèvement du {date_short(collection_on)} : {len(lines)} facture(s), {euros(total)}")
    db.commit()
    return batch


def read_file(content: bytes) -> etree._Element:
    """A bank file parsed safely: no entities expanded, nothing fetched, no huge tree."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, remove_comments=True)
    try:
        return etree.fromstring(content, parser)
    except etree.XMLSyntaxError:
        raise DebitError("Ce fichier n'est pas un fichier XML lisible.") from None


def check_totals(content: bytes, count: int, total_cents: int) -> None:
    """The file says the count and sum of its transactions, in its header and in each batch, as built."""
    root = read_file(content)

    def texts(name):
        return [el.text for el in root.iter("{*}" + name)]

    amounts = [round(float(t) * 100) for t in texts("InstdAmt")]
    header_count, header_sum = texts("NbOfTxs")[0], texts("CtrlSum")[0]
    if (len(amounts) != count or sum(amounts) != total_cents or int(header_count) != count
            or round(float(header_sum) * 100) != total_cents):
        raise DebitError("Le fichier de prélèvement produit ne correspond pas aux factures : rien n'a été enregistré.")


# --- rejects ----------------------------------------------------------------------------------------


def reject(db: Session, line: DebitLine, code: str, by_id: int, today: date) -> DebitLine:
    """The bank returned this debit: the payment is taken back, the invoice is payable again (online or at
    the counter, for REJECT_PAY_DAYS at least), the family is mailed why; a second reject in a row
    suspends the mandate. The caller commits."""
    code = compact(code)[:4]
    if not re.fullmatch(r"[A-Z0-9]{4}", code):
        raise DebitError("Choisissez le motif du rejet indiqué par la banque.")
    if line.rejected_at is not None:
        raise DebitError(f"Le prélèvement de la facture {line.end_to_end_id} est déjà enregistré comme rejeté.")
    invoice, payment, mandate = db.get(Invoice, line.invoice_id), db.get(Payment, line.payment_id), db.get(Mandate, line.mandate_id)
    line.rejected_at, line.reject_code = utcnow(), code
    payment.status = PaymentStatus.REFUSED
    payment.anomaly = f"Prélèvement rejeté : {code} ({reason_words(code)})"
    invoice.paid_cents = max(invoice.paid_cents - line.amount_cents, 0)
    invoice.debit_state = DebitState.REJECTED
    invoice.due_on = max(invoice.due_on, today + timedelta(days=REJECT_PAY_DAYS))
    previous = db.exec(select(DebitLine).where(DebitLine.mandate_id == mandate.id, DebitLine.id < line.id)
                       .order_by(DebitLine.id.desc())).first()
    suspended = previous is not None and previous.rejected_at is not None and mandate.status == MandateStatus.ACTIVE
    if suspended:
        mandate.status = MandateStatus.SUSPENDED
    if line.sequence == "FRST":
        mandate.first_debit = True  # a first debit returned: the next one is a first one again
    db.add_all([line, payment, invoice, mandate])
    audit.record(db, by_id, "update", "debit", line.id,
                 f"Prélèvement rejeté : facture {invoice.number}, {code} ({reason_words(code)})"
                 + (" ; mandat suspendu" if suspended else ""), family_id=invoice.family_id)
    outbox.queue_family(db, invoice.family_id, f"Prélèvement rejeté : facture {invoice.number}", "debit_rejected",
                        invoice=invoice, reason=reason_words(code), code=code, suspended=suspended,
                        amount=line.amount_cents)
    return line


@dataclass
class ReportResult:
    rejected: list[str]  # invoice numbers
    already: list[str]
    unknown: list[str]  # end-to-end ids the portal never sent


def import_report(db: Session, content: bytes, by_id: int, today: date) -> ReportResult:
    """The bank's payment status report (pain.002): each transaction it says rejected (RJCT), with its
    reason code, is recorded as a reject; committed. Transactions it accepted are left as they are."""
    root = read_file(content)
    if not any(el.tag.endswith("CstmrPmtStsRpt") for el in root.iter()):
        raise DebitError("Ce fichier n'est pas un relevé de rejets de prélèvement (pain.002) de la banque.")
    result = ReportResult([], [], [])
    for tx in root.iter("{*}TxInfAndSts"):
        status = tx.findtext("{*}TxSts")
        end_to_end = (tx.findtext("{*}OrgnlEndToEndId") or "").strip()
        if status != "RJCT" or not end_to_end:
            continue
        code = (tx.findtext("{*}StsRsnInf/{*}Rsn/{*}Cd") or "MS03").strip()
        line = db.exec(select(DebitLine).where(DebitLine.end_to_end_id == end_to_end[:35])).first()
        if line is None:
            result.unknown.append(end_to_end[:35])
        elif line.rejected_at is not None:
            result.already.append(end_to_end)
        else:
            reject(db, line, code if re.fullmatch(r"[A-Z0-9]{4}", code) else "MS03", by_id, today)
            result.rejected.append(end_to_end)
    db.commit()
    return result
