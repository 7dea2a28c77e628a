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

import hashlib
import hmac
import secrets
import struct
from collections.abc import Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from rempart.errors import VerificationError

CIPHERTEXT_FORMAT = 1  # first byte of every sealed field
AAD_PREFIX = b"rempart/field/v1"
INDEX_INFO_PREFIX = b"rempart/blind-index/v1|"
INDEX_BYTES = 16
NONCE_BYTES = 12
_HEADER = struct.Struct(">BI")  # format, data key version


def _aad(scope: str, table: str, column: str, row: str, header: bytes) -> bytes:
    return b"|".join(
        (AAD_PREFIX, scope.encode(), table.encode(), column.encode(), row.encode(), header)
    )


class FieldCipher:
    """Seals and opens the personal fields of one scope (a tenant, or the platform)."""

    def __init__(self, scope: str, data_keys: Mapping[int, bytes], active_version: int) -> None:
        self.scope = scope
        self.active_version = active_version
        self._aead = {version: AESGCM(key) for version, key in data_keys.items()}

    def seal(self, table: str, column: str, row: str, plaintext: str) -> bytes:
        header = _HEADER.pack(CIPHERTEXT_FORMAT, self.active_version)
        nonce = secrets.token_bytes(NONCE_BYTES)
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

    @staticmethod
    def key_version(sealed: bytes) -> int:
        return int(_HEADER.unpack(sealed[: _HEADER.size])[1])


class BlindIndexer:
    """Keyed, truncated HMACs of field values, one derived key per field."""

    def __init__(self, index_key: bytes) -> None:
        self._root = index_key
        self._macs: dict[str, hmac.HMAC] = {}

    def _mac(self, field: str) -> hmac.HMAC:
        mac = self._macs.get(field)
        if mac is None:
            key = HKDF(
                algorithm=hashes.SHA256(),
                length=32,
                salt=None,
                info=INDEX_INFO_PREFIX + field.encode(),
            ).derive(self._root)
            mac = self._macs[field] = hmac.new(key, digestmod=hashlib.sha256)
        return mac

    def index(self, field: str, *parts: str) -> bytes:
        """The blind index of ``parts``, length-prefixed so that no two inputs collide."""
        mac = self._mac(field).copy()
        for part in parts:
            data = part.encode()
            mac.update(struct.pack(">I", len(data)))
            mac.update(data)
        return mac.digest()[:INDEX_BYTES]
