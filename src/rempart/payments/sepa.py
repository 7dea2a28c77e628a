"""SEPA files: credit transfers (pain.001.001.09) and core direct debits (pain.008.001.08).

Built with sepaxml, then validated against the ISO 20022 schemas that sepaxml ships (parsed once
per process with xmlschema), then checked once more against what the run recorded: the number of
transactions and their sum, to the cent. A file that fails any of these is never written.

The files are deterministic: message ids, payment-information ids and the creation time come
from the run, not from a clock or a random source, so a run resumed after a crash writes the
same bytes again (``runs`` compares them with the digests it recorded).

The schemas are ISO's: they check structure, lengths and code lists, not the EPC's restricted
character set, which ``rules.clean_text`` and ``rules.clean_reference`` guarantee.
"""

from __future__ import annotations

import multiprocessing
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from rempart.errors import Error
from rempart.payments.rules import REMITTANCE_LENGTH, clean_reference, clean_text

PAIN_001 = "pain.001.001.09"
PAIN_008 = "pain.008.001.08"
CURRENCY = "EUR"
# Since the SDD rulebook of November 2016 a first collection need not be sent as FRST.
SEQUENCE = "RCUR"


class SepaInvalid(Error):
    """A SEPA file failed its schema or its totals: it is not written."""

    title = "Invalid SEPA file"
    type_slug = "sepa-invalid"


@dataclass(frozen=True)
class Header:
    """What identifies a file: its message id, its one payment-information block, its time."""

    message_id: str
    payment_info_id: str
    created_at: datetime


@dataclass(frozen=True)
class Account:
    """A party and its account: the operator, a professional, an insurer."""

    name: str
    iban: str
    bic: str


@dataclass(frozen=True)
class Transfer:
    end_to_end_id: str
    creditor: Account
    amount: int  # cents, > 0
    remittance_info: str


@dataclass(frozen=True)
class Debit:
    end_to_end_id: str
    debtor: Account
    amount: int  # cents, > 0
    mandate_id: str
    mandate_signed_on: date
    remittance_info: str


def transfers_file(
    header: Header,
    payer: Account,
    execution_date: date,
    transfers: Sequence[Transfer],
    validate: bool = True,
) -> bytes:
    """The pain.001 of a run: one batch, one transaction per professional; validated (unless
    the caller validates it itself, with ``check`` or ``check_aside``)."""
    from sepaxml import SepaTransfer  # imported by the commands that write files only

    class Document(SepaTransfer):  # type: ignore[misc]
        def _create_header(self) -> None:
            super()._create_header()
            _set_header(self._xml, self.root_el, header)

        def _finalize_batch(self) -> None:
            super()._finalize_batch()
            _set_payment_info_id(self._xml, self.root_el, header)

    config = _config(payer)
    document = Document(config, schema=PAIN_001, clean=False)
    for t in transfers:
        document.add_payment(
            {
                "name": clean_text(t.creditor.name),
                "IBAN": t.creditor.iban,
                "BIC": t.creditor.bic,
                "amount": t.amount,
                "execution_date": execution_date,
                "description": clean_text(t.remittance_info, REMITTANCE_LENGTH),
                "endtoend_id": clean_reference(t.end_to_end_id),
            }
        )
    data: bytes = document.export(validate=False)
    if validate:
        check(data, PAIN_001, len(transfers), sum(t.amount for t in transfers))
    return data


def debits_file(
    header: Header,
    creditor: Account,
    creditor_id: str,
    collection_date: date,
    debits: Sequence[Debit],
) -> bytes:
    """The pain.008 of a run: one core direct debit per insurer with a mandate; validated."""
    from sepaxml import SepaDD

    class Document(SepaDD):  # type: ignore[misc]
        def _create_header(self) -> None:
            super()._create_header()
            _set_header(self._xml, self.root_el, header)

        def _finalize_batch(self) -> None:
            super()._finalize_batch()
            _set_payment_info_id(self._xml, self.root_el, header)

    config = _config(creditor) | {"creditor_id": creditor_id}
    document = Document(config, schema=PAIN_008, clean=False)
    for d in debits:
        document.add_payment(
            {
                "name": clean_text(d.debtor.name),
                "IBAN": d.debtor.iban,
                "BIC": d.debtor.bic,
                "amount": d.amount,
                "type": SEQUENCE,
                "collection_date": collection_date,
                "mandate_id": clean_reference(d.mandate_id),
                "mandate_date": d.mandate_signed_on,
                "description": clean_text(d.remittance_info, REMITTANCE_LENGTH),
                "endtoend_id": clean_reference(d.end_to_end_id),
            }
        )
    data: bytes = document.export(validate=False)
    check(data, PAIN_008, len(debits), sum(d.amount for d in debits))
    return data


def _config(party: Account) -> dict[str, Any]:
    return {
        "name": clean_text(party.name),
        "IBAN": party.iban,
        "BIC": party.bic,
        "batch": True,
        "currency": CURRENCY,
    }


def _set_header(xml: ET.Element, root: str, header: Header) -> None:
    group = xml.find(f"{root}/GrpHdr")
    assert group is not None
    _text(group, "MsgId", clean_reference(header.message_id))
    _text(group, "CreDtTm", header.created_at.isoformat(timespec="seconds"))


def _set_payment_info_id(xml: ET.Element, root: str, header: Header) -> None:
    for number, info in enumerate(xml.findall(f"{root}/PmtInf"), start=1):
        suffix = "" if number == 1 else f"-{number}"
        _text(info, "PmtInfId", clean_reference(header.payment_info_id + suffix))


def _text(parent: ET.Element, tag: str, value: str) -> None:
    node = parent.find(tag)
    assert node is not None
    node.text = value


# --- validation ---------------------------------------------------------------------------------


@cache
def schema(name: str) -> Any:
    """The ISO 20022 schema sepaxml ships for ``name``, parsed once (a third of a second)."""
    import sepaxml
    import xmlschema

    return xmlschema.XMLSchema(Path(sepaxml.__file__).with_name("schemas") / f"{name}.xsd")


@dataclass(frozen=True)
class Totals:
    transactions: int
    amount: int  # cents


def totals(data: bytes | ET.Element, name: str) -> Totals:
    """The number of transactions of a SEPA file and their sum, read from the XML itself."""
    ns = {"p": f"urn:iso:std:iso:20022:tech:xsd:{name}"}
    root = ET.fromstring(data) if isinstance(data, bytes) else data  # noqa: S314  (our output)
    tag = "p:CdtTrfTxInf/p:Amt/p:InstdAmt" if name == PAIN_001 else "p:DrctDbtTxInf/p:InstdAmt"
    amounts = root.findall(f".//p:PmtInf/{tag}", ns)
    return Totals(len(amounts), sum(int(Decimal(a.text or "0") * 100) for a in amounts))


def check(data: bytes, name: str, transactions: int, amount: int) -> None:
    """Validate ``data`` against its schema, and its transactions against what was meant."""
    root = ET.fromstring(data)  # noqa: S314  (our own output, never input)
    # The path of each error, not xmlschema's message: that one quotes the offending value.
    errors = [str(e.path) for e in schema(name).iter_errors(root)]
    if errors:
        raise SepaInvalid(f"the {name} file does not validate: {', '.join(errors[:5])}")
    found = totals(root, name)
    if found != Totals(transactions, amount):
        raise SepaInvalid(
            f"the {name} file holds {found.transactions} transactions for {found.amount} cents; "
            f"expected {transactions} for {amount}"
        )


ASIDE_FROM = 2_000  # transactions: below this, validating in another process costs more


class Verdict:
    """``check`` run in another process while the caller goes on (a run writes its remittances
    meanwhile: xmlschema validates about 2,500 transactions a second, on one core). Small files
    are checked at once."""

    def __init__(self, data: bytes | None, name: str, transactions: int, amount: int) -> None:
        self._pool: ProcessPoolExecutor | None = None
        if data is None:  # no file: nothing to check
            return
        if transactions < ASIDE_FROM:
            check(data, name, transactions, amount)
            return
        self._args = (data, name, transactions, amount)
        # spawn, not fork: the child inherits no database connection to close behind our back.
        self._pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
        self._future = self._pool.submit(check, *self._args)

    def wait(self) -> None:
        """Return once the file is valid; raise ``SepaInvalid`` if it is not."""
        if self._pool is None:
            return
        try:
            self._future.result()
        except BrokenProcessPool:
            # The child could not start (a main module without its ``__main__`` guard): here.
            check(*self._args)
        finally:
            self._pool.shutdown()
            self._pool = None

    def abandon(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


def no_file() -> Verdict:
    return Verdict(None, PAIN_001, 0, 0)
