"""Signed checkpoints of the access log.

A checkpoint is a C2SP tlog-checkpoint (https://c2sp.org/tlog-checkpoint) body::

    <origin>
    <tree size, decimal, no leading zeros>
    <base64 RFC 9162 root hash>
    [extension lines]

inside a C2SP signed note (https://c2sp.org/signed-note): the body, one blank line, then one
or more lines ``— <key name> <base64(4-byte key ID || signature)>``. Signatures are Ed25519
(RFC 8032) over the body including its final newline; the key ID is
``SHA-256(key name || 0x0A || 0x01 || 32-byte public key)[:4]``. An AMC keeps the log's
verifier key as one line, ``<name>+<hex key ID>+<base64(0x01 || public key)>``, and any
checkpoint it holds proves the log's contents at that size (see :mod:`rempart.ledger.merkle`).

Witnessing: an AMC that keeps a checkpoint checks a newer one against it with an RFC 9162
consistency proof (:func:`check_extends`), and an event against a kept checkpoint with an
inclusion proof (:func:`check_included`), offline, with nothing but the verifier key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from rempart.errors import InvalidInput, VerificationError
from rempart.ledger import merkle

SIGNATURE_PREFIX = "\u2014 "  # em dash, space: starts every signature line
ED25519_SIGNATURE_TYPE = b"\x01"  # signed-note signature type identifier for Ed25519
KEY_ID_SEPARATOR = b"\n"  # between key name and signature type in the key ID hash input
KEY_ID_SIZE = 4
ED25519_SIGNATURE_SIZE = 64
ROOT_HASH_SIZE = 32
MAX_TREE_SIZE = 2**64 - 1  # tree sizes are uint64 everywhere else (RFC 9162, tlog-tiles)
MAX_SIGNATURES = 100  # signed-note: verifiers must accept at least 16, should cap the count

_TREE_SIZE = re.compile(r"0|[1-9][0-9]{0,19}")  # ASCII digits only, no leading zeros
_HEX_KEY_ID = re.compile(r"[0-9a-fA-F]{8}")


@dataclass(frozen=True)
class Checkpoint:
    """A tree head: the log ``origin`` had ``size`` leaves with Merkle root ``root``."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        problem = _checkpoint_problem(self.origin, self.size, self.root, self.extensions)
        if problem:
            raise InvalidInput(problem, field="checkpoint")

    def body(self) -> str:
        """The note text that signatures cover."""
        lines = [
            self.origin,
            str(self.size),
            base64.b64encode(self.root).decode(),
            *self.extensions,
        ]
        return "".join(line + "\n" for line in lines)


def key_id(key_name: str, public_key: Ed25519PublicKey) -> bytes:
    """The 4-byte signed-note key ID of an Ed25519 key."""
    data = (
        key_name.encode()
        + KEY_ID_SEPARATOR
        + ED25519_SIGNATURE_TYPE
        + public_key.public_bytes_raw()
    )
    return hashlib.sha256(data).digest()[:KEY_ID_SIZE]


def sign_checkpoint(cp: Checkpoint, key_name: str, private_key: Ed25519PrivateKey) -> str:
    """The whole signed note of ``cp``, with one signature line."""
    body = cp.body()
    return body + "\n" + _signature_line(body, key_name, private_key)


def add_signature(note: str, key_name: str, private_key: Ed25519PrivateKey) -> str:
    """``note`` with one more signature line (key rotation, a second signer, a witness).

    Only the note's format is checked here: existing signatures are the opener's business.
    """
    body, _ = _split_note(note)
    _parse_body(body)
    return note + _signature_line(body, key_name, private_key)


def open_checkpoint(note: str, key_name: str, public_key: Ed25519PublicKey) -> Checkpoint:
    """Parse ``note`` strictly and return its checkpoint if ``key_name``/``public_key`` signed it.

    Signature lines of other keys are ignored, as signed-note requires; a signature line of this
    key that does not verify rejects the whole note, as signed-note recommends.
    """
    body, signatures = _split_note(note)
    want_id = key_id(key_name, public_key)
    verified = False
    for name, signed_id, signature in signatures:
        if name != key_name or signed_id != want_id:
            continue
        try:
            if len(signature) != ED25519_SIGNATURE_SIZE:
                raise InvalidSignature
            public_key.verify(signature, body.encode())
        except InvalidSignature:
            raise VerificationError(
                f"expected a valid Ed25519 signature by {key_name} ({want_id.hex()}), "
                "got an invalid one"
            ) from None
        verified = True
    if not verified:
        seen = ", ".join(f"{name} ({signed_id.hex()})" for name, signed_id, _ in signatures)
        raise VerificationError(
            f"expected a signature by {key_name} ({want_id.hex()}), got signatures by {seen}"
        )
    return _parse_body(body)


def verifier_key_string(key_name: str, public_key: Ed25519PublicKey) -> str:
    """The signed-note verifier key: ``<name>+<hex key ID>+<base64(0x01 || public key)>``."""
    problem = _key_name_problem(key_name)
    if problem:
        raise InvalidInput(problem, field="key_name")
    key = base64.b64encode(ED25519_SIGNATURE_TYPE + public_key.public_bytes_raw()).decode()
    return f"{key_name}+{key_id(key_name, public_key).hex()}+{key}"


def parse_verifier_key(s: str) -> tuple[str, Ed25519PublicKey]:
    """The key name and public key of a verifier key string; checks its key ID."""
    # Names hold no "+" but base64 may: split off the first two fields only.
    parts = s.strip().split("+", 2)
    if len(parts) != 3:
        raise InvalidInput(
            f"expected a verifier key <name>+<key ID>+<key>, got {len(parts)} fields",
            field="verifier_key",
        )
    name, hex_id, encoded = parts
    problem = _key_name_problem(name)
    if problem:
        raise InvalidInput(problem, field="verifier_key")
    if not _HEX_KEY_ID.fullmatch(hex_id):
        raise InvalidInput(
            f"expected a key ID of 8 hex digits, got {len(hex_id)} characters",
            field="verifier_key",
        )
    key = _b64decode(encoded)
    if key is None or len(key) != 1 + 32 or key[:1] != ED25519_SIGNATURE_TYPE:
        raise InvalidInput(
            "expected base64 of 0x01 and a 32-byte Ed25519 public key, got something else",
            field="verifier_key",
        )
    public_key = Ed25519PublicKey.from_public_bytes(key[1:])
    want_id = key_id(name, public_key).hex()
    if hex_id.lower() != want_id:
        raise InvalidInput(f"expected key ID {want_id}, got {hex_id}", field="verifier_key")
    return name, public_key


def open_log_checkpoint(note: str, key_name: str, public_key: Ed25519PublicKey) -> Checkpoint:
    """:func:`open_checkpoint`, and the checkpoint must name the log the key signs for.

    A log signs with its origin as key name: a note of another log (a test platform) signed by
    the same key must not pass for one of this log.
    """
    checkpoint = open_checkpoint(note, key_name, public_key)
    if checkpoint.origin != key_name:
        raise VerificationError(
            f"expected a checkpoint of the log {key_name}, got one of another log"
        )
    return checkpoint


def check_extends(old: Checkpoint, new: Checkpoint, proof: Sequence[bytes]) -> None:
    """Raise :class:`VerificationError` unless ``new`` extends ``old`` (RFC 9162 §2.1.4.2).

    Both checkpoints must already be opened with the log's key. Two roots signed for one size
    are a fork: the log showed different histories to different parties.
    """
    if old.origin != new.origin:
        raise VerificationError("expected two checkpoints of the same log, got two origins")
    if new.size < old.size:
        raise VerificationError(
            f"expected the newer checkpoint to be at least as large as the kept one ({old.size}), "
            f"got size {new.size}"
        )
    if old.size == new.size and old.root != new.root:
        raise VerificationError(f"two different roots are signed for size {old.size}: a fork")
    if old.size == 0:  # every tree extends the empty one: there is nothing to prove
        if proof:
            raise VerificationError(f"expected no proof from the empty tree, got {len(proof)}")
        return
    merkle.verify_consistency(old.size, new.size, old.root, new.root, proof)


def check_included(
    checkpoint: Checkpoint, index: int, event: bytes, proof: Sequence[bytes]
) -> None:
    """Raise :class:`VerificationError` unless ``event`` is leaf ``index`` of the checkpoint's
    tree (RFC 9162 §2.1.3.2); the leaf hash is recomputed from the event itself."""
    merkle.verify_inclusion(merkle.leaf_hash(event), index, checkpoint.size, proof, checkpoint.root)


# --- Helpers ------------------------------------------------------------------------------------


def _signature_line(body: str, key_name: str, private_key: Ed25519PrivateKey) -> str:
    problem = _key_name_problem(key_name)
    if problem:
        raise InvalidInput(problem, field="key_name")
    kid = key_id(key_name, private_key.public_key())
    signature = base64.b64encode(kid + private_key.sign(body.encode())).decode()
    return f"{SIGNATURE_PREFIX}{key_name} {signature}\n"


def _has_control(text: str) -> bool:
    return any(ord(c) < 0x20 for c in text)


def _key_name_problem(name: str) -> str | None:
    if not name:
        return "expected a non-empty key name, got an empty one"
    if any(c.isspace() or c == "+" or ord(c) < 0x20 for c in name):
        return "expected a key name without spaces, '+' or control characters, got one with"
    return None


def _checkpoint_problem(
    origin: str, size: int, root: bytes, extensions: tuple[str, ...]
) -> str | None:
    if not origin:
        return "expected a non-empty origin, got an empty one"
    if _has_control(origin):
        return "expected an origin without newlines or control characters, got one with"
    if not 0 <= size <= MAX_TREE_SIZE:
        return f"expected a tree size in [0, 2^64), got {size}"
    if len(root) != ROOT_HASH_SIZE:
        return f"expected a root hash of {ROOT_HASH_SIZE} bytes, got {len(root)} bytes"
    for i, line in enumerate(extensions):
        if not line or _has_control(line):
            return f"expected extension line {i} non-empty without control characters, got not"
    return None


def _b64decode(text: str) -> bytes | None:
    """Strict standard base64: canonical only, so each value has exactly one encoding."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if base64.b64encode(raw).decode() == text else None


def _split_note(note: str) -> tuple[str, list[tuple[str, bytes, bytes]]]:
    """The text and ``(key name, key ID, signature)`` of each signature line of a note."""
    try:
        note.encode()
    except UnicodeEncodeError:
        raise VerificationError("expected a note in valid UTF-8, got lone surrogates") from None
    if any(ord(c) < 0x20 and c != "\n" for c in note):
        raise VerificationError(
            "expected a note without control characters other than newline, got one"
        )
    if not note.endswith("\n"):
        raise VerificationError("expected a note ending with a newline, got none")
    lines = note[:-1].split("\n")
    # A checkpoint's lines are all non-empty, so the one blank line is the separator.
    blanks = [i for i, line in enumerate(lines) if not line]
    if len(blanks) != 1:
        raise VerificationError(
            f"expected exactly one blank line, before the signatures, got {len(blanks)}"
        )
    split = blanks[0]
    body = "".join(line + "\n" for line in lines[:split])
    signature_lines = lines[split + 1 :]
    if not signature_lines:
        raise VerificationError("expected at least one signature line, got none")
    if len(signature_lines) > MAX_SIGNATURES:
        raise VerificationError(
            f"expected at most {MAX_SIGNATURES} signature lines, got {len(signature_lines)}"
        )
    signatures: list[tuple[str, bytes, bytes]] = []
    for n, line in enumerate(signature_lines, start=1):
        fields = line.removeprefix(SIGNATURE_PREFIX).split(" ")
        if not line.startswith(SIGNATURE_PREFIX) or len(fields) != 2:
            raise VerificationError(
                f"expected signature line {n} as '— <name> <signature>', got another form"
            )
        name, encoded = fields
        problem = _key_name_problem(name)
        if problem:
            raise VerificationError(f"signature line {n}: {problem}")
        raw = _b64decode(encoded)
        if raw is None or len(raw) <= KEY_ID_SIZE:
            raise VerificationError(
                f"expected signature line {n} to hold base64 of a key ID and a signature, "
                "got something else"
            )
        signatures.append((name, raw[:KEY_ID_SIZE], raw[KEY_ID_SIZE:]))
    return body, signatures


def _parse_body(body: str) -> Checkpoint:
    lines = body[:-1].split("\n")
    if len(lines) < 3:
        raise VerificationError(f"expected at least 3 checkpoint lines, got {len(lines)}")
    origin, size_text, root_text, *extensions = lines
    if not _TREE_SIZE.fullmatch(size_text):
        raise VerificationError(
            "expected a tree size in decimal without leading zeros, got another form"
        )
    root = _b64decode(root_text)
    if root is None:
        raise VerificationError("expected a root hash in canonical base64, got something else")
    problem = _checkpoint_problem(origin, int(size_text), root, tuple(extensions))
    if problem:
        raise VerificationError(problem)
    return Checkpoint(origin, int(size_text), root, tuple(extensions))
