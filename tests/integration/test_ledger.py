"""The ledger on a real database: group commit, proofs, checkpoints, and tampering, each named.

The attacker here has write access to the database (a stolen DBA account) but not the keys.
"""

from __future__ import annotations

import base64
import json
import random
import stat
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import delete, insert, select, update
from typer.testing import CliRunner

from rempart.cli import app
from rempart.db import table_of, transaction
from rempart.errors import InvalidInput, VerificationError
from rempart.ledger import merkle, services
from rempart.ledger.checkpoint import (
    Checkpoint,
    open_checkpoint,
    parse_verifier_key,
    sign_checkpoint,
    verifier_key_string,
)
from rempart.ledger.events import AccessEvent, Tag
from rempart.ledger.export import export_events
from rempart.ledger.models import LedgerCheckpoint, LedgerEntry, LedgerHead, LedgerNode
from rempart.ledger.recorder import LedgerRecorder
from rempart.platform import Platform
from rempart.settings import get_settings

T0 = datetime(2026, 1, 29, 8, 0, tzinfo=UTC)


def event(n: int) -> AccessEvent:
    return AccessEvent(
        at=T0 + timedelta(seconds=n),
        tag=Tag.RIGHTS_READ,
        actor=f"user:{n % 5}",
        outcome="open",
        purpose="rights-check",
        organisation="751234567",
        tenant="75000001",
        beneficiary=f"{n:032x}",
        fields=("status", "rate"),
    )


def fill(platform: Platform, count: int, checkpoints: tuple[int, ...] = ()) -> None:
    done = 0
    for stop in (*checkpoints, count):
        with transaction(platform.sessions) as session:
            services.append_events(session, [event(n) for n in range(done, stop)])
        done = stop
        if stop in checkpoints:
            services.make_checkpoint(
                platform.sessions, platform.keyring, platform.settings.ledger_origin
            )


def verify(platform: Platform) -> list[str]:
    return services.verify_ledger(
        platform.sessions, platform.keyring, platform.settings.ledger_origin
    ).problems


def test_concurrent_recording_numbers_every_event_once_without_gaps(platform: Platform) -> None:
    recorder = LedgerRecorder(platform.engine)
    numbers: list[int] = []
    lock = threading.Lock()

    def worker(w: int) -> None:
        for n in range(40):
            seq = recorder.record(event(w * 100 + n))
            with lock:
                numbers.append(seq)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    recorder.close()
    assert sorted(numbers) == list(range(240))
    with transaction(platform.sessions) as session:
        leaves = [
            merkle.leaf_hash(e)
            for e in session.scalars(select(LedgerEntry.event).order_by(LedgerEntry.seq))
        ]
        assert services.root_at(session, 240) == merkle.root_hash(leaves)
    assert verify(platform) == []


def test_a_failed_commit_fails_every_waiting_request(platform: Platform) -> None:
    recorder = LedgerRecorder(platform.engine)
    recorder.record(event(0))
    with platform.engine.begin() as conn:  # the storage breaks under the recorder
        conn.execute(delete(table_of(LedgerHead)))
        conn.execute(insert(table_of(LedgerHead)), [{"id": 1, "size": 0}])
    with pytest.raises(Exception, match=r"(?i)unique|duplicate|integrity"):
        recorder.record(event(1))
    recorder.close()


def test_inclusion_and_consistency_proofs_verify_offline(platform: Platform) -> None:
    fill(platform, 45, checkpoints=(10, 32))
    for seq in (0, 9, 31, 44):
        proof = services.prove_inclusion(platform.sessions, seq)
        merkle.verify_inclusion(proof.leaf_hash, seq, 45, proof.proof, proof.root)
        old = services.prove_inclusion(platform.sessions, min(seq, 9), 10)
        merkle.verify_inclusion(old.leaf_hash, min(seq, 9), 10, old.proof, old.root)
    with platform.sessions() as session:
        roots = {c.size: c.root for c in session.scalars(select(LedgerCheckpoint))}
        current = services.root_at(session, 45)
    merkle.verify_consistency(
        10, 32, roots[10], roots[32], services.prove_consistency(platform.sessions, 10, 32)
    )
    merkle.verify_consistency(
        32, 45, roots[32], current, services.prove_consistency(platform.sessions, 32, 45)
    )


def test_a_checkpoint_opens_with_the_published_key_and_no_other(platform: Platform) -> None:
    fill(platform, 12)
    origin = platform.settings.ledger_origin
    note = services.make_checkpoint(platform.sessions, platform.keyring, origin)
    published = verifier_key_string(
        origin, services.public_key(platform.sessions, platform.keyring)
    )
    name, key = parse_verifier_key(published)
    checkpoint = open_checkpoint(note, name, key)
    assert checkpoint.size == 12
    with pytest.raises(VerificationError):
        open_checkpoint(note, origin, Ed25519PrivateKey.generate().public_key())


def test_an_insurers_kept_checkpoint_exposes_a_rewritten_history(platform: Platform) -> None:
    fill(platform, 20)
    origin = platform.settings.ledger_origin
    kept = open_checkpoint(
        services.make_checkpoint(platform.sessions, platform.keyring, origin),
        origin,
        services.public_key(platform.sessions, platform.keyring),
    )
    # The operator (or an intruder with its keys) rebuilds the log without entry 7, and signs it.
    with platform.engine.begin() as conn:
        for table in (LedgerEntry, LedgerNode, LedgerHead, LedgerCheckpoint):
            conn.execute(delete(table_of(table)))
    with transaction(platform.sessions) as session:
        services.append_events(session, [event(n) for n in range(25) if n != 7])
    later = services.make_checkpoint(platform.sessions, platform.keyring, origin)
    new = open_checkpoint(later, origin, services.public_key(platform.sessions, platform.keyring))
    proof = services.prove_consistency(platform.sessions, kept.size, new.size)
    with pytest.raises(VerificationError):
        merkle.verify_consistency(kept.size, new.size, kept.root, new.root, proof)


# --- the tampering campaign --------------------------------------------------------------------

Tamper = Callable[[Platform, random.Random], str]


def _entry(platform: Platform, seq: int) -> LedgerEntry:
    with platform.sessions() as session:
        found = session.get(LedgerEntry, seq)
        assert found is not None
        return found


def modify_event(platform: Platform, rng: random.Random) -> str:
    seq = rng.randrange(40)
    changed = _entry(platform, seq).event.replace(b'"outcome":"open"', b'"outcome":"shut"')
    with platform.engine.begin() as conn:
        conn.execute(
            update(table_of(LedgerEntry))
            .where(table_of(LedgerEntry).c.seq == seq)
            .values(event=changed)
        )
    return f"entry {seq} "


def modify_column(platform: Platform, rng: random.Random) -> str:
    seq = rng.randrange(40)
    with platform.engine.begin() as conn:
        conn.execute(
            update(table_of(LedgerEntry))
            .where(table_of(LedgerEntry).c.seq == seq)
            .values(actor="user:innocent")
        )
    return f"entry {seq}: column actor"


def delete_entry(platform: Platform, rng: random.Random) -> str:
    seq = rng.randrange(40)
    with platform.engine.begin() as conn:
        conn.execute(delete(table_of(LedgerEntry)).where(table_of(LedgerEntry).c.seq == seq))
    return f"entry {seq} is missing"


def insert_entry(platform: Platform, rng: random.Random) -> str:
    seq = 40 + rng.randrange(5)
    forged = event(999).encode()
    with platform.engine.begin() as conn:
        conn.execute(
            insert(table_of(LedgerEntry)),
            [
                {
                    "seq": seq,
                    "at": T0,
                    "tag": Tag.RIGHTS_READ,
                    "actor": "x",
                    "tenant": None,
                    "beneficiary": None,
                    "event": forged,
                }
            ],
        )
    return f"entry {seq} lies beyond the head"


def swap_entries(platform: Platform, rng: random.Random) -> str:
    a, b = rng.sample(range(40), 2)
    ea, eb = _entry(platform, a), _entry(platform, b)
    table = table_of(LedgerEntry)
    with platform.engine.begin() as conn:
        for target, source in ((a, eb), (b, ea)):
            conn.execute(
                update(table)
                .where(table.c.seq == target)
                .values(
                    event=source.event,
                    at=source.at,
                    actor=source.actor,
                    beneficiary=source.beneficiary,
                )
            )
    return f"entry {min(a, b)} does not match"


def rewrite_consistently(platform: Platform, rng: random.Random) -> str:
    """Rewrite an entry and every tree node above it, as a careful intruder would."""
    seq = rng.randrange(20)
    forged = event(500)
    with transaction(platform.sessions) as session:
        entries = [
            AccessEvent.decode(e)
            for e in session.scalars(select(LedgerEntry.event).order_by(LedgerEntry.seq))
        ]
    entries[seq] = forged
    with platform.engine.begin() as conn:
        conn.execute(delete(table_of(LedgerEntry)))
        conn.execute(delete(table_of(LedgerNode)))
        conn.execute(update(table_of(LedgerHead)).values(size=0))
    with transaction(platform.sessions) as session:
        services.append_events(session, entries)
    return "do not give the root signed at size 20"


def forge_checkpoint(platform: Platform, rng: random.Random) -> str:
    with platform.sessions() as session:
        row = session.get(LedgerCheckpoint, 20)
        assert row is not None
        root = row.root
    forged = sign_checkpoint(
        Checkpoint(platform.settings.ledger_origin, 20, root),
        platform.settings.ledger_origin,
        Ed25519PrivateKey.generate(),
    )
    with platform.engine.begin() as conn:
        conn.execute(
            update(table_of(LedgerCheckpoint))
            .where(table_of(LedgerCheckpoint).c.size == 20)
            .values(note=forged)
        )
    return "checkpoint of size 20: its signature does not verify"


def truncate_log(platform: Platform, rng: random.Random) -> str:
    keep = 30 + rng.randrange(9)
    with platform.engine.begin() as conn:
        conn.execute(delete(table_of(LedgerEntry)).where(table_of(LedgerEntry).c.seq >= keep))
        conn.execute(update(table_of(LedgerHead)).values(size=keep))
    return "checkpoint of size 40 is beyond the entries"


def modify_node(platform: Platform, rng: random.Random) -> str:
    level, index = rng.choice([(1, 3), (2, 1), (3, 2), (0, 17)])
    nodes_table = table_of(LedgerNode)
    with platform.engine.begin() as conn:
        conn.execute(
            update(nodes_table)
            .where(nodes_table.c.level == level, nodes_table.c.index == index)
            .values(hash=b"\x00" * 32)
        )
    return f"entry {index} does not match" if level == 0 else f"tree node ({level}, {index})"


CAMPAIGN = [
    modify_event,
    modify_column,
    delete_entry,
    insert_entry,
    swap_entries,
    rewrite_consistently,
    forge_checkpoint,
    truncate_log,
    modify_node,
]


@pytest.mark.parametrize("attempt", range(2))
@pytest.mark.parametrize("tamper", CAMPAIGN, ids=lambda f: f.__name__)
def test_every_tampering_of_the_log_is_detected_and_named(
    platform: Platform, tamper: Tamper, attempt: int
) -> None:
    fill(platform, 40, checkpoints=(20, 40))
    assert verify(platform) == []
    expected = tamper(platform, random.Random(attempt))
    problems = verify(platform)
    assert problems, "tampering went unnoticed"
    assert any(expected in p for p in problems), problems


def test_the_ledger_commands(platform: Platform, monkeypatch: pytest.MonkeyPatch) -> None:
    fill(platform, 9)
    monkeypatch.setenv("REMPART_HOME", str(platform.settings.home))
    monkeypatch.setenv("REMPART_DATABASE_URL", platform.settings.resolved_database_url)
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        note = runner.invoke(app, ["ledger", "checkpoint"])
        assert note.exit_code == 0
        assert note.output.startswith(f"{platform.settings.ledger_origin}\n9\n")
        proved = runner.invoke(app, ["ledger", "prove", "--event", "4"])
        proof = json.loads(proved.output)
        assert (proof["leafIdx"], proof["treeSize"]) == (4, 9)
        verified = runner.invoke(app, ["ledger", "verify"])
        assert verified.exit_code == 0
        assert "ledger intact: 9 entries, 1 checkpoints" in verified.output
        with platform.engine.begin() as conn:
            conn.execute(delete(table_of(LedgerEntry)).where(table_of(LedgerEntry).c.seq == 2))
        broken = runner.invoke(app, ["ledger", "verify"])
        assert broken.exit_code == 1
        assert "entry 2 is missing: deleted" in broken.output
        key = runner.invoke(app, ["ledger", "public-key"]).output.strip()
        assert key.startswith(f"{platform.settings.ledger_origin}+")
    finally:
        get_settings.cache_clear()


def test_events_export_to_parquet_by_day_exactly_as_recorded(
    platform: Platform, tmp_path: Path
) -> None:
    midnight = T0.replace(hour=0)
    days = [midnight + timedelta(days=d, hours=h) for d in range(3) for h in range(0, 24, 3)]
    events = [
        AccessEvent(at, Tag.RIGHTS_READ, f"user:{i}", "open", fields=("rate",))
        for i, at in enumerate(days)
    ]
    with transaction(platform.sessions) as session:
        services.append_events(session, events)
    report = export_events(platform.sessions, tmp_path / "all")
    assert (report.events, report.days) == (24, 3)
    assert sorted(p.name for p in (tmp_path / "all").iterdir()) == [
        "day=2026-01-29",
        "day=2026-01-30",
        "day=2026-01-31",
    ]
    files = sorted((tmp_path / "all").rglob("*.parquet"))
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
    table = pq.read_table(tmp_path / "all").sort_by("seq")  # the folder, as a Hive-partitioned set
    assert table.column("seq").to_pylist() == list(range(24))
    assert table.column("actor").to_pylist() == [e.actor for e in events]
    assert table.column("at").to_pylist() == days
    assert table.column("fields").to_pylist()[0] == ["rate"]
    assert table.column("leaf_hash").to_pylist() == [merkle.leaf_hash(e.encode()) for e in events]

    day_two = midnight + timedelta(days=1)
    window = export_events(
        platform.sessions, tmp_path / "one-day", day_two, day_two + timedelta(days=1)
    )
    assert (window.events, window.days) == (8, 1)
    with pytest.raises(InvalidInput, match="not empty"):
        export_events(platform.sessions, tmp_path / "all")


# --- witnessing: checkpoints kept outside the database -----------------------------------------


def rewrite_history(platform: Platform, seq: int, count: int) -> None:
    """Rebuild the log with entry ``seq`` forged, its tree and checkpoints with it: everything
    the database holds agrees again. The intruder has the operator's signing key."""
    with transaction(platform.sessions) as session:
        entries = [
            AccessEvent.decode(e)
            for e in session.scalars(select(LedgerEntry.event).order_by(LedgerEntry.seq))
        ]
    entries[seq] = event(500)
    with platform.engine.begin() as conn:
        for table in (LedgerEntry, LedgerNode, LedgerCheckpoint):
            conn.execute(delete(table_of(table)))
        conn.execute(update(table_of(LedgerHead)).values(size=0, frontier=b""))
    with transaction(platform.sessions) as session:
        services.append_events(session, entries[:count])


def kept_note(platform: Platform) -> str:
    return services.make_checkpoint(
        platform.sessions, platform.keyring, platform.settings.ledger_origin
    )


def verify_with(platform: Platform, *notes: str) -> services.LedgerReport:
    return services.verify_ledger(
        platform.sessions, platform.keyring, platform.settings.ledger_origin, external=notes
    )


def test_a_kept_checkpoint_checks_out_against_an_intact_log(platform: Platform) -> None:
    fill(platform, 20)
    kept = kept_note(platform)
    fill_more(platform, 20, 33)
    kept_note(platform)
    report = verify_with(platform, kept, kept)
    assert (report.problems, report.kept, report.checkpoints) == ([], 2, 2)


def fill_more(platform: Platform, start: int, stop: int) -> None:
    with transaction(platform.sessions) as session:
        services.append_events(session, [event(n) for n in range(start, stop)])


def test_a_history_rewritten_with_its_checkpoints_is_exposed_by_a_kept_one(
    platform: Platform,
) -> None:
    fill(platform, 20)
    kept = kept_note(platform)
    rewrite_history(platform, 7, 20)
    fill_more(platform, 20, 25)
    kept_note(platform)  # re-signed: the database agrees with itself again
    assert verify(platform) == []
    assert verify_with(platform, kept).problems == [
        "the entries up to 20 do not give the root of kept checkpoint 1 (size 20): "
        "the history was rewritten"
    ]


def test_a_log_truncated_below_a_kept_checkpoint_is_named(platform: Platform) -> None:
    fill(platform, 20)
    kept = kept_note(platform)
    rewrite_history(platform, 3, 15)  # the intruder drops the last five and re-signs
    kept_note(platform)
    assert verify(platform) == []
    assert verify_with(platform, kept).problems == [
        "kept checkpoint 1 of size 20 is beyond the entries: the log was truncated"
    ]


def test_a_kept_note_not_signed_by_the_platform_for_this_log_is_refused(
    platform: Platform,
) -> None:
    fill(platform, 12)
    origin = platform.settings.ledger_origin
    with platform.sessions() as session:
        root = services.root_at(session, 12)
        platform_key = platform.keyring.signing_key(session)
    other_key = sign_checkpoint(Checkpoint(origin, 12, root), origin, Ed25519PrivateKey.generate())
    other_log = sign_checkpoint(Checkpoint("test.local/ledger", 12, root), origin, platform_key)
    report = verify_with(platform, kept_note(platform), other_key, other_log, "not a note")
    assert report.kept == 1
    assert report.problems == [
        f"kept checkpoint {n}: not signed by the platform key for {origin}: refused"
        for n in (2, 3, 4)
    ]


def test_the_verify_command_takes_kept_checkpoints(
    platform: Platform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill(platform, 20)
    kept = tmp_path / "kept.note"
    kept.write_text(kept_note(platform))
    monkeypatch.setenv("REMPART_HOME", str(platform.settings.home))
    monkeypatch.setenv("REMPART_DATABASE_URL", platform.settings.resolved_database_url)
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        intact = runner.invoke(app, ["ledger", "verify", "--checkpoint", str(kept)])
        assert intact.exit_code == 0, intact.output
        assert "1 checkpoints and 1 kept checkpoints verified" in intact.output
        rewrite_history(platform, 11, 20)
        kept_note(platform)
        assert runner.invoke(app, ["ledger", "verify"]).exit_code == 0  # fooled without it
        exposed = runner.invoke(app, ["ledger", "verify", "--checkpoint", str(kept), "--json"])
        assert exposed.exit_code == 1
        report = json.loads(exposed.output)
        assert (report["intact"], report["kept"]) == (False, 1)
        assert report["problems"] == [
            "the entries up to 20 do not give the root of kept checkpoint 1 (size 20): "
            "the history was rewritten"
        ]
    finally:
        get_settings.cache_clear()


def witness(key: Path, old: Path, new: Path, proof: Path | None = None) -> tuple[int, str]:
    args = ["ledger", "witness", "--public-key", str(key), "--old", str(old), "--new", str(new)]
    result = CliRunner().invoke(app, args + (["--proof", str(proof)] if proof else []))
    return result.exit_code, " ".join(result.output.split())


def test_the_offline_witness_exposes_a_rewrite_a_fork_and_a_forged_note(
    platform: Platform, tmp_path: Path
) -> None:
    origin = platform.settings.ledger_origin
    key = tmp_path / "rempart.vkey"
    key.write_text(
        verifier_key_string(origin, services.public_key(platform.sessions, platform.keyring))
    )
    fill(platform, 20)
    old = tmp_path / "old.note"
    old.write_text(kept_note(platform))

    def consistency(name: str, size1: int, size2: int) -> Path:
        proof = services.prove_consistency(platform.sessions, size1, size2)
        path = tmp_path / name
        path.write_text(
            json.dumps(
                {
                    "from_size": size1,
                    "to_size": size2,
                    "proof": [base64.b64encode(h).decode() for h in proof],
                }
            )
        )
        return path

    # The rewritten log, re-signed, and its honest-looking proof: the kept note does not agree.
    rewrite_history(platform, 7, 20)
    fork = tmp_path / "fork.note"
    fork.write_text(kept_note(platform))
    fill_more(platform, 20, 30)
    new = tmp_path / "new.note"
    new.write_text(kept_note(platform))
    code, output = witness(key, old, new, consistency("proof.json", 20, 30))
    assert code == 1
    assert "NOT consistent: the checkpoint of size 30 does not extend the kept one of size 20" in (
        output
    )
    # Two roots for the same size: a fork, with no proof needed to see it.
    code, output = witness(key, old, fork)
    assert code == 1
    assert "two different roots are signed for size 20: a fork" in output
    # The same log, honestly extended, checks out.
    assert witness(key, fork, new, consistency("honest.json", 20, 30))[0] == 0
    # A note signed by another key is refused before anything else.
    forged = tmp_path / "forged.note"
    with platform.sessions() as session:
        root = services.root_at(session, 30)
    forged.write_text(
        sign_checkpoint(Checkpoint(origin, 30, root), origin, Ed25519PrivateKey.generate())
    )
    code, output = witness(key, fork, forged, consistency("forged.json", 20, 30))
    assert code == 1
    assert "forged.note is refused: expected a signature by" in output
    # A proof between other sizes than the notes' is named, not run.
    code, output = witness(key, fork, new, consistency("other.json", 10, 30))
    assert code == 1
    assert "expected a proof from 20 to 30" in output


def test_check_event_takes_what_prove_prints(
    platform: Platform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill(platform, 14)
    note = tmp_path / "kept.note"
    note.write_text(kept_note(platform))
    monkeypatch.setenv("REMPART_HOME", str(platform.settings.home))
    monkeypatch.setenv("REMPART_DATABASE_URL", platform.settings.resolved_database_url)
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        key = tmp_path / "rempart.vkey"
        key.write_text(runner.invoke(app, ["ledger", "public-key"]).output)
        proved = json.loads(runner.invoke(app, ["ledger", "prove", "--event", "5"]).output)
    finally:
        get_settings.cache_clear()
    check = ["ledger", "check-event", "--public-key", str(key), "--note", str(note), "--proof"]
    proof = tmp_path / "proof.json"
    proof.write_text(json.dumps(proved))
    result = runner.invoke(app, [*check, str(proof)])
    assert result.exit_code == 0, result.output
    assert "event 5 is in the log of size 14" in result.output
    proof.write_text(json.dumps({**proved, "event": event(6).encode().decode()}))
    result = runner.invoke(app, [*check, str(proof)])
    assert result.exit_code == 1
    assert "event 5 NOT proved: expected root" in " ".join(result.output.split())
