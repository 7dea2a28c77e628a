"""Envelope encryption of personal fields and blind indexes for look-ups.

Fields are sealed with AES-256-GCM (NIST SP 800-38D) under a tenant's data key. The associated
data binds the ciphertext to its scope (the tenant), table, column and row, so a ciphertext copied
to another row, column or tenant does not decrypt. Nonces are 96 random bits; SP 800-38D §8.3 caps
a key at 2^32 such encryptions, which is why data keys rotate (``rempart keys rotate --data``).

Look-ups use blind indexes: HMAC-SHA-256 (RFC 2104) under a per-tenant, per-field key derived with
HKDF (RFC 5869), truncated to 128 bits. Without the key an index reveals nothing, so unlike an
unkeyed hash of a NIR it cannot be reversed by enumerating the ~2·10^8 candidates.
"""

from __future__ import annotations

import hmac
import os
import struct
import threading
from collections.abc import Mapping
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from rempart.errors import VerificationError

CIPHERTEXT_FORMAT = 1  # first byte of every sealed field
AAD_PREFIX = b"rempart/field/v1"
INDEX_INFO_PREFIX = b"rempart/blind-index/v1|"
INDEX_BYTES = 16
INDEX_SEPARATOR = "\x1f"  # unambiguous: the parts are validated to hold no control character
NONCE_BYTES = 12
_HEADER = struct.Struct(">BI")  # format, data key version


@lru_cache(maxsize=256)
def _aad_prefix(scope: str, table: str, column: str) -> bytes:
    # Length-prefixed, so that no two (scope, table, column, row) give the same bytes.
    parts = [p.encode() for p in (scope, table, column)]
    return AAD_PREFIX + b"".join(len(p).to_bytes(2, "big") + p for p in parts)


def _aad(scope: str, table: str, column: str, row: str, header: bytes) -> bytes:
    encoded = row.encode()
    return _aad_prefix(scope, table, column) + len(encoded).to_bytes(2, "big") + encoded + header


class _Nonces:
    """96-bit random nonces drawn from the OS in blocks (one system call per 1,024 nonces).

    A block is never shared with a forked child: a child that inherited it would repeat its
    nonces, and a repeated GCM nonce under one key gives away the authentication key.
    """

    _BLOCK = 1024

    def __init__(self) -> None:
        self._pid = -1
        self._block = b""
        self._next = 0
        self._lock = threading.Lock()  # one cipher serves every thread of a worker

    def take(self) -> bytes:
        with self._lock:
            return self._take()

    def _take(self) -> bytes:
        if self._next >= len(self._block) or self._pid != os.getpid():
            self._pid, self._block, self._next = (
                os.getpid(),
                os.urandom(NONCE_BYTES * self._BLOCK),
                0,
            )
        start = self._next
        self._next += NONCE_BYTES
        return self._block[start : start + NONCE_BYTES]


class FieldCipher:
    """Seals and opens the personal fields of one scope (a tenant, or the platform)."""

    def __init__(self, scope: str, data_keys: Mapping[int, bytes], active_version: int) -> None:
        self.scope = scope
        self.active_version = active_version
        self._keys = dict(data_keys)
        self._aead = {version: AESGCM(key) for version, key in data_keys.items()}
        self._nonces = _Nonces()

    def seal(self, table: str, column: str, row: str, plaintext: str) -> bytes:
        header = _HEADER.pack(CIPHERTEXT_FORMAT, self.active_version)
        nonce = self._nonces.take()
        aad = _aad(self.scope, table, column, row, header)
        return (
            header + nonce + self._aead[self.active_version].encrypt(nonce, plaintext.encode(), aad)
        )

    def open(self, table: str, column: str, row: str, sealed: bytes) -> str:
        where = f"{table}.{column} of row {row}"
        if len(sealed) < _HEADER.size + NONCE_BYTES + 16 or sealed[0] != CIPHERTEXT_FORMAT:
            raise VerificationError(f"expected a sealed field in {where}, got malformed bytes")
        header = sealed[: _HEADER.size]
        _, version = _HEADER.unpack(header)
        aead = self._aead.get(version)
        if aead is None:
            raise VerificationError(
                f"expected a data key of version {version} for {where}, "
                "got none (shredded or retired)"
            )
        nonce = sealed[_HEADER.size : _HEADER.size + NONCE_BYTES]
        try:
            plain = aead.decrypt(
                nonce,
                sealed[_HEADER.size + NONCE_BYTES :],
                _aad(self.scope, table, column, row, header),
            )
        except InvalidTag:
            raise VerificationError(
                f"expected {where} to authenticate under scope {self.scope}, got a ciphertext "
                "that does not (tampered, or moved from another row, column or tenant)"
            ) from None
        return plain.decode()

    def joined_with(self, newer: FieldCipher) -> FieldCipher:
        """A cipher that opens under both ciphers' keys and seals under ``newer``'s."""
        return FieldCipher(self.scope, {**self._keys, **newer._keys}, newer.active_version)

    @staticmethod
    def key_version(sealed: bytes) -> int:
        return int(_HEADER.unpack(sealed[: _HEADER.size])[1])


class BlindIndexer:
    """Keyed, truncated HMACs of field values, one derived key per field."""

    def __init__(self, index_key: bytes) -> None:
        self._root = index_key
        self._keys: dict[str, bytes] = {}

    def _key(self, field: str) -> bytes:
        key = self._keys.get(field)
        if key is None:
            key = self._keys[field] = HKDF(
                algorithm=hashes.SHA256(),
                length=32,
                salt=None,
                info=INDEX_INFO_PREFIX + field.encode(),
            ).derive(self._root)
        return key

    def index(self, field: str, *parts: str) -> bytes:
        """The blind index of ``parts``, joined by a separator that no part may contain."""
        message = INDEX_SEPARATOR.join(parts)
        if message.count(INDEX_SEPARATOR) != len(parts) - 1:
            raise ValueError("a blind-index part contains the separator (a control character)")
        return hmac.digest(self._key(field), message.encode(), "sha256")[:INDEX_BYTES]
