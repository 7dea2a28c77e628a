"""C2SP signed-note checkpoints: round trip, tampering, key IDs, verifier keys."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from rempart.errors import InvalidInput, VerificationError
from rempart.ledger.checkpoint import (
    Checkpoint,
    add_signature,
    check_extends,
    check_included,
    key_id,
    open_checkpoint,
    open_log_checkpoint,
    parse_verifier_key,
    sign_checkpoint,
    verifier_key_string,
)
from rempart.ledger.merkle import EMPTY_ROOT, MemoryTree, leaf_hash, root_hash

NAME = "rempart.example/access-log"
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
OTHER_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
ROOT = root_hash([leaf_hash(bytes([i])) for i in range(5)])
CP = Checkpoint(NAME, 5, ROOT)


def _note() -> str:
    return sign_checkpoint(CP, NAME, KEY)


def test_round_trip() -> None:
    note = _note()
    body, _, signature_line = note.partition("\n\n")
    assert body + "\n" == f"{NAME}\n5\n{base64.b64encode(ROOT).decode()}\n"
    assert signature_line.startswith(f"\u2014 {NAME} ")
    assert signature_line.endswith("\n")
    assert signature_line.count("\n") == 1
    assert open_checkpoint(note, NAME, KEY.public_key()) == CP


def test_signature_covers_the_body_with_its_newline() -> None:
    note = _note()
    body, _, line = note.partition("\n\n")
    raw = base64.b64decode(line.removeprefix(f"\u2014 {NAME} ").rstrip("\n"))
    KEY.public_key().verify(raw[4:], (body + "\n").encode())  # raises if not


def test_key_id_matches_signed_note_definition() -> None:
    public = KEY.public_key().public_bytes_raw()
    want = hashlib.sha256(NAME.encode() + b"\x0a" + b"\x01" + public).digest()[:4]
    assert key_id(NAME, KEY.public_key()) == want
    line = _note().split("\n\n")[1]
    assert base64.b64decode(line.split(" ")[2])[:4] == want


def _flip_signature_byte(note: str) -> str:
    body, _, line = note.partition("\n\n")
    prefix, encoded = line.rstrip("\n").rsplit(" ", 1)
    raw = bytearray(base64.b64decode(encoded))
    raw[10] ^= 0x01  # inside the signature, after the 4-byte key ID
    return f"{body}\n\n{prefix} {base64.b64encode(bytes(raw)).decode()}\n"


def _replace_line(note: str, index: int, new: str) -> str:
    lines = note.split("\n")
    lines[index] = new
    return "\n".join(lines)


TAMPERED: dict[str, Callable[[str], str]] = {
    "flipped-signature-byte": _flip_signature_byte,
    "size-changed": lambda note: _replace_line(note, 1, "6"),
    "root-changed": lambda note: _replace_line(note, 2, base64.b64encode(bytes(32)).decode()),
    "origin-changed": lambda note: _replace_line(note, 0, "evil.example/log"),
    "extra-blank-line-before-signatures": lambda note: note.replace("\n\n", "\n\n\n"),
    "extra-blank-line-in-body": lambda note: note.replace("\n", "\n\n", 1),
    "blank-line-at-end": lambda note: note + "\n",
    "no-final-newline": lambda note: note.rstrip("\n"),
    "size-leading-zero": lambda note: _replace_line(note, 1, "05"),
    "extension-line-added": lambda note: note.replace("\n\n", "\nextra\n\n"),
    "no-signature": lambda note: note.split("\n\n")[0] + "\n\n",
    "hyphen-instead-of-em-dash": lambda note: note.replace("\u2014", "-"),
    "carriage-return": lambda note: note.replace("\n", "\r\n"),
    "two-spaces-in-signature-line": lambda note: note.replace("\u2014 ", "\u2014  "),
}


@pytest.mark.parametrize("tamper", TAMPERED.values(), ids=TAMPERED.keys())
def test_tampered_note_is_rejected(tamper: Callable[[str], str]) -> None:
    with pytest.raises(VerificationError, match=r"^expected|^signature line"):
        open_checkpoint(tamper(_note()), NAME, KEY.public_key())


def test_another_key_is_rejected() -> None:
    with pytest.raises(VerificationError, match=r"^expected a signature by"):
        open_checkpoint(_note(), NAME, OTHER_KEY.public_key())


def test_wrong_key_name_is_rejected() -> None:
    with pytest.raises(VerificationError, match=r"^expected a signature by"):
        open_checkpoint(_note(), "rempart.example/other", KEY.public_key())


def test_signed_by_another_key_under_the_same_name_is_rejected() -> None:
    note = sign_checkpoint(CP, NAME, OTHER_KEY)
    with pytest.raises(VerificationError, match=r"^expected a signature by"):
        open_checkpoint(note, NAME, KEY.public_key())


def test_two_signers_open_with_either_key() -> None:
    witness = "witness.example/amc-1"
    note = add_signature(_note(), witness, OTHER_KEY)
    assert note.count("\u2014 ") == 2
    assert open_checkpoint(note, NAME, KEY.public_key()) == CP
    assert open_checkpoint(note, witness, OTHER_KEY.public_key()) == CP


def test_unknown_signatures_are_ignored_even_if_malformed_for_us() -> None:
    # An unknown key's line (here: a 10-byte "signature") is skipped, not verified.
    stranger = f"\u2014 stranger.example {base64.b64encode(bytes(14)).decode()}\n"
    assert open_checkpoint(_note() + stranger, NAME, KEY.public_key()) == CP


def test_bad_known_signature_rejects_even_with_a_good_one() -> None:
    note = _note()
    bad_line = _flip_signature_byte(note).split("\n\n")[1]
    with pytest.raises(VerificationError, match="got an invalid one"):
        open_checkpoint(note + bad_line, NAME, KEY.public_key())


def test_extensions_round_trip() -> None:
    cp = Checkpoint(NAME, 0, hashlib.sha256(b"").digest(), ("note one", "note two"))
    note = sign_checkpoint(cp, NAME, KEY)
    assert note.startswith(f"{NAME}\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n")
    assert open_checkpoint(note, NAME, KEY.public_key()) == cp


@pytest.mark.parametrize(
    ("origin", "size", "root"),
    [("", 1, ROOT), ("a\nb", 1, ROOT), (NAME, -1, ROOT), (NAME, 2**64, ROOT), (NAME, 1, ROOT[:31])],
    ids=["empty-origin", "newline-in-origin", "negative-size", "size-overflow", "short-root"],
)
def test_invalid_checkpoint_cannot_be_built(origin: str, size: int, root: bytes) -> None:
    with pytest.raises(InvalidInput, match=r"^expected"):
        Checkpoint(origin, size, root)


@pytest.mark.parametrize("name", ["", "has space", "has+plus"])
def test_invalid_key_name_cannot_sign(name: str) -> None:
    with pytest.raises(InvalidInput, match=r"^expected"):
        sign_checkpoint(CP, name, KEY)


def test_verifier_key_round_trip() -> None:
    vkey = verifier_key_string(NAME, KEY.public_key())
    name, hex_id, encoded = vkey.split("+", 2)
    assert name == NAME
    assert hex_id == key_id(NAME, KEY.public_key()).hex()
    assert base64.b64decode(encoded) == b"\x01" + KEY.public_key().public_bytes_raw()
    parsed_name, parsed_key = parse_verifier_key(vkey + "\n")
    assert parsed_name == NAME
    assert parsed_key.public_bytes_raw() == KEY.public_key().public_bytes_raw()
    assert open_checkpoint(_note(), parsed_name, parsed_key) == CP


def test_verifier_key_of_the_signed_note_spec() -> None:
    # The example verifier key of golang.org/x/mod/sumdb/note, a signed-note implementation.
    vkey = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
    name, public_key = parse_verifier_key(vkey)
    assert name == "PeterNeumann"
    assert key_id(name, public_key).hex() == "c74f20a3"


@pytest.mark.parametrize(
    "vkey",
    [
        "nameonly",
        "name+c74f20a3",
        "bad name+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a3+AhpDc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T",
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T",
    ],
    ids=["one-field", "two-fields", "space-in-name", "wrong-id", "short-id", "type", "short-key"],
)
def test_bad_verifier_key_is_rejected(vkey: str) -> None:
    with pytest.raises(InvalidInput, match=r"^expected"):
        parse_verifier_key(vkey)


def _sign_raw(body: str) -> str:
    """A note over any body, validly signed: the parser alone must reject a bad body."""
    signature = key_id(NAME, KEY.public_key()) + KEY.sign(body.encode())
    return f"{body}\n\u2014 {NAME} {base64.b64encode(signature).decode()}\n"


ROOT_B64 = base64.b64encode(ROOT).decode()
MALFORMED_BODIES = {
    "size-leading-zero": f"{NAME}\n05\n{ROOT_B64}\n",
    "size-plus-sign": f"{NAME}\n+5\n{ROOT_B64}\n",
    "size-unicode-digit": f"{NAME}\n\u0665\n{ROOT_B64}\n",
    "size-too-large": f"{NAME}\n18446744073709551616\n{ROOT_B64}\n",
    "root-short": f"{NAME}\n5\n{base64.b64encode(ROOT[:31]).decode()}\n",
    "root-unpadded": f"{NAME}\n5\n{ROOT_B64.rstrip('=')}\n",
    "root-non-canonical": f"{NAME}\n5\n{ROOT_B64[:-2]}V=\n",
    "empty-origin": f"\n5\n{ROOT_B64}\n",
    "two-lines": f"{NAME}\n5\n",
}


@pytest.mark.parametrize("body", MALFORMED_BODIES.values(), ids=MALFORMED_BODIES.keys())
def test_signed_but_malformed_body_is_rejected(body: str) -> None:
    with pytest.raises(VerificationError, match=r"^expected"):
        open_checkpoint(_sign_raw(body), NAME, KEY.public_key())


def test_raw_signing_helper_is_faithful() -> None:
    assert _sign_raw(CP.body()) == _note()


# --- witnessing: a kept checkpoint against a newer one, an event against a kept checkpoint -----

EVENTS = [f"event {i}".encode() for i in range(40)]
TREE = MemoryTree([leaf_hash(e) for e in EVENTS])


def _at(size: int) -> Checkpoint:
    return Checkpoint(NAME, size, TREE.root(size))


def test_a_checkpoint_of_another_log_signed_by_the_same_key_is_refused() -> None:
    assert open_log_checkpoint(_note(), NAME, KEY.public_key()) == CP
    other_log = sign_checkpoint(Checkpoint("rempart.example/staging", 5, ROOT), NAME, KEY)
    with pytest.raises(VerificationError, match="of another log"):
        open_log_checkpoint(other_log, NAME, KEY.public_key())


@pytest.mark.parametrize(("old", "new"), [(1, 1), (1, 40), (7, 8), (16, 33), (39, 40), (0, 9)])
def test_an_honest_extension_is_accepted(old: int, new: int) -> None:
    proof = TREE.consistency_proof(old, new) if old else []
    kept = _at(old) if old else Checkpoint(NAME, 0, EMPTY_ROOT)
    check_extends(kept, _at(new), proof)


def test_a_rewritten_history_is_not_an_extension() -> None:
    forged = MemoryTree(
        [leaf_hash(b"forged") if i == 3 else leaf_hash(e) for i, e in enumerate(EVENTS)]
    )
    new = Checkpoint(NAME, 40, forged.root(40))
    with pytest.raises(VerificationError, match="expected root1"):
        check_extends(_at(10), new, forged.consistency_proof(10, 40))


def test_two_roots_for_one_size_are_a_fork() -> None:
    with pytest.raises(VerificationError, match="two different roots are signed for size 10"):
        check_extends(_at(10), Checkpoint(NAME, 10, TREE.root(11)), [])


@pytest.mark.parametrize(
    ("old", "new", "match"),
    [
        (_at(10), _at(5), "at least as large"),
        (_at(10), Checkpoint("rempart.example/other", 20, TREE.root(20)), "same log"),
        (Checkpoint(NAME, 0, EMPTY_ROOT), _at(5), "no proof from the empty tree"),
    ],
    ids=["shrunk", "other-log", "proof-from-empty"],
)
def test_what_is_not_an_extension_says_why(old: Checkpoint, new: Checkpoint, match: str) -> None:
    with pytest.raises(VerificationError, match=match):
        check_extends(old, new, [ROOT])


def test_an_event_is_proved_against_a_kept_checkpoint_and_a_forged_one_is_not() -> None:
    kept = _at(33)
    for index in (0, 17, 32):
        proof = TREE.inclusion_proof(index, 33)
        check_included(kept, index, EVENTS[index], proof)
        with pytest.raises(VerificationError, match="expected root"):
            check_included(kept, index, EVENTS[index] + b" ", proof)
    with pytest.raises(VerificationError):
        check_included(kept, 35, EVENTS[35], TREE.inclusion_proof(35, 40))
