"""The master key file: owner-only, never overwritten, and wrapped keys that cannot be moved."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from rempart.crypto.master import FILE_FORMAT, FileKeyProvider
from rempart.errors import ConfigurationError, VerificationError

DATA_KEY = bytes(range(32))
CONTEXT = b"rempart/data-key|tenant:" + b"a" * 32 + b"|data|1"
OTHER_CONTEXTS = [
    b"rempart/data-key|tenant:" + b"b" * 32 + b"|data|1",  # another tenant
    b"rempart/data-key|tenant:" + b"a" * 32 + b"|index|1",  # another purpose
    b"rempart/data-key|tenant:" + b"a" * 32 + b"|data|2",  # another version
    b"",
]


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def write_private(path: Path, data: bytes, mode: int = 0o600) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, mode)


def key_file_doc(keys: Any, active: Any = 1) -> bytes:
    return json.dumps({"format": FILE_FORMAT, "active": active, "keys": keys}).encode()


@pytest.fixture
def key_path(tmp_path: Path) -> Path:
    return tmp_path / "keys" / "master.key"


@pytest.fixture
def provider(key_path: Path) -> FileKeyProvider:
    return FileKeyProvider.create(key_path)


# --- the file -----------------------------------------------------------------------------------


def test_create_writes_an_owner_only_file_with_one_random_key(
    provider: FileKeyProvider, key_path: Path
) -> None:
    assert mode_of(key_path) == 0o600
    doc = json.loads(key_path.read_text("utf-8"))
    assert doc["format"] == FILE_FORMAT
    assert doc["active"] == 1
    assert list(doc["keys"]) == ["1"]
    assert len(base64.b64decode(doc["keys"]["1"])) == 32
    assert provider.active_version() == 1
    assert provider.versions() == [1]


def test_two_created_files_hold_different_keys(tmp_path: Path) -> None:
    FileKeyProvider.create(tmp_path / "a.key")
    FileKeyProvider.create(tmp_path / "b.key")
    first = json.loads((tmp_path / "a.key").read_text("utf-8"))["keys"]["1"]
    second = json.loads((tmp_path / "b.key").read_text("utf-8"))["keys"]["1"]
    assert first != second


def test_create_refuses_to_overwrite_an_existing_key_file(
    provider: FileKeyProvider, key_path: Path
) -> None:
    before = key_path.read_bytes()
    wrapped = provider.wrap(DATA_KEY, CONTEXT)
    with pytest.raises(ConfigurationError, match="already exists"):
        FileKeyProvider.create(key_path)
    assert key_path.read_bytes() == before
    assert FileKeyProvider(key_path).unwrap(wrapped, CONTEXT) == DATA_KEY


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660, 0o620, 0o602, 0o610, 0o601, 0o666])
def test_a_key_file_open_to_group_or_others_is_refused(
    provider: FileKeyProvider, key_path: Path, mode: int
) -> None:
    os.chmod(key_path, mode)
    secret = json.loads(key_path.read_text("utf-8"))["keys"]["1"]
    with pytest.raises(ConfigurationError) as caught:
        FileKeyProvider(key_path)
    assert "chmod 600" in str(caught.value)
    assert secret not in str(caught.value)


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_an_owner_only_key_file_is_accepted(
    provider: FileKeyProvider, key_path: Path, mode: int
) -> None:
    os.chmod(key_path, mode)
    assert FileKeyProvider(key_path).versions() == [1]


def test_a_missing_key_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        FileKeyProvider(tmp_path / "absent.key")


GOOD_KEY = base64.b64encode(bytes(32)).decode()
SHORT_KEY = base64.b64encode(bytes(16)).decode()


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"not json at all", id="not-json"),
        pytest.param(b"\xff\xfe\x00", id="not-utf8"),
        pytest.param(b"[]", id="a-list"),
        pytest.param(b'"a string"', id="a-string"),
        pytest.param(
            json.dumps({"format": "other/1", "active": 1, "keys": {"1": GOOD_KEY}}).encode(),
            id="unknown-format",
        ),
        pytest.param(json.dumps({"format": FILE_FORMAT, "active": 1}).encode(), id="no-keys"),
        pytest.param(
            json.dumps({"format": FILE_FORMAT, "keys": {"1": GOOD_KEY}}).encode(), id="no-active"
        ),
        pytest.param(key_file_doc({"1": GOOD_KEY}, active=2), id="active-not-held"),
        pytest.param(key_file_doc({"1": GOOD_KEY}, active="one"), id="active-not-a-number"),
        pytest.param(key_file_doc({"1": SHORT_KEY}), id="short-key"),
        pytest.param(key_file_doc({"1": GOOD_KEY, "2": SHORT_KEY}), id="one-short-key"),
        pytest.param(key_file_doc({"1": "not base64!"}), id="bad-base64"),
        pytest.param(key_file_doc({"x": GOOD_KEY}, active="x"), id="version-not-a-number"),
        pytest.param(key_file_doc([GOOD_KEY]), id="keys-a-list"),
        pytest.param(key_file_doc({"1": 12345}), id="key-not-a-string"),
    ],
)
def test_a_corrupt_key_file_is_refused_as_a_configuration_error(
    tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "master.key"
    write_private(path, content)
    with pytest.raises(ConfigurationError, match="not a valid key file"):
        FileKeyProvider(path)


def test_a_valid_hand_written_key_file_is_accepted(tmp_path: Path) -> None:
    # The corrupt cases above fail for their defect, not because any hand-written file would.
    path = tmp_path / "master.key"
    write_private(path, key_file_doc({"1": GOOD_KEY}))
    assert FileKeyProvider(path).versions() == [1]


# --- wrapping -----------------------------------------------------------------------------------


def test_a_wrapped_key_unwraps_to_itself_and_does_not_contain_it(
    provider: FileKeyProvider, key_path: Path
) -> None:
    wrapped = provider.wrap(DATA_KEY, CONTEXT)
    assert DATA_KEY not in wrapped
    assert DATA_KEY[:8] not in wrapped
    assert provider.unwrap(wrapped, CONTEXT) == DATA_KEY
    # Another process reading the same file unwraps it too.
    assert FileKeyProvider(key_path).unwrap(wrapped, CONTEXT) == DATA_KEY


def test_two_wraps_of_the_same_key_differ(provider: FileKeyProvider) -> None:
    assert provider.wrap(DATA_KEY, CONTEXT) != provider.wrap(DATA_KEY, CONTEXT)


@pytest.mark.parametrize("context", OTHER_CONTEXTS)
def test_a_wrapped_key_unwrapped_under_another_context_is_refused(
    provider: FileKeyProvider, context: bytes
) -> None:
    wrapped = provider.wrap(DATA_KEY, CONTEXT)
    with pytest.raises(VerificationError):
        provider.unwrap(wrapped, context)


def test_every_single_flipped_bit_of_a_wrapped_key_is_refused(provider: FileKeyProvider) -> None:
    wrapped = provider.wrap(DATA_KEY, CONTEXT)
    accepted = []
    for position in range(len(wrapped)):
        for bit in range(8):
            tampered = bytearray(wrapped)
            tampered[position] ^= 1 << bit
            try:
                provider.unwrap(bytes(tampered), CONTEXT)
            except VerificationError:
                continue
            accepted.append((position, bit))
    assert accepted == []


@pytest.mark.parametrize("keep", [0, 3, 4, 8, 20, 35, -1])
def test_a_truncated_wrapped_key_is_refused(provider: FileKeyProvider, keep: int) -> None:
    wrapped = provider.wrap(DATA_KEY, CONTEXT)
    with pytest.raises(VerificationError):
        provider.unwrap(wrapped[:keep], CONTEXT)


def test_a_wrapped_key_from_another_key_file_is_refused(
    provider: FileKeyProvider, tmp_path: Path
) -> None:
    other = FileKeyProvider.create(tmp_path / "other.key")
    with pytest.raises(VerificationError):
        provider.unwrap(other.wrap(DATA_KEY, CONTEXT), CONTEXT)


# --- rotation of the master key -----------------------------------------------------------------


def test_add_version_makes_a_new_active_key_and_keeps_the_old_ones_unwrapping(
    provider: FileKeyProvider, key_path: Path
) -> None:
    old = provider.wrap(DATA_KEY, CONTEXT)
    assert provider.add_version() == 2
    assert provider.active_version() == 2
    assert provider.versions() == [1, 2]
    new = provider.wrap(DATA_KEY, CONTEXT)
    assert int.from_bytes(old[4:8], "big") == 1
    assert int.from_bytes(new[4:8], "big") == 2
    assert provider.unwrap(old, CONTEXT) == DATA_KEY
    assert provider.unwrap(new, CONTEXT) == DATA_KEY
    # The file says the same to a process that reads it afresh.
    reread = FileKeyProvider(key_path)
    assert reread.versions() == [1, 2]
    assert reread.active_version() == 2
    assert reread.unwrap(old, CONTEXT) == DATA_KEY
    assert reread.unwrap(new, CONTEXT) == DATA_KEY


def test_add_version_leaves_an_owner_only_file_and_no_temporary_copy(
    provider: FileKeyProvider, key_path: Path
) -> None:
    provider.add_version()
    assert mode_of(key_path) == 0o600
    assert sorted(p.name for p in key_path.parent.iterdir()) == ["master.key"]
    provider.retire_others()
    assert mode_of(key_path) == 0o600
    assert sorted(p.name for p in key_path.parent.iterdir()) == ["master.key"]


def test_retire_others_makes_keys_wrapped_under_old_versions_unreadable(
    provider: FileKeyProvider, key_path: Path
) -> None:
    old = provider.wrap(DATA_KEY, CONTEXT)
    provider.add_version()
    new = provider.wrap(DATA_KEY, CONTEXT)
    old_secret = json.loads(key_path.read_text("utf-8"))["keys"]["1"]
    provider.retire_others()
    assert provider.versions() == [2]
    with pytest.raises(VerificationError):
        provider.unwrap(old, CONTEXT)
    assert provider.unwrap(new, CONTEXT) == DATA_KEY
    # Gone from the file too, not only from this process's memory.
    doc = json.loads(key_path.read_text("utf-8"))
    assert list(doc["keys"]) == ["2"]
    assert doc["active"] == 2
    assert old_secret not in key_path.read_text("utf-8")
    reread = FileKeyProvider(key_path)
    with pytest.raises(VerificationError):
        reread.unwrap(old, CONTEXT)
    assert reread.unwrap(new, CONTEXT) == DATA_KEY


def test_a_copy_of_the_old_key_file_cannot_unwrap_keys_wrapped_after_rotation(
    provider: FileKeyProvider, key_path: Path, tmp_path: Path
) -> None:
    stolen = tmp_path / "stolen.key"
    write_private(stolen, key_path.read_bytes())
    provider.add_version()
    provider.retire_others()
    new = provider.wrap(DATA_KEY, CONTEXT)
    thief = FileKeyProvider(stolen)
    with pytest.raises(VerificationError):
        thief.unwrap(new, CONTEXT)
    # Relabelling the blob as wrapped under version 1 does not help either.
    relabelled = new[:4] + (1).to_bytes(4, "big") + new[8:]
    with pytest.raises(VerificationError):
        thief.unwrap(relabelled, CONTEXT)
