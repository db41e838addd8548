"""The direct-debit file of a collection date (SEPA pain.008) and the bank's rejects.

The régie builds the file with sepaxml (pain.008.001.02, validated against its XSD): every invoice
announced for debit by then, once — building it again makes nothing twice. The invoice is then paid by
a ``direct-debit`` payment; a reject (recorded by hand or read from the bank's pain.002 report) takes
that payment back, makes the invoice payable again online or at the counter, and mails the family why;
a second reject in a row suspends the mandate.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

from lxml import etree
from sepaxml import SepaDD
from sqlalchemy import func
from sqlmodel import Session, select

from models import DebitBatch, DebitLine, DebitState, Invoice, Mandate, MandateStatus, Payment, PaymentStatus, utcnow
from services import audit, outbox
from services.direct_debit import Creditor, DebitError, active_mandates, compact
from services.formatting import date_short, euros

SCHEMA = "pain.008.001.02"  # the version French banks and the DGFiP take
REJECT_PAY_DAYS = 15  # after a reject, days left to pay the invoice otherwise (online included)

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


def reason_words(code: str) -> str:
    return REJECT_REASONS.get(code, f"motif bancaire {code}")


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
    # Locked on PostgreSQL (SQLite renders no FOR UPDATE: its BEGIN IMMEDIATE already serializes writers).
    query = (select(Invoice).where(Invoice.debit_state == DebitState.PLANNED, Invoice.debit_on <= collection_on,
                                   Invoice.cancelled == False).order_by(Invoice.number).with_for_update())  # noqa: E712
    invoices = [i for i in db.exec(query).all() if i.left_cents > 0]
    nothing = DebitError(f"Aucune facture n'est à prélever au {date_short(collection_on)}.")
    if not invoices:
        stored = db.exec(select(DebitBatch).where(DebitBatch.collection_on == collection_on)
                         .order_by(DebitBatch.id.desc())).first()
        if stored is not None:
            return stored
        raise nothing
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
        db.commit()  # the invoices of suspended mandates are no longer announced
        raise nothing
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
