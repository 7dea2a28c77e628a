"""The insurer portal's member files and invoices (/amc/beneficiaires, /amc/factures), page by
page without a browser, and their services: each beneficiary shown is one access event, an
unknown member and another insurer's look the same (and are recorded), the member number is
never in an address, and the invoice list holds the insurer's own invoices only."""

from __future__ import annotations

import contextlib
import io
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from html import unescape

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from rempart.claims import insurer_invoices
from rempart.claims.engine import Line
from rempart.claims.models import Invoice
from rempart.errors import Forbidden, InvalidInput, NotFound, RateLimited
from rempart.guard.quotas import Limit, MemoryQuotaStore, Quotas
from rempart.identity.auth import Client, Principal
from rempart.ledger.events import AccessEvent, Tag
from rempart.ledger.models import LedgerEntry
from rempart.platform import Platform
from rempart.portal import amc_members
from rempart.portal.rendering import TAG_NAMES
from rempart.registry import member_files
from rempart.registry.member_import import ImportOptions, import_members
from tests.support import (
    AMC,
    BILLERS,
    ON_BASE,
    OTHER_AMC,
    OTHER_CLAIMANTS,
    Portals,
    account_actor,
    add_payments_world,
    bill,
    csrf_of,
    member_file,
    pay_line,
    person,
    portals,
    set_rows,
)

INSURER = "gestion@mutuelle.example"
OTHER_INSURER = "gestion@autre.example"
PRO = "comptoir@pharmacie.example"
# A family: one membership, three beneficiaries (the child has no NIR of its own).
HOLDER = person(50).but(member_number="FAM0000050")
SPOUSE = person(51).but(member_number=HOLDER.member_number, relationship="spouse")
CHILD = person(52).but(
    member_number=HOLDER.member_number, relationship="child", nir="", suspended_domains="MED"
)
FAMILY = [HOLDER, SPOUSE, CHILD]
THEIRS = OTHER_CLAIMANTS[0]  # a member of the other insurer


@pytest.fixture
def world(platform: Platform) -> Iterator[Portals]:
    add_payments_world(platform)
    family = io.BytesIO(member_file(FAMILY))
    assert import_members(platform, AMC, family, ImportOptions(delta=True)).committed
    accounts = {
        INSURER: ("amc", {"amc_number": AMC}),
        OTHER_INSURER: ("amc", {"amc_number": OTHER_AMC}),
        PRO: ("professional", {"am_number": BILLERS["pharmacist"]}),
    }
    with portals(platform, accounts) as opened:
        yield opened


def drugs() -> list[Line]:
    return [pay_line("PHAR", 1000, 1000, 30)]


def rows(html: str) -> list[str]:
    """The invoice numbers of a page's tables, in order."""
    return re.findall(r'<th scope="row">([^<]+)</th>', main(html))


def look_up(client: TestClient, number: str, with_token: bool = True) -> object:
    data = {"member_number": number}
    if with_token:
        data["csrf"] = csrf_of(client.get("/amc/beneficiaires").text)
    return client.post("/amc/beneficiaires", data=data, follow_redirects=False)


def file_reads(platform: Platform) -> list[AccessEvent]:
    with platform.sessions() as session:
        found = session.scalars(
            select(LedgerEntry.event)
            .where(LedgerEntry.tag == Tag.MEMBER_FILE_READ)
            .order_by(LedgerEntry.seq)
        ).all()
    return [AccessEvent.decode(event) for event in found]


def main(html: str) -> str:
    """The page's own content: what the insurer sees of the answer."""
    return html.split('<main id="contenu"', 1)[1].split("</main>", 1)[0]


# The member file ---------------------------------------------------------------------------------


def test_a_member_file_shows_each_beneficiary_with_rights_and_records_one_event_each(
    world: Portals,
) -> None:
    client = world.signed_in(INSURER)
    answer = look_up(client, HOLDER.member_number)
    assert answer.status_code == 200  # type: ignore[attr-defined]
    page = main(answer.text)  # type: ignore[attr-defined]
    for who in FAMILY:
        assert f"{who.first_name} {who.last_name}" in page
        assert datetime.fromisoformat(who.birth_date).strftime("%d/%m/%Y") in page
    assert "Adhérent·e" in page
    assert "Conjoint·e" in page
    assert "Enfant" in page
    assert "BASE — Base" in page
    assert "en cours" in page
    assert HOLDER.nir not in page  # never the NIR
    child = page.split(CHILD.first_name, 1)[1]
    assert ">PHAR</abbr>" in child.split("</table>")[0]  # MED suspended: PHAR alone covered
    assert "<td>MED</td>" in child.split("</table>")[0]

    reads = file_reads(world.platform)
    assert len(reads) == len(FAMILY)  # one event per beneficiary shown
    actor = account_actor(world.platform, INSURER)
    assert {e.actor for e in reads} == {actor}
    assert {(e.tenant, e.organisation, e.outcome) for e in reads} == {(AMC, AMC, "read")}
    assert {e.fields for e in reads} == {member_files.FIELDS}
    assert len({e.beneficiary for e in reads}) == 3
    assert None not in {e.beneficiary for e in reads}
    assert len({e.purpose for e in reads}) == 1  # one view: one view id
    assert not any(HOLDER.member_number.encode() in e.encode() for e in reads)

    look_up(client, HOLDER.member_number)  # each view is an access: three more
    assert len(file_reads(world.platform)) == 2 * len(FAMILY)


def test_the_history_holds_the_invoices_billed_and_who_read_the_data(world: Portals) -> None:
    billed = bill(world.platform, "pharmacist", ON_BASE, drugs(), "F-PH-1")
    set_rows(world.platform, Invoice, Invoice.id == billed.id, paid_at=datetime.now(UTC))
    bill(world.platform, "pharmacist", ON_BASE, [pay_line("PHAR", 2000, 2000, 30)], "F-PH-2")
    client = world.signed_in(INSURER)
    first = main(look_up(client, ON_BASE.member_number).text)  # type: ignore[attr-defined]
    assert "F-PH-1" in first
    assert "F-PH-2" in first
    assert BILLERS["pharmacist"] in first
    assert "10,00\u202f€" in first
    assert "7,00\u202f€" in first
    assert "payée le" in first
    assert "à payer" in first
    assert first.index("F-PH-2") < first.index("F-PH-1")  # the latest first
    assert "<td>Facture</td>" in first
    assert "test:pharmacist" in first

    second = main(look_up(client, ON_BASE.member_number).text)  # type: ignore[attr-defined]
    label = TAG_NAMES.get(Tag.MEMBER_FILE_READ, Tag.MEMBER_FILE_READ.value)
    assert label in unescape(second)  # the first view, before this one
    assert account_actor(world.platform, INSURER) in second

    # The events name the same person as the invoices: the pseudonym is the ledger's.
    with world.platform.sessions() as session:
        pseudonym = session.scalar(select(Invoice.pseudonym).where(Invoice.id == billed.id))
    assert {e.beneficiary for e in file_reads(world.platform)} == {pseudonym}


def test_an_unknown_member_and_another_insurers_look_the_same_and_are_both_recorded(
    world: Portals,
) -> None:
    client = world.signed_in(INSURER)
    unknown = look_up(client, "ZZ00000000")
    theirs = look_up(client, THEIRS.member_number)
    assert unknown.status_code == theirs.status_code == 404  # type: ignore[attr-defined]
    assert "Aucun adhérent de votre organisme n'a ce numéro" in unescape(unknown.text)  # type: ignore[attr-defined]
    same = [
        main(answer.text).replace(number, "N")  # type: ignore[attr-defined]
        for answer, number in ((unknown, "ZZ00000000"), (theirs, THEIRS.member_number))
    ]
    assert same[0] == same[1]
    assert THEIRS.last_name not in same[1]

    reads = file_reads(world.platform)
    assert [(e.outcome, e.beneficiary, e.tenant, e.fields) for e in reads] == [
        ("unknown", None, AMC, ()),
        ("unknown", None, AMC, ()),
    ]
    assert {e.actor for e in reads} == {account_actor(world.platform, INSURER)}

    # Their own insurer opens it, and is the only one to see its read.
    own = look_up(world.signed_in(OTHER_INSURER), THEIRS.member_number)
    assert own.status_code == 200  # type: ignore[attr-defined]
    assert THEIRS.last_name in own.text  # type: ignore[attr-defined]
    assert [e.tenant for e in file_reads(world.platform)][-1] == OTHER_AMC


def test_the_member_number_is_never_in_an_address(world: Portals) -> None:
    bill(world.platform, "pharmacist", ON_BASE, drugs(), "F-PH-1")
    client = world.signed_in(INSURER)
    answers = [
        client.get("/amc/beneficiaires"),
        look_up(client, ON_BASE.member_number),
        look_up(client, HOLDER.member_number),
        look_up(client, "ZZ00000000"),
        client.get("/amc/factures"),
    ]
    seen: list[str] = []
    for answer in answers:
        assert answer.status_code in (200, 404)  # type: ignore[attr-defined]  # never a redirect
        seen.append(str(answer.url))  # type: ignore[attr-defined]
        seen.append(answer.headers.get("location", ""))  # type: ignore[attr-defined]
        seen += re.findall(r'(?:href|action|hx-post|src)="([^"]+)"', answer.text)  # type: ignore[attr-defined]
    personal = [ON_BASE.member_number, HOLDER.member_number, "ZZ00000000", ON_BASE.last_name]
    assert [url for url in seen for value in personal if value in url] == []
    assert "/amc/beneficiaires" in seen  # the form posts to a fixed address


def test_a_lookup_without_the_form_token_is_refused_and_reads_nothing(world: Portals) -> None:
    client = world.signed_in(INSURER)
    refused = look_up(client, HOLDER.member_number, with_token=False)
    assert refused.status_code == 403  # type: ignore[attr-defined]
    assert HOLDER.last_name not in refused.text  # type: ignore[attr-defined]
    other = world.signed_in(OTHER_INSURER)  # another session's token is not this one's
    token = csrf_of(other.get("/amc/beneficiaires").text)
    stolen = client.post(
        "/amc/beneficiaires", data={"member_number": HOLDER.member_number, "csrf": token}
    )
    assert stolen.status_code == 403
    assert file_reads(world.platform) == []


def test_a_malformed_member_number_is_an_error_on_its_field_and_reads_nothing(
    world: Portals,
) -> None:
    client = world.signed_in(INSURER)
    answer = look_up(client, "12-34 56")
    assert answer.status_code == 422  # type: ignore[attr-defined]
    assert 'aria-invalid="true"' in answer.text  # type: ignore[attr-defined]
    assert "Le numéro d'adhérent compte 1 à 20 lettres ou chiffres." in unescape(answer.text)  # type: ignore[attr-defined]
    assert file_reads(world.platform) == []


def test_other_roles_cannot_open_a_member_file(world: Portals) -> None:
    pro = world.signed_in(PRO)
    token = csrf_of(pro.get("/pro/").text)
    answer = pro.post(
        "/amc/beneficiaires", data={"member_number": HOLDER.member_number, "csrf": token}
    )
    assert answer.status_code == 403
    assert pro.get("/amc/factures").status_code == 403
    assert file_reads(world.platform) == []


# The invoices ------------------------------------------------------------------------------------


def test_the_invoice_list_holds_only_the_insurers_invoices_newest_first_without_patients(
    world: Portals,
) -> None:
    bill(world.platform, "pharmacist", ON_BASE, drugs(), "F-OURS-1")
    bill(world.platform, "gp", ON_BASE, [pay_line("MED", 3000, 3000, 70)], "F-OURS-2")
    bill(world.platform, "pharmacist", THEIRS, drugs(), "F-THEIRS", amc=OTHER_AMC)
    client = world.signed_in(INSURER)
    answer = client.get("/amc/factures")
    assert answer.status_code == 200
    page = main(answer.text)
    assert rows(answer.text) == ["F-OURS-2", "F-OURS-1"]  # the latest first, ours only
    assert BILLERS["gp"] in page
    assert BILLERS["pharmacist"] in page
    for value in (ON_BASE.member_number, ON_BASE.last_name, ON_BASE.first_name, ON_BASE.nir):
        assert value not in page
    assert file_reads(world.platform) == []  # no patient named, nothing to record

    theirs = main(world.signed_in(OTHER_INSURER).get("/amc/factures").text)
    assert "F-THEIRS" in theirs
    assert "F-OURS-1" not in theirs


def test_the_invoice_list_goes_page_by_page(
    world: Portals, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in range(3):
        bill(
            world.platform, "pharmacist", ON_BASE, [pay_line("PHAR", 1000 + n, 1000, 30)], f"F-{n}"
        )
    monkeypatch.setattr(amc_members, "INVOICES_PER_PAGE", 2)
    client = world.signed_in(INSURER)
    first = client.get("/amc/factures").text
    older = re.search(r'href="/amc/factures\?avant=([A-Za-z0-9_-]+)"', first)
    assert older
    assert rows(first) == ["F-2", "F-1"]
    second = client.get(f"/amc/factures?avant={older.group(1)}").text
    assert rows(second) == ["F-0"]
    assert "(suite)" in second
    assert "avant=" not in main(second)


# The services ------------------------------------------------------------------------------------


def _insurer(platform: Platform, amc: str = AMC) -> Principal:
    from rempart.registry.lookups import active_tenant

    with platform.sessions() as session:
        tenant = active_tenant(session, amc)
        assert tenant is not None
        return Principal("user:test", "amc", uuid.uuid4(), tenant.id, None, amc)


class Kept:
    """A recorder that keeps what it is given (the services' contract: record, then answer)."""

    def __init__(self) -> None:
        self.events: list[AccessEvent] = []

    def record(self, event: AccessEvent) -> int:
        self.events.append(event)
        return len(self.events)


def test_the_member_file_service_is_the_insurers_own(platform: Platform) -> None:
    add_payments_world(platform)
    kept = Kept()
    ours = member_files.open_member_file(
        platform,
        kept,
        file_quotas(),
        _insurer(platform),
        ON_BASE.member_number,
        Client("127.0.0.9"),
    )
    assert [b.last_name for b in ours.beneficiaries] == [ON_BASE.last_name]
    assert [e.ip for e in kept.events] == ["127.0.0.9"]
    with pytest.raises(NotFound):
        member_files.open_member_file(
            platform,
            kept,
            file_quotas(),
            _insurer(platform, OTHER_AMC),
            ON_BASE.member_number,
            Client(),
        )
    assert kept.events[-1].outcome == "unknown"
    assert kept.events[-1].tenant == OTHER_AMC
    with pytest.raises(InvalidInput):
        member_files.open_member_file(
            platform, kept, file_quotas(), _insurer(platform), "", Client()
        )
    professional = Principal("user:x", "professional", uuid.uuid4(), None, uuid.uuid4(), "1")
    with pytest.raises(Forbidden):
        member_files.open_member_file(
            platform, kept, file_quotas(), professional, "M0000001", Client()
        )
    # An account bound to another tenant than its AMC number says is refused as not found.
    forged = Principal("user:x", "amc", uuid.uuid4(), uuid.uuid4(), None, AMC)
    with pytest.raises(NotFound):
        member_files.open_member_file(
            platform, kept, file_quotas(), forged, ON_BASE.member_number, Client()
        )
    assert len(kept.events) == 3


def file_quotas(per_hour: int = 60) -> Quotas:
    return Quotas(MemoryQuotaStore(), [Limit("account", 3600, per_hour)])


def test_a_phished_insurer_account_cannot_page_through_the_membership(platform: Platform) -> None:
    add_payments_world(platform)
    kept, quotas, insurer = Kept(), file_quotas(per_hour=3), _insurer(platform)
    for number in (ON_BASE.member_number, "ZZ000001", "ZZ000002"):  # misses count too
        with contextlib.suppress(NotFound):
            member_files.open_member_file(platform, kept, quotas, insurer, number, Client())
    again = member_files.open_member_file(
        platform, kept, quotas, insurer, ON_BASE.member_number, Client()
    )
    assert again.beneficiaries  # one already opened this hour is not counted twice
    before = len(kept.events)
    with pytest.raises(RateLimited):
        member_files.open_member_file(platform, kept, quotas, insurer, "ZZ000003", Client())
    assert [e.outcome for e in kept.events[before:]] == ["rate-limited"]
    assert kept.events[-1].beneficiary is None


def test_the_invoice_service_checks_its_caller_and_its_cursor(platform: Platform) -> None:
    add_payments_world(platform)
    bill(platform, "pharmacist", ON_BASE, drugs(), "F-1")
    page = insurer_invoices.list_invoices(platform, _insurer(platform), None)
    assert [i.invoice_number for i in page.invoices] == ["F-1"]
    assert page.next is None
    invoice = page.invoices[0]
    assert (invoice.billed, invoice.total_amc, invoice.payment) == (1000, 700, "due")
    assert invoice.domains == ("PHAR",)
    assert invoice.member
    assert (
        insurer_invoices.list_invoices(platform, _insurer(platform, OTHER_AMC), None).invoices == ()
    )
    professional = Principal("user:x", "professional", uuid.uuid4(), None, uuid.uuid4(), "1")
    with pytest.raises(Forbidden):
        insurer_invoices.list_invoices(platform, professional, None)
    for cursor in ("nonsense", "bm9u"):
        with pytest.raises(InvalidInput):
            insurer_invoices.list_invoices(platform, _insurer(platform), cursor)
    with pytest.raises(InvalidInput):
        insurer_invoices.list_invoices(platform, _insurer(platform), None, limit=0)


def test_an_invoice_on_a_card_the_insurer_does_not_know_is_listed_refused(
    platform: Platform,
) -> None:
    add_payments_world(platform)
    bill(platform, "pharmacist", person(99), drugs(), "F-UNKNOWN")
    (invoice,) = insurer_invoices.list_invoices(platform, _insurer(platform), None).invoices
    assert (invoice.invoice_number, invoice.status, invoice.member) == (
        "F-UNKNOWN",
        "rejected",
        False,
    )
    assert (invoice.total_amc, invoice.payment) == (0, "none")
