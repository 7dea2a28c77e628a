"""The insurers' ledger API from the attacker's side: an insurer sees its own members' events and
no one else's, whatever it asks; every proof it gets checks offline against a signed note."""

from __future__ import annotations

import base64
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from typer.testing import CliRunner

from rempart.app import create_app
from rempart.cli import app as cli_app
from rempart.db import table_of, transaction
from rempart.errors import VerificationError
from rempart.ledger import cli as ledger_cli
from rempart.ledger import merkle, services
from rempart.ledger.checkpoint import (
    check_extends,
    check_included,
    open_log_checkpoint,
    parse_verifier_key,
)
from rempart.ledger.events import AccessEvent, Tag
from rempart.ledger.models import LedgerEntry
from rempart.platform import Platform
from tests.support import (
    AMC,
    OTHER_AMC,
    PHARMACIST_AM,
    add_account,
    add_insurer,
    add_professionals,
    sign_in,
)

T0 = datetime(2026, 1, 29, 8, 0, tzinfo=UTC)
ROUTES = ("/public-key", "/checkpoint", "/consistency?from_size=1&to_size=2", "/events")
ROLES = ("professional", "amc", "operator", "security")
# What each role gets on each route; B is the other insurer's amc account.
ADMITTED = {
    "/public-key": {"amc", "operator", "security"},
    "/checkpoint": {"amc", "operator", "security"},
    "/consistency?from_size=1&to_size=2": {"amc", "operator", "security"},
    "/events": {"amc"},
}


def member_event(n: int, tenant: str) -> AccessEvent:
    """A rights check of member n of ``tenant``: the pseudonym says whose it is."""
    return AccessEvent(
        at=T0 + timedelta(seconds=n),
        tag=Tag.RIGHTS_READ,
        actor="user:pharmacist",
        outcome="open",
        purpose="rights-check",
        organisation=PHARMACIST_AM,
        tenant=tenant,
        beneficiary=f"{tenant}-{n:024x}",
        fields=("status", "rate"),
    )


def append(platform: Platform, events: list[AccessEvent]) -> None:
    with transaction(platform.sessions) as session:
        services.append_events(session, events)


def interleaved(platform: Platform, count: int, start: int = 0) -> None:
    """Events of both insurers, and some of none, mixed as a busy day mixes them."""
    tenants = itertools.cycle([AMC, OTHER_AMC, OTHER_AMC, AMC, None])
    events = []
    for n in range(start, start + count):
        tenant = next(tenants)
        events.append(
            member_event(n, tenant)
            if tenant
            else AccessEvent(T0, Tag.LOGIN_FAILURE, "unknown", "no-such-account")
        )
    append(platform, events)


def checkpoint_now(platform: Platform) -> str:
    return services.make_checkpoint(
        platform.sessions, platform.keyring, platform.settings.ledger_origin
    )


def seqs_of(platform: Platform, tenant: str, below: int) -> list[int]:
    with platform.sessions() as session:
        return list(
            session.scalars(
                select(LedgerEntry.seq)
                .where(LedgerEntry.tenant == tenant, LedgerEntry.seq < below)
                .order_by(LedgerEntry.seq)
            )
        )


@dataclass
class Api:
    client: TestClient
    platform: Platform
    headers: dict[str, dict[str, str]]  # role (and "amc-b") -> Authorization header

    def get(self, who: str, path: str, **params: Any) -> Any:
        url, headers = f"/api/v1/ledger{path}", self.headers[who]
        if not params:  # httpx replaces a query in the path with ``params``, even empty ones
            return self.client.get(url, headers=headers)
        return self.client.get(url, params=params, headers=headers)


@pytest.fixture
def api(platform: Platform) -> Iterator[Api]:
    add_insurer(platform, AMC)
    add_insurer(platform, OTHER_AMC)
    add_professionals(platform)
    accounts = {
        "professional": ("pharma@example.org", {"am_number": PHARMACIST_AM}),
        "amc": ("amc-a@mutuelle.example", {"amc_number": AMC}),
        "amc-b": ("amc-b@mutuelle.example", {"amc_number": OTHER_AMC}),
        "operator": ("ops@rempart.example", {}),
        "security": ("soc@rempart.example", {}),
    }
    secrets = {
        who: add_account(platform, "amc" if who == "amc-b" else who, email, **binding)
        for who, (email, binding) in accounts.items()
    }
    with TestClient(create_app(platform.settings, platform)) as client:
        headers = {
            who: sign_in(client, platform, accounts[who][0], secret)
            for who, secret in secrets.items()
        }
        yield Api(client, platform, headers)


def test_each_route_admits_only_its_roles(api: Api) -> None:
    interleaved(api.platform, 10)
    checkpoint_now(api.platform)
    for path in ROUTES:
        assert api.client.get(f"/api/v1/ledger{path}").status_code == 401, path
        for role in ROLES:
            response = api.get(role, path)
            expected = 200 if role in ADMITTED[path] else 403
            assert response.status_code == expected, (path, role, response.text)


def test_an_insurer_never_sees_another_insurers_events_whatever_it_asks(api: Api) -> None:
    interleaved(api.platform, 30)
    checkpoint_now(api.platform)
    interleaved(api.platform, 20, start=30)
    size = checkpoint_now(api.platform).split("\n")[1]
    theirs = set(seqs_of(api.platform, OTHER_AMC, int(size)))
    mine = set(seqs_of(api.platform, AMC, int(size)))
    assert theirs
    assert mine
    seen: set[int] = set()
    afters = [-1, 0, min(theirs), max(theirs), max(theirs) - 1, int(size), 10**12]
    sizes = [None, 1, min(theirs) + 1, max(theirs) + 1, int(size)]
    for after, limit, tree in itertools.product(afters, [1, 7, 1000], sizes):
        params = {"after": after, "limit": limit} | ({"size": tree} if tree is not None else {})
        response = api.get("amc", "/events", **params)
        assert response.status_code == 200, (params, response.text)
        for item in response.json()["events"]:
            assert item["seq"] not in theirs, params
            assert json.loads(item["event"])["tenant"] == AMC
            seen.add(item["seq"])
        assert OTHER_AMC + "-" not in response.text
    assert seen == mine
    # Naming the other insurer in the request is refused, not ignored, and shows nothing.
    for smuggled in ({"tenant": OTHER_AMC}, {"amc_number": OTHER_AMC}, {"organisation": "x"}):
        response = api.get("amc", "/events", **smuggled)
        assert response.status_code == 422, smuggled
        assert OTHER_AMC + "-" not in response.text
    # And the other insurer sees exactly its own.
    page = api.get("amc-b", "/events", limit=1000).json()
    assert {e["seq"] for e in page["events"]} == theirs


def test_an_altered_tenant_column_does_not_hand_out_another_insurers_event(api: Api) -> None:
    """An intruder who can write to the database relabels B's event as A's: A gets an error
    (an integrity failure, logged for the operator), never B's event."""
    interleaved(api.platform, 10)
    checkpoint_now(api.platform)
    victim = seqs_of(api.platform, OTHER_AMC, 10)[0]
    entries = table_of(LedgerEntry)
    with api.platform.engine.begin() as conn:
        conn.execute(update(entries).where(entries.c.seq == victim).values(tenant=AMC))
    response = api.get("amc", "/events")
    assert response.status_code == 500
    assert response.json()["detail"] == "stored data failed an integrity check"
    assert OTHER_AMC + "-" not in response.text


def test_parameters_out_of_bounds_are_refused(api: Api) -> None:
    interleaved(api.platform, 5)
    size = int(checkpoint_now(api.platform).split("\n")[1])  # with the sign-ins' events
    for params in (
        {"limit": 0},
        {"limit": 1001},
        {"after": -2},
        {"size": -1},
        {"size": size + 1},  # beyond the log
        {"limit": "many"},
    ):
        assert api.get("amc", "/events", **params).status_code == 422, params
    for sizes in ({"from_size": 0, "to_size": 3}, {"from_size": 4, "to_size": 3}, {}):
        assert api.get("amc", "/consistency", **sizes).status_code == 422, sizes
    assert api.get("amc", "/consistency", from_size=3, to_size=size + 1).status_code == 422


def test_events_before_any_checkpoint_are_a_conflict_unless_a_size_is_given(api: Api) -> None:
    interleaved(api.platform, 5)
    response = api.get("amc", "/events")
    assert response.status_code == 409
    assert "no checkpoint has been signed yet" in response.json()["detail"]
    with api.platform.sessions() as session:
        size = services.tree_size(session)
    page = api.get("amc", "/events", size=size).json()
    assert page["checkpoint"] is None
    assert [e["seq"] for e in page["events"]] == seqs_of(api.platform, AMC, size)


def test_proofs_from_the_api_check_offline_against_the_signed_note(api: Api) -> None:
    interleaved(api.platform, 37)
    published = api.get("amc", "/public-key").json()
    assert published["origin"] == api.platform.settings.ledger_origin
    name, key = parse_verifier_key(published["verifier_key"])
    note = api.get("amc", "/checkpoint").json()["note"]
    assert api.get("amc", "/checkpoint").json()["note"] == note  # the same size: the same note
    kept = open_log_checkpoint(note, name, key)
    interleaved(api.platform, 8, start=37)  # not yet in a checkpoint: not yet handed out
    page = api.get("amc", "/events", limit=1000).json()
    assert (page["tree_size"], page["checkpoint"]) == (kept.size, note)
    assert base64.b64decode(page["root"]) == kept.root
    assert [e["seq"] for e in page["events"]] == seqs_of(api.platform, AMC, kept.size)
    for item in page["events"]:
        event = item["event"].encode()
        assert base64.b64decode(item["leaf_hash"]) == merkle.leaf_hash(event)
        proof = [base64.b64decode(h) for h in item["proof"]]
        check_included(kept, item["seq"], event, proof)
        assert AccessEvent.decode(event).tenant == AMC
        forged = event.replace(b'"at":"', b'"at":"1')
        assert forged != event
        with pytest.raises(VerificationError, match="expected root"):
            check_included(kept, item["seq"], forged, proof)


def test_a_newer_checkpoint_is_proved_to_extend_a_kept_one(api: Api) -> None:
    name, key = parse_verifier_key(api.get("amc", "/public-key").json()["verifier_key"])
    interleaved(api.platform, 13)
    old = open_log_checkpoint(api.get("amc", "/checkpoint").json()["note"], name, key)
    for more in (1, 18, 64):
        interleaved(api.platform, more, start=100)
        new = open_log_checkpoint(api.get("operator", "/checkpoint").json()["note"], name, key)
        answer = api.get("amc", "/consistency", from_size=old.size, to_size=new.size).json()
        assert (answer["from_size"], answer["to_size"]) == (old.size, new.size)
        check_extends(old, new, [base64.b64decode(h) for h in answer["proof"]])
    same = api.get("security", "/consistency", from_size=new.size, to_size=new.size).json()
    assert same["proof"] == []


def test_pages_follow_each_other_without_gaps_or_repeats(api: Api) -> None:
    interleaved(api.platform, 41)
    size = int(checkpoint_now(api.platform).split("\n")[1])
    walked: list[int] = []
    after = -1
    for _ in range(100):
        page = api.get("amc", "/events", after=after, limit=4).json()
        walked += [e["seq"] for e in page["events"]]
        if page["next_after"] is None:
            break
        assert len(page["events"]) == 4
        after = page["next_after"]
    assert walked == seqs_of(api.platform, AMC, size)
    assert len(walked) > 8
    last = api.get("amc", "/events", after=walked[-1]).json()
    assert (last["events"], last["next_after"]) == ([], None)


def test_the_insurers_offline_commands_check_what_the_api_gives(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The walkthrough of docs/ledger.md: keep the key and a note, later check a newer note and
    events with nothing but files."""

    def no_platform() -> None:
        raise AssertionError("an offline command opened the platform")

    monkeypatch.setattr(ledger_cli, "platform", no_platform)
    runner = CliRunner()
    key = tmp_path / "rempart.vkey"
    key.write_text(api.get("amc", "/public-key").json()["verifier_key"] + "\n")
    interleaved(api.platform, 20)
    old = tmp_path / "old.note"
    old.write_text(api.get("amc", "/checkpoint").json()["note"] + "\n")  # as `jq -r` writes it
    interleaved(api.platform, 9, start=20)
    new = tmp_path / "new.note"
    new.write_text(api.get("amc", "/checkpoint").json()["note"])
    m, n = (int(note.read_text().split("\n")[1]) for note in (old, new))
    proof = tmp_path / "proof.json"
    proof.write_text(api.get("amc", "/consistency", from_size=m, to_size=n).text)

    def ledger(command: str, *args: Path | str) -> Any:
        return runner.invoke(
            cli_app, ["ledger", command, "--public-key", str(key), *map(str, args)]
        )

    witnessed = ledger("witness", "--old", old, "--new", new, "--proof", proof)
    assert witnessed.exit_code == 0, witnessed.output
    assert f"consistent: the checkpoint of size {n} extends the kept one of size {m}" in (
        witnessed.output
    )

    page = tmp_path / "page.json"
    page.write_text(api.get("amc", "/events", limit=1000).text)
    one = tmp_path / "one.json"
    one.write_text(json.dumps(json.loads(page.read_text())["events"][2]))
    for proved in (page, one):
        checked = ledger("check-event", "--note", new, "--proof", proved)
        assert checked.exit_code == 0, checked.output
        assert f"is in the log of size {n}" in checked.output
    against_old = ledger("check-event", "--note", old, "--proof", one)
    assert against_old.exit_code == 1
    assert "get a proof for this size" in against_old.output
