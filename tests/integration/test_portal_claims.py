"""The professional portal's prior agreements (/pro/accords) and invoices (/pro/factures), as
a browser without JavaScript uses them: plain forms, redirects after each change, errors per
field, form tokens, one invoice per form however often it is sent, another practice's objects
"not found", and no personal data in any address the pages give."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2 as httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from rempart.claims import invoices
from rempart.claims.models import Invoice, PriorAgreement, RenewalUse
from rempart.errors import InvalidInput
from rempart.identity.auth import Principal
from rempart.ledger.models import LedgerEntry
from rempart.platform import Platform
from rempart.portal import pro_claims
from tests.support import (
    AMC,
    BILLERS,
    ON_CONFORT,
    OPTICIAN2_AM,
    UNDER_AGREEMENT,
    Person,
    Portals,
    add_prior_agreement_world,
    bill,
    csrf_of,
    pay_line,
    portals,
    professional_ids,
    set_rows,
    today,
)

OPTICIAN = "accueil@optique.example"
RIVAL = "accueil@optique-bis.example"
PHARMACIST = "comptoir@pharmacie.example"
REFERENCE = re.compile(r"/pro/accords/(PA[A-Z2-7]{24})\?ok=accord")
INVOICE = re.compile(r"/pro/factures/([0-9a-f-]{36})\?ok=(facture|deja)")


@pytest.fixture
def portal(platform: Platform) -> Iterator[Portals]:
    add_prior_agreement_world(platform)
    accounts = {
        OPTICIAN: ("professional", {"am_number": BILLERS["optician"]}),
        RIVAL: ("professional", {"am_number": OPTICIAN2_AM}),
        PHARMACIST: ("professional", {"am_number": BILLERS["pharmacist"]}),
    }
    with portals(platform, accounts) as opened:
        yield opened


def card(who: Person) -> dict[str, str]:
    return {
        "amc_number": AMC,
        "member_number": who.member_number,
        "birth_date": who.birth_date,
        "birth_rank": who.birth_rank,
    }


def glasses(frame: str = "150,00", lens: str = "120,00") -> dict[str, str]:
    """DOMAIN.md example 4 as typed in the form: a frame and two lenses, AMC 300,00 in all."""
    form: dict[str, str] = {}
    for row, (billed, kind) in enumerate(((frame, "frame"), (lens, "lens"), (lens, "lens"))):
        line = {
            "act_code": "C",
            "domain": "OPTI",
            "care_date": today().isoformat(),
            "quantity": "1",
            "billed": billed,
            "br": "0,05",
            "amo_rate": "60",
            "amo_paid": "0,03",
            "item_type": kind,
            "basket": "",
            "price_limit": "",
        }
        form |= {f"lines-{row}-{name}": value for name, value in line.items()}
    return form


def post(client: TestClient, path: str, data: dict[str, str], page: str) -> httpx.Response:
    """POST a form the way a browser does: with the token (and fields) of the page it came
    from, then what was typed."""
    html = client.get(page).text
    hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html))
    return client.post(path, data=hidden | data, follow_redirects=False)


def ask(client: TestClient, who: Person, **lines: str) -> str:
    """Ask for an agreement on glasses; its reference."""
    answer = post(client, "/pro/accords", card(who) | glasses(**lines), "/pro/accords")
    assert answer.status_code == 303, answer.text
    found = REFERENCE.fullmatch(answer.headers["location"])
    assert found, answer.headers["location"]
    return found.group(1)


def invoice_form(who: Person, number: str = "F-1", reference: str = "") -> dict[str, str]:
    return card(who) | glasses() | {"invoice_number": number, "prior_agreement": reference}


def count(platform: Platform, model: type[Any], *where: Any) -> int:
    with platform.sessions() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def ledger(platform: Platform) -> list[dict[str, Any]]:
    with platform.sessions() as session:
        entries = session.scalars(select(LedgerEntry).order_by(LedgerEntry.seq)).all()
    return [json.loads(entry.event) for entry in entries]


def main(html: str) -> str:
    return html.split("<main", 1)[1].split("</main>", 1)[0]


# The flows ---------------------------------------------------------------------------------------


def test_an_optician_asks_for_an_agreement_bills_with_it_and_cancels_without_javascript(
    portal: Portals,
) -> None:
    optician = portal.signed_in(OPTICIAN)
    who = UNDER_AGREEMENT[0]
    empty = optician.get("/pro/accords")
    assert empty.status_code == 200
    assert "Aucun accord préalable." in empty.text
    reference = ask(optician, who)
    agreement = optician.get(f"/pro/accords/{reference}?ok=accord")
    assert agreement.status_code == 200
    assert "Accord préalable accordé" in agreement.text
    for amount in ("100,00", "119,97", "80,03", "300,00"):  # DOMAIN.md, worked example 4
        assert amount in agreement.text
    assert "accordé" in agreement.text
    assert "Monture" in agreement.text
    assert f'action="/pro/accords/{reference}/annuler"' in agreement.text
    assert reference in optician.get("/pro/accords").text  # listed
    assert count(portal.platform, RenewalUse) == 1  # the equipment is reserved

    billed = post(optician, "/pro/factures", invoice_form(who, "F-1", reference), "/pro/factures")
    assert billed.status_code == 303, billed.text
    found = INVOICE.fullmatch(billed.headers["location"])
    assert found
    assert found.group(2) == "facture"
    invoice_id = found.group(1)
    page = optician.get(billed.headers["location"])
    assert "Facture enregistrée." in page.text
    assert "Part de l'organisme complémentaire : 300,00" in page.text
    assert "acceptée" in page.text
    assert reference in page.text
    listed = optician.get("/pro/factures").text
    assert f'href="/pro/factures/{invoice_id}"' in listed
    assert "F-1" in listed
    assert "390,00" in listed  # billed: 150 + 120 + 120

    used = optician.get(f"/pro/accords/{reference}").text
    assert "utilisé par une facture" in used
    assert f'href="/pro/factures/{invoice_id}"' in used
    assert "/annuler" not in main(used)
    refused = post(optician, f"/pro/accords/{reference}/annuler", {}, f"/pro/accords/{reference}")
    assert refused.status_code == 409
    assert "annulez d&#39;abord cette facture" in refused.text

    # Cancelling the invoice gives the agreement back (the service's restore, seen on the pages).
    cancel = post(
        optician, f"/pro/factures/{invoice_id}/annuler", {}, f"/pro/factures/{invoice_id}"
    )
    assert cancel.status_code == 303
    assert cancel.headers["location"] == f"/pro/factures/{invoice_id}?ok=annulee"
    cancelled = optician.get(cancel.headers["location"]).text
    assert "Facture annulée" in cancelled
    assert "annulée" in cancelled
    assert "/annuler" not in main(cancelled)
    again = post(optician, f"/pro/factures/{invoice_id}/annuler", {}, f"/pro/factures/{invoice_id}")
    assert again.status_code == 409
    assert "déjà annulée" in again.text
    restored = optician.get(f"/pro/accords/{reference}").text
    assert "utilisé par une facture" not in restored
    assert f'action="/pro/accords/{reference}/annuler"' in restored
    # A corrected invoice can use it again: its lines are no longer duplicates.
    corrected = post(
        optician, "/pro/factures", invoice_form(who, "F-1b", reference), "/pro/factures"
    )
    assert corrected.status_code == 303
    assert "300,00" in optician.get(corrected.headers["location"]).text
    second = INVOICE.fullmatch(corrected.headers["location"])
    assert second
    post(optician, f"/pro/factures/{second.group(1)}/annuler", {}, "/pro/factures")

    done = post(optician, f"/pro/accords/{reference}/annuler", {}, f"/pro/accords/{reference}")
    assert done.status_code == 303
    assert done.headers["location"] == f"/pro/accords/{reference}?ok=annule"
    assert "Accord préalable annulé" in optician.get(done.headers["location"]).text
    assert count(portal.platform, RenewalUse) == 0  # nothing reserved any more
    twice = post(optician, f"/pro/accords/{reference}/annuler", {}, "/pro/accords")
    assert twice.status_code == 409
    assert "déjà annulé" in twice.text


def test_a_quote_with_nothing_to_agree_is_answered_line_by_line_and_nothing_is_stored(
    portal: Portals,
) -> None:
    optician = portal.signed_in(OPTICIAN)
    # CONFORT's optics need no agreement: invoice them directly.
    answer = post(optician, "/pro/accords", card(ON_CONFORT) | glasses(), "/pro/accords")
    assert answer.status_code == 200
    assert "Rien n'est accordé" in answer.text
    assert "INVALID_LINE" in answer.text
    assert "ligne non valable" in answer.text
    assert count(portal.platform, PriorAgreement) == 0


def test_a_paid_invoice_cannot_be_cancelled_and_the_page_says_so(portal: Portals) -> None:
    optician = portal.signed_in(OPTICIAN)
    reference = ask(optician, UNDER_AGREEMENT[1])
    billed = post(
        optician,
        "/pro/factures",
        invoice_form(UNDER_AGREEMENT[1], "F-9", reference),
        "/pro/factures",
    )
    invoice_id = uuid.UUID(billed.headers["location"].split("/")[3].split("?")[0])
    set_rows(portal.platform, Invoice, Invoice.id == invoice_id, paid_at=datetime.now(UTC))
    page = optician.get(f"/pro/factures/{invoice_id}").text
    assert "payée le" in page
    assert "/annuler" not in main(page)
    refused = post(optician, f"/pro/factures/{invoice_id}/annuler", {}, "/pro/factures")
    assert refused.status_code == 409
    assert "Cette facture est payée : elle ne peut plus être annulée." in refused.text
    assert count(portal.platform, Invoice, Invoice.status == "cancelled") == 0


# Errors, tokens, double submits -------------------------------------------------------------------


def test_errors_are_shown_per_field_with_422_and_nothing_is_booked(portal: Portals) -> None:
    optician = portal.signed_in(OPTICIAN)
    who = UNDER_AGREEMENT[2]
    wrong = invoice_form(who, number="") | {
        "amc_number": "?",
        "lines-1-billed": "douze",
        "lines-1-amo_paid": "x",
        "lines-0-item_type": "frame",
    }
    answer = post(optician, "/pro/factures", wrong, "/pro/factures")
    assert answer.status_code == 422
    for field in ("amc_number", "invoice_number", "lines-1-billed", "lines-1-amo_paid"):
        assert f'id="{field}-erreur"' in answer.text, field
        assert f'href="#{field}"' in answer.text, field
    assert "La part AMO versée s&#39;écrit en euros" in answer.text
    assert "Le numéro de facture compte" in answer.text
    assert 'value="douze"' in answer.text  # what was typed is given back to be corrected
    assert who.member_number in answer.text
    no_line = {k: v for k, v in invoice_form(who).items() if not k.startswith("lines-")}
    empty = post(optician, "/pro/factures", no_line, "/pro/factures")
    assert empty.status_code == 422
    assert 'href="#lines-0-act_code"' in empty.text
    past = invoice_form(who) | {"lines-0-care_date": (today() - timedelta(days=800)).isoformat()}
    too_old = post(optician, "/pro/factures", past, "/pro/factures")
    assert too_old.status_code == 422
    assert "Dates des soins refusées" in too_old.text

    quote = card(who) | glasses() | {"birth_rank": "12", "lines-0-br": "abc"}
    refused = post(optician, "/pro/accords", quote, "/pro/accords")
    assert refused.status_code == 422
    for field in ("birth_rank", "lines-0-br"):
        assert f'id="{field}-erreur"' in refused.text, field
    later = card(who) | glasses() | {"lines-0-care_date": (today() - timedelta(days=1)).isoformat()}
    dated = post(optician, "/pro/accords", later, "/pro/accords")
    assert dated.status_code == 422
    assert "d&#39;aujourd&#39;hui à dans 6 mois" in dated.text
    assert count(portal.platform, Invoice) == 0
    assert count(portal.platform, PriorAgreement) == 0


def test_a_form_without_its_token_is_refused_and_changes_nothing(portal: Portals) -> None:
    optician = portal.signed_in(OPTICIAN)
    who = UNDER_AGREEMENT[3]
    reference = ask(optician, who)
    assert optician.post("/pro/accords", data=card(who) | glasses()).status_code == 403
    bare = optician.post("/pro/factures", data=invoice_form(who, "F-1", reference))
    assert bare.status_code == 403
    assert "Ce formulaire a expiré" in bare.text
    assert optician.post(f"/pro/accords/{reference}/annuler").status_code == 403
    assert count(portal.platform, PriorAgreement) == 1
    assert count(portal.platform, PriorAgreement, PriorAgreement.status == "granted") == 1
    assert count(portal.platform, Invoice) == 0
    billed = post(optician, "/pro/factures", invoice_form(who, "F-1", reference), "/pro/factures")
    invoice_id = billed.headers["location"].split("/")[3].split("?")[0]
    assert optician.post(f"/pro/factures/{invoice_id}/annuler").status_code == 403
    assert count(portal.platform, Invoice, Invoice.status == "cancelled") == 0


def test_the_same_invoice_form_sent_twice_bills_once(portal: Portals) -> None:
    optician = portal.signed_in(OPTICIAN)
    who = UNDER_AGREEMENT[4]
    reference = ask(optician, who)
    html = optician.get("/pro/factures").text
    key = re.search(r'name="cle" value="([^"]+)"', html)
    assert key
    form = invoice_form(who, "F-7", reference) | {"csrf": csrf_of(html), "cle": key.group(1)}
    first = optician.post("/pro/factures", data=form, follow_redirects=False)
    second = optician.post("/pro/factures", data=form, follow_redirects=False)  # a double click
    assert first.status_code == second.status_code == 303
    one, two = (
        INVOICE.fullmatch(first.headers["location"]),
        INVOICE.fullmatch(second.headers["location"]),
    )
    assert one
    assert two
    assert one.group(1) == two.group(1)
    assert (one.group(2), two.group(2)) == ("facture", "deja")
    assert "n&#39;est enregistrée qu&#39;une fois" in optician.get(second.headers["location"]).text
    assert count(portal.platform, Invoice) == 1
    # The same form, changed and sent again after being billed: refused, not a second bill.
    changed = optician.post(
        "/pro/factures", data=form | {"invoice_number": "F-8"}, follow_redirects=False
    )
    assert changed.status_code == 409
    assert "Ce formulaire a déjà servi" in changed.text
    fresh = re.search(r'name="cle" value="([^"]+)"', changed.text)
    assert fresh
    assert fresh.group(1) != key.group(1)  # sent again, it is a new invoice
    assert count(portal.platform, Invoice) == 1
    # Each page the browser gets carries a new key: two invoices typed one after the other.
    other = re.search(r'name="cle" value="([^"]+)"', optician.get("/pro/factures").text)
    assert other
    assert other.group(1) != key.group(1)


def test_another_practices_agreement_or_invoice_is_not_found(portal: Portals) -> None:
    optician = portal.signed_in(OPTICIAN)
    who = UNDER_AGREEMENT[5]
    reference = ask(optician, who)
    billed = post(optician, "/pro/factures", invoice_form(who, "F-1", reference), "/pro/factures")
    invoice_id = billed.headers["location"].split("/")[3].split("?")[0]
    rival = portal.signed_in(RIVAL)
    for path in (f"/pro/accords/{reference}", f"/pro/factures/{invoice_id}"):
        answer = rival.get(path)
        assert answer.status_code == 404, path
        assert "Introuvable" in answer.text
        assert "300,00" not in answer.text
        refused = post(rival, f"{path}/annuler", {}, "/pro/factures")
        assert refused.status_code == 404, path
    assert rival.get(f"/pro/factures/{uuid.uuid4()}").status_code == 404  # as one that is not
    assert rival.get("/pro/accords/PA" + "A" * 24).status_code == 404
    assert rival.get("/pro/factures/pas-un-id").status_code == 404
    assert rival.get("/pro/accords/" + "P" * 41).status_code == 404
    assert reference not in rival.get("/pro/accords").text
    assert invoice_id not in rival.get("/pro/factures").text
    assert count(portal.platform, Invoice, Invoice.status == "cancelled") == 0
    assert count(portal.platform, PriorAgreement, PriorAgreement.status == "consumed") == 1


def test_no_address_the_pages_give_holds_personal_data(portal: Portals) -> None:
    optician = portal.signed_in(OPTICIAN)
    who = UNDER_AGREEMENT[6]
    answers = [optician.get("/pro/accords")]
    quote = post(optician, "/pro/accords", card(who) | glasses(), "/pro/accords")
    reference = quote.headers["location"].split("/")[3].split("?")[0]
    answers += [quote, optician.get(quote.headers["location"])]
    answers.append(post(optician, "/pro/accords", card(ON_CONFORT) | glasses(), "/pro/accords"))
    answers.append(post(optician, "/pro/accords", card(who) | {"birth_rank": "x"}, "/pro/accords"))
    billed = post(optician, "/pro/factures", invoice_form(who, "F-1", reference), "/pro/factures")
    answers += [billed, optician.get(billed.headers["location"]), optician.get("/pro/factures")]
    answers.append(post(optician, "/pro/factures", invoice_form(who, ""), "/pro/factures"))
    invoice_path = billed.headers["location"].split("?")[0]
    answers.append(post(optician, f"{invoice_path}/annuler", {}, invoice_path))
    answers.append(optician.get(f"/pro/accords/{reference}"))
    seen: list[str] = []
    for answer in answers:
        seen += [str(answer.url), answer.headers.get("location", "")]
        seen += re.findall(r'(?:href|action|hx-post|src)="([^"]+)"', answer.text)
    assert any("/pro/factures/" in url for url in seen)
    personal = (who.member_number, who.birth_date, who.nir, who.last_name, who.first_name)
    assert not [url for url in seen for value in personal if value in url]
    assert who.last_name not in "".join(a.text for a in answers)  # no page names the patient


def test_the_invoice_list_pages_and_reads_nothing_of_the_patients(portal: Portals) -> None:
    pharmacist = portal.signed_in(PHARMACIST)
    who = UNDER_AGREEMENT[7]
    for n in range(3):
        bill(
            portal.platform, "pharmacist", who, [pay_line("PHAR", 1000 + n, 1000, 30)], f"FACT.{n}"
        )  # "." is in no random token
    before = len(ledger(portal.platform))
    pro_claims.PER_PAGE, saved = 2, pro_claims.PER_PAGE
    try:
        first = pharmacist.get("/pro/factures").text
        older = re.search(r'href="/pro/factures\?avant=([^"]+)"', first)
        assert older
        assert "FACT.2" in first
        assert "FACT.1" in first
        assert "FACT.0" not in first
        second = pharmacist.get(f"/pro/factures?avant={older.group(1)}").text
        assert "FACT.0" in second
        assert "FACT.2" not in second
        assert "avant=" not in second
        assert "Revenir aux plus récentes" in second
    finally:
        pro_claims.PER_PAGE = saved
    assert len(ledger(portal.platform)) == before  # numbers, dates and totals only
    assert pharmacist.get("/pro/factures?avant=nimporte").status_code == 422
    assert portal.signed_in(OPTICIAN).get("/pro/factures").text.count("FACT.") == 0


def test_each_page_of_an_agreement_or_an_invoice_is_on_the_record(portal: Portals) -> None:
    optician = portal.signed_in(OPTICIAN)
    who = UNDER_AGREEMENT[8]
    reference = ask(optician, who)
    billed = post(optician, "/pro/factures", invoice_form(who, "F-1", reference), "/pro/factures")
    before = len(ledger(portal.platform))
    optician.get(f"/pro/accords/{reference}")
    optician.get(billed.headers["location"])
    read_agreement, read_invoice = ledger(portal.platform)[before:]
    assert read_agreement["tag"] == "beneficiary:prior-agreement:read"
    assert read_invoice["tag"] == "beneficiary:claim:read"
    for event in (read_agreement, read_invoice):
        assert event["beneficiary"]
        assert event["tenant"] == AMC
        assert set(event["fields"]) >= {"act_code", "billed", "amc_amount"}
    # The list of agreements is a read of each one listed (the service's rule).
    optician.get("/pro/accords")
    assert ledger(portal.platform)[-1]["tag"] == "beneficiary:prior-agreement:read"


def test_list_invoices_checks_its_arguments(portal: Portals) -> None:
    pharmacist_id = professional_ids(portal.platform)[BILLERS["pharmacist"]]
    caller = Principal(
        "test:pharmacist", "professional", uuid.uuid4(), None, pharmacist_id, "x", "pharmacist"
    )
    assert invoices.list_invoices(portal.platform, caller, 1, None).invoices == ()
    for limit in (0, invoices.MAX_PAGE + 1):
        with pytest.raises(InvalidInput):
            invoices.list_invoices(portal.platform, caller, limit, None)
    with pytest.raises(InvalidInput):
        invoices.list_invoices(portal.platform, caller, 10, "bm9uLWN1cnNvcg")
