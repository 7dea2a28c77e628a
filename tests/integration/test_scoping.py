"""Breach scoping and notification packs, end to end.

A phished pharmacist's account reads people through the rights check and keeps its own record of
what it received; legitimate accounts read others. The scope, by account, by professional or by
address, gives exactly the attacker's set per insurer (unknown cards and throttled checks
excluded); an altered ledger stops it; the letters name no one else.
"""

from __future__ import annotations

import csv
import io
import json
import random
import re
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from typer.testing import CliRunner

from rempart.app import create_app
from rempart.cli import app as cli_app
from rempart.db import table_of, transaction
from rempart.identity.models import User
from rempart.identity.services import email_index
from rempart.incidents.window import root_with, tiles
from rempart.ledger import merkle, nodes
from rempart.ledger.events import Tag
from rempart.ledger.models import LedgerCheckpoint, LedgerEntry
from rempart.platform import Platform
from rempart.registry.lookups import active_tenant, insured_by_card
from rempart.registry.member_import import ImportOptions, import_members
from rempart.settings import Settings, get_settings
from tests.support import (
    AMC,
    OPTICIAN_AM,
    OTHER_AMC,
    PHARMACIST_AM,
    Person,
    add_account,
    add_insurer,
    add_professionals,
    card_body,
    member_file,
    pdf_text,
    person,
    sign_in,
    today,
)

ATTACKER = "pharma@example.org"
OPTICIAN = "optique@example.org"
ATTACKER_IP = "203.0.113.66"
OFFICE_IP = "192.0.2.10"
QUOTA = 14  # distinct cards per account and hour: the attacker meets it
ENDED = (today() - timedelta(days=10)).isoformat()


def member(n: int) -> Person:
    """The n-th person, on a card number of its own block: the attacker here is no neighbour
    scanner (the guard's business, tests/integration/test_guard*), it reads what it was given."""
    return person(n).but(member_number=f"M{n * 7_919:07d}")


MEMBERS = {
    AMC: [member(n) for n in range(1, 13)] + [member(13).but(end_date=ENDED)],
    OTHER_AMC: [member(n) for n in range(21, 27)],
}
EVERYONE = {p.last_name: p for people in MEMBERS.values() for p in people}
NOBODY = person(99)  # a card that exists nowhere


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"quota_account_hour": QUOTA})


@dataclass
class World:
    platform: Platform
    start: datetime
    middle: datetime  # between the attacker's two rounds
    end: datetime
    received: dict[str, set[str]]  # the attacker's record: AMC -> last names it got answers for
    first_round: dict[str, set[str]]
    throttled: set[str]
    attacker_id: str


def _check(
    client: TestClient, headers: dict[str, str], who: Person, amc: str, domain: str = "PHAR"
) -> int:
    body = card_body(who, amc, domain)
    return client.post("/api/v1/eligibility", json=body, headers=headers).status_code


def _attack(
    client: TestClient,
    headers: dict[str, str],
    cards: list[tuple[str, Person]],
    received: dict[str, set[str]],
    throttled: set[str],
) -> None:
    """The attacker's script: ask, and note what came back (it cannot tell closed from unknown:
    it notes every answer; the unknown cards are nobody's)."""
    for amc, who in cards:
        status = _check(client, headers, who, amc)
        if status == 200 and who.last_name in EVERYONE:
            received.setdefault(amc, set()).add(who.last_name)
        elif status == 429:
            throttled.add(who.last_name)
        else:
            assert status == 200, status  # (unknown cards are answered as closed rights)


@pytest.fixture
def world(platform: Platform, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    add_insurer(platform)
    add_insurer(platform, OTHER_AMC)
    add_professionals(platform)
    for amc, people in MEMBERS.items():
        import_members(platform, amc, io.BytesIO(member_file(people)), ImportOptions())
    secrets = {
        ATTACKER: add_account(platform, "professional", ATTACKER, am_number=PHARMACIST_AM),
        OPTICIAN: add_account(platform, "professional", OPTICIAN, am_number=OPTICIAN_AM),
    }
    monkeypatch.setenv("REMPART_HOME", str(platform.settings.home))
    monkeypatch.setenv("REMPART_DATABASE_URL", platform.settings.resolved_database_url)
    get_settings.cache_clear()
    app = create_app(platform.settings, platform)
    a, o = MEMBERS[AMC], MEMBERS[OTHER_AMC]
    received: dict[str, set[str]] = {}
    throttled: set[str] = set()
    start = datetime.now(UTC) - timedelta(seconds=1)
    with TestClient(app, client=(ATTACKER_IP, 40000)) as client:
        stolen = sign_in(client, platform, ATTACKER, secrets[ATTACKER])
        first = [(AMC, a[0]), (AMC, a[1]), (AMC, a[0]), (AMC, NOBODY), (OTHER_AMC, o[0])]
        _attack(client, stolen, first, received, throttled)
        first_round = {amc: set(names) for amc, names in received.items()}
        time.sleep(0.01)
        middle = datetime.now(UTC)
        time.sleep(0.01)
        second = [(AMC, p) for p in a[2:8]] + [(AMC, a[12]), (OTHER_AMC, o[1]), (OTHER_AMC, o[2])]
        second += [(AMC, NOBODY.but(member_number=f"M99{n:05d}")) for n in range(2)]
        second += [(AMC, a[8]), (AMC, a[9]), (AMC, a[10])]  # the quota is met among these
        _attack(client, stolen, second, received, throttled)
        calculation = {
            **{k: v for k, v in card_body(a[3]).items() if k not in ("domain", "care_date")},
            "lines": [
                {
                    "act_code": "C",
                    "domain": "PHAR",
                    "care_date": today().isoformat(),
                    "quantity": 1,
                    "billed": "10.00",
                    "br": "10.00",
                    "amo_rate": 30,
                }
            ],
        }
        answer = client.post("/api/v1/calculations", json=calculation, headers=stolen)
        assert answer.status_code == 200, answer.text
    with TestClient(app, client=(OFFICE_IP, 40001)) as client:
        optician = sign_in(client, platform, OPTICIAN, secrets[OPTICIAN])
        for amc, who in [(AMC, a[0]), (AMC, a[10]), (AMC, a[11]), (OTHER_AMC, o[3])]:
            assert _check(client, optician, who, amc, "OPTI") == 200
    end = datetime.now(UTC) + timedelta(seconds=1)
    assert throttled, "the attacker must meet the quota"
    assert a[10].last_name in throttled  # read by the optician only
    with transaction(platform.sessions) as session:
        attacker_id = session.scalar(
            select(User.id).where(User.email_index == email_index(platform, session, ATTACKER))
        )
    yield World(
        platform, start, middle, end, received, first_round, throttled, f"user:{attacker_id}"
    )
    get_settings.cache_clear()


def pseudonyms(platform: Platform, amc: str, names: set[str]) -> set[str]:
    """The ledger pseudonyms of the people with these last names (found by their cards)."""
    found = set()
    with transaction(platform.sessions) as session:
        tenant = active_tenant(session, amc)
        assert tenant is not None
        for name in names:
            who = EVERYONE[name]
            insured = insured_by_card(
                session,
                platform.keyring,
                tenant,
                who.member_number,
                datetime.fromisoformat(who.birth_date).date(),
                1,
            )
            assert insured is not None
            found.add(insured.pseudonym)
    return found


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli_app, ["incident", *args])
    unexpected = result.exception and not isinstance(result.exception, SystemExit)
    assert not unexpected, repr(result.exception)  # a crash, not a reported error
    return result.exit_code, result.output


def scope(w: World, out: Path, *criteria: str, until: datetime | None = None) -> tuple[int, str]:
    return run(
        "scope",
        *criteria,
        "--from",
        w.start.isoformat(),
        "--to",
        (until or w.end).isoformat(),
        "--out",
        str(out),
    )


def scoped(out: Path) -> dict[str, dict[str, dict[str, str]]]:
    """AMC -> pseudonym -> its row, from the per-insurer CSV files."""
    found: dict[str, dict[str, dict[str, str]]] = {}
    for path in sorted(out.glob("amc-*.csv")):
        with path.open() as handle:
            rows = list(csv.DictReader(handle))
        found[path.stem.removeprefix("amc-")] = {row["pseudonym"]: row for row in rows}
    return found


def expected(w: World, received: dict[str, set[str]]) -> dict[str, set[str]]:
    return {amc: pseudonyms(w.platform, amc, names) for amc, names in received.items()}


def test_the_scope_of_an_account_is_exactly_what_the_attacker_received(
    world: World, tmp_path: Path
) -> None:
    code, output = scope(world, tmp_path / "scope", "--account", ATTACKER)
    assert code == 0, output
    found = scoped(tmp_path / "scope")
    want = expected(world, world.received)
    assert {amc: set(rows) for amc, rows in found.items()} == want  # no more, no fewer
    throttled_or_other = pseudonyms(
        world.platform, AMC, {person(11).last_name, person(12).last_name}
    )
    assert not throttled_or_other & set(found[AMC])  # refused at the quota; read by the optician
    rows = found[AMC]
    (first,) = pseudonyms(world.platform, AMC, {person(1).last_name})
    (calculated,) = pseudonyms(world.platform, AMC, {person(4).last_name})
    (ended,) = pseudonyms(world.platform, AMC, {person(13).last_name})
    assert rows[first]["reads"] == "2"  # twice by the attacker; the optician's read is not its
    assert rows[first]["fields"] == "engagement;rate;status"
    assert rows[calculated]["reads"] == "2"
    assert rows[calculated]["fields"] == "amc_amount;engagement;rate;reject_codes;status"
    assert rows[ended]["fields"] == "status"  # closed rights: the status was disclosed
    summary = json.loads((tmp_path / "scope" / "scope.json").read_text())
    assert summary["status"] == "complete"
    assert summary["ledger"]["intact"]
    assert summary["ledger"]["checkpoint"]["size"] > 0
    assert summary["criteria"]["accounts"] == [world.attacker_id]
    counts = {a["amc"]: (a["people"], a["reads"]) for a in summary["amcs"]}
    assert counts[AMC] == (len(want[AMC]), len(want[AMC]) + 2)
    assert counts[OTHER_AMC] == (len(want[OTHER_AMC]), len(want[OTHER_AMC]))
    for path in (tmp_path / "scope").rglob("*"):
        if path.is_file():
            assert ATTACKER.encode() not in path.read_bytes()  # ids, never the e-mail address
            assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_by_professional_by_address_and_by_id_the_scope_is_the_same(
    world: World, tmp_path: Path
) -> None:
    want = expected(world, world.received)
    for name, criteria in (
        ("professional", ("--professional", PHARMACIST_AM)),
        ("block", ("--ip", "203.0.113.0/24")),
        ("blocks", ("--ip", "203.0.113.64/26", "--ip", "2001:db8::/32")),
        ("id", ("--account", world.attacker_id.removeprefix("user:"))),
    ):
        code, output = scope(world, tmp_path / name, *criteria)
        assert code == 0, output
        assert {amc: set(rows) for amc, rows in scoped(tmp_path / name).items()} == want, name
    code, _ = scope(world, tmp_path / "office", "--ip", OFFICE_IP)
    assert code == 0
    office = scoped(tmp_path / "office")
    assert set(office[AMC]) == pseudonyms(
        world.platform, AMC, {person(n).last_name for n in (1, 11, 12)}
    )


def test_the_window_bounds_the_scope(world: World, tmp_path: Path) -> None:
    code, output = scope(world, tmp_path / "early", "--account", ATTACKER, until=world.middle)
    assert code == 0, output
    found = scoped(tmp_path / "early")
    assert {amc: set(rows) for amc, rows in found.items()} == expected(world, world.first_round)


def test_the_criteria_are_checked_before_anything_is_written(world: World, tmp_path: Path) -> None:
    out = tmp_path / "none"
    for criteria, message in (
        ((), "name at least one"),
        (("--account", "nobody@example.org"), "no account with this e-mail address"),
        (("--professional", "759999999"), "no professional"),
        (("--ip", "not-an-address"), "not an IP address"),
    ):
        code, output = scope(world, out, *criteria)
        assert (code, message in output) == (1, True), output
        assert "nobody@example.org" not in output
    assert not out.exists()


def _tamper(platform: Platform, seq: int, **values: object) -> None:
    with platform.engine.begin() as conn:
        conn.execute(
            update(table_of(LedgerEntry)).where(table_of(LedgerEntry).c.seq == seq).values(values)
        )


def test_an_altered_ledger_gives_no_scope_unless_forced(world: World, tmp_path: Path) -> None:
    platform = world.platform
    with transaction(platform.sessions) as session:
        seq, original, at = session.execute(
            select(LedgerEntry.seq, LedgerEntry.event, LedgerEntry.at)
            .where(LedgerEntry.actor == world.attacker_id, LedgerEntry.tag == Tag.RIGHTS_READ)
            .order_by(LedgerEntry.seq)
            .limit(1)
        ).one()
    # Hide a read: the event says it disclosed nothing.
    _tamper(platform, seq, event=original.replace(b'"outcome":"open"', b'"outcome":"unknown"'))
    code, output = scope(world, tmp_path / "refused", "--account", ATTACKER)
    assert code == 1
    assert f"entry {seq} does not match the stored tree: modified" in output
    summary = json.loads((tmp_path / "refused" / "scope.json").read_text())
    assert summary["status"] == "refused"
    assert not summary["amcs"]
    assert not list((tmp_path / "refused").glob("amc-*"))
    code, output = scope(world, tmp_path / "forced", "--account", ATTACKER, "--force")
    assert code == 1  # the exit status still says the ledger did not verify
    summary = json.loads((tmp_path / "forced" / "scope.json").read_text())
    assert summary["status"] == "forced"
    assert f"entry {seq} does not match the stored tree: modified" in summary["ledger"]["problems"]
    assert list((tmp_path / "forced").glob("amc-*.csv"))
    # Move the read out of the window by its time column: the column differs from its event.
    _tamper(platform, seq, event=original, at=datetime(2020, 1, 1, tzinfo=UTC))
    code, output = scope(world, tmp_path / "moved", "--account", ATTACKER)
    assert code == 1
    assert f"entry {seq}: column at differs from the event it records: modified" in output
    _tamper(platform, seq, at=at)
    code, output = scope(world, tmp_path / "restored", "--account", ATTACKER)
    assert code == 0, output


def test_the_notification_pack_names_only_the_people_read(world: World, tmp_path: Path) -> None:
    code, output = scope(world, tmp_path / "scope", "--account", ATTACKER)
    assert code == 0, output
    summary = json.loads((tmp_path / "scope" / "scope.json").read_text())
    code, output = run(
        "notify", "--scope", str(tmp_path / "scope"), "--contact", "soc@rempart.example", "--json"
    )
    assert code == 0, output
    pack = tmp_path / "scope" / "notification"
    entries = {a["amc"]: a for a in summary["amcs"]}
    for amc, names in world.received.items():
        folder = pack / amc
        letters = pdf_text(folder / "lettres-art34-001.pdf")
        assert set(re.findall(r"Quenouille\d{4}x", letters)) == names  # no one else
        firsts = {EVERYONE[n].first_name for n in names}
        assert set(re.findall(r"Zephyrin\d{4}y", letters)) == firsts
        assert "courriel ou un SMS frauduleux" in " ".join(letters.split())
        cnil = " ".join(pdf_text(folder / "cnil-art33.pdf").split())
        people, reads = entries[amc]["people"], entries[amc]["reads"]
        assert people == len(names)
        plural = "personnes concernées" if people > 1 else "personne concernée"
        assert f"{people} {plural}" in cnil
        assert f"{reads} consultation" in cnil
        assert not re.findall(r"Quenouille\d{4}x", cnil)
        attestation = "".join(pdf_text(folder / "attestation-integrite.pdf").split())
        with transaction(world.platform.sessions) as session:
            latest = session.scalars(
                select(LedgerCheckpoint).order_by(LedgerCheckpoint.size.desc()).limit(1)
            ).one()
        root = latest.note.splitlines()[2]
        assert root in attestation  # the latest checkpoint, cited in full
        assert summary["ledger"]["checkpoint"]["root"] in attestation  # and the scope's
        assert "aucunealtérationdétectée" in attestation
        with (folder / "publipostage.csv").open() as handle:
            mailing = list(csv.DictReader(handle))
        assert {row["numero_adherent"] for row in mailing} == {
            EVERYONE[n].member_number for n in names
        }
        assert all(row["page"] for row in mailing)
    with transaction(world.platform.sessions) as session:
        recorded = session.execute(
            select(LedgerEntry.tenant, LedgerEntry.beneficiary).where(
                LedgerEntry.tag == Tag.NOTIFICATION_PREPARED
            )
        ).all()
    want = expected(world, world.received)
    assert sorted(recorded) == sorted((amc, p) for amc, ps in want.items() for p in ps)


def test_a_forced_scope_is_notified_only_when_forced_again(world: World, tmp_path: Path) -> None:
    with transaction(world.platform.sessions) as session:
        seq = session.scalars(select(LedgerEntry.seq).order_by(LedgerEntry.seq.desc())).first()
    assert seq is not None
    _tamper(world.platform, seq, tag="guard:containment:freeze")
    assert scope(world, tmp_path / "scope", "--account", ATTACKER, "--force")[0] == 1
    code, output = run("notify", "--scope", str(tmp_path / "scope"))
    assert code == 1
    assert "--force" in output
    assert not (tmp_path / "scope" / "notification").exists()


@pytest.mark.parametrize("seed", range(20))
def test_roots_recomputed_from_a_window_match_the_whole_tree(seed: int) -> None:
    rng = random.Random(seed)
    size = rng.randint(1, 300)
    leaves = [merkle.leaf_hash(str(n).encode()) for n in range(size)]
    stored: dict[tuple[int, int], bytes] = {}
    siblings: dict[int, bytes] = {}
    for n, leaf in enumerate(leaves):
        for level, index, h in nodes.append(n, leaf, siblings):
            stored[(level, index)] = h
    start = rng.randint(0, size - 1)
    end = rng.randint(start + 1, size)
    at_size = rng.randint(end, size)
    roots = {}
    for level, index in tiles(start, end):
        low = index << level
        roots[(level, index)] = merkle.root_hash(leaves[low : low + (1 << level)])
    assert sum(1 << level for level, _ in tiles(start, end)) == end - start

    def lookup(level: int, index: int) -> bytes:
        low, high = index << level, (index + 1) << level
        assert high <= start or low >= end, "a node inside the window was taken from storage"
        return stored[(level, index)]

    assert root_with(at_size, start, end, roots, lookup) == merkle.root_hash(leaves[:at_size])
