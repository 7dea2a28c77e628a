"""Master keys: the keys that wrap the data keys, kept outside the database.

A ``KeyProvider`` wraps and unwraps data keys. ``FileKeyProvider`` keeps its master keys in a
file readable by its owner only (mode 0600); a KMS (Vault transit, a cloud KMS) is another
provider with the same three methods. Wrapping is AES-256-GCM (NIST SP 800-38D) with the data key's
identity as associated data, so a wrapped key cannot be moved to another tenant or version.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import stat
import struct
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from rempart.errors import ConfigurationError, VerificationError

FILE_FORMAT = "rempart-master-keys/1"
WRAP_MAGIC = b"RMW1"  # wrapped-key blob: magic, master version (uint32), nonce, ciphertext
KEY_BYTES = 32
NONCE_BYTES = 12


class KeyProvider(Protocol):
    """Wraps data keys under a master key that never enters the database."""

    def wrap(self, key: bytes, context: bytes) -> bytes: ...

    def unwrap(self, blob: bytes, context: bytes) -> bytes: ...

    def active_version(self) -> int: ...

    def add_version(self) -> int:
        """Make a new master key the active one; older ones still unwrap."""
        ...

    def retire_others(self) -> None:
        """Forget every master key but the active one."""
        ...


class FileKeyProvider:
    """Master keys in a local JSON file, one active version and possibly older ones."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._keys, self._active = _read_key_file(path)

    @classmethod
    def create(cls, path: Path) -> FileKeyProvider:
        """Write a new key file with one random master key; refuse to overwrite one."""
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_key_file(path, {1: secrets.token_bytes(KEY_BYTES)}, active=1, exclusive=True)
        return cls(path)

    def _reload(self) -> None:
        """Read the file again: another process (``rempart keys rotate``) may have changed it."""
        self._keys, self._active = _read_key_file(self.path)

    def active_version(self) -> int:
        self._reload()
        return self._active

    def versions(self) -> list[int]:
        return sorted(self._keys)

    def wrap(self, key: bytes, context: bytes) -> bytes:
        # Wrapping is rare (a new tenant, a rotation); never wrap under a retired master key.
        self._reload()
        nonce = secrets.token_bytes(NONCE_BYTES)
        header = WRAP_MAGIC + struct.pack(">I", self._active)
        sealed = AESGCM(self._keys[self._active]).encrypt(nonce, key, header + context)
        return header + nonce + sealed

    def unwrap(self, blob: bytes, context: bytes) -> bytes:
        if blob[:4] != WRAP_MAGIC or len(blob) < 8 + NONCE_BYTES + 16:
            raise VerificationError("expected a wrapped key blob, got something else")
        (version,) = struct.unpack(">I", blob[4:8])
        if version not in self._keys:
            self._reload()
        master = self._keys.get(version)
        if master is None:
            raise VerificationError(
                f"expected a master key of version {version} in {self.path.name}, "
                f"got versions {self.versions()}"
            )
        nonce, sealed = blob[8 : 8 + NONCE_BYTES], blob[8 + NONCE_BYTES :]
        try:
            return AESGCM(master).decrypt(nonce, sealed, blob[:8] + context)
        except InvalidTag:
            raise VerificationError(
                "expected a wrapped key that authenticates under its master key and context, "
                "got one that does not"
            ) from None

    def add_version(self) -> int:
        """Add a new master key and make it active; older ones stay until ``retire_others``."""
        self._reload()
        version = max(self._keys) + 1
        keys = {**self._keys, version: secrets.token_bytes(KEY_BYTES)}
        _write_key_file(self.path, keys, active=version)
        self._keys, self._active = keys, version
        return version

    def retire_others(self) -> None:
        """Keep only the active master key (call once nothing is wrapped under the others)."""
        keys = {self._active: self._keys[self._active]}
        _write_key_file(self.path, keys, active=self._active)
        self._keys = keys


def _read_key_file(path: Path) -> tuple[dict[int, bytes], int]:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise ConfigurationError(
            f"master key file {path} does not exist: run `rempart init` to create one"
        ) from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigurationError(
            f"master key file {path} is open to group or others (mode {stat.S_IMODE(mode):o}): "
            f"run `chmod 600 {path}`"
        )
    try:
        doc = json.loads(path.read_text("utf-8"))
        if doc.get("format") != FILE_FORMAT:
            raise ValueError("unknown format")
        keys = {int(v): base64.b64decode(k, validate=True) for v, k in doc["keys"].items()}
        active = int(doc["active"])
        if active not in keys or any(len(k) != KEY_BYTES for k in keys.values()):
            raise ValueError("inconsistent keys")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigurationError(
            f"master key file {path} is not a valid key file ({exc})"
        ) from None
    return keys, active


def _write_key_file(
    path: Path, keys: dict[int, bytes], active: int, exclusive: bool = False
) -> None:
    doc = {
        "format": FILE_FORMAT,
        "active": active,
        "keys": {str(v): base64.b64encode(k).decode() for v, k in sorted(keys.items())},
    }
    data = (json.dumps(doc, indent=2) + "\n").encode()
    if exclusive:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise ConfigurationError(f"master key file {path} already exists") from None
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            os.fsync(f.fileno())
        return
    # Write beside, then rename: a crash leaves either the old file or the new one, never half.
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)  # a leftover file would keep its own, maybe wider, mode
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        os.fsync(f.fileno())
    os.replace(tmp, path)
