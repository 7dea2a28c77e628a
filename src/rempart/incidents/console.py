"""Incident response from the consoles: scopes run from the operators' console, each into a new
folder of its own under the platform's home, their notification packs, and each insurer's share
of the packs for its portal.

A scope folder is named by a random id (``<home>/incidents/<id>/``, mode 0700), the only thing an
address names: the criteria (ids, never an e-mail address), the counts and the packs are read back
from the folder's own ``scope.json`` and ``notification/summary.json``. An insurer's documents are
chosen from a fixed list by a code: no name or path from an address reaches the file system.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rempart.errors import Conflict, NotFound
from rempart.incidents import notify as notification
from rempart.incidents import scope as scoping
from rempart.platform import Platform

INCIDENTS = "incidents"
NOTIFICATION = "notification"
SUMMARY = "summary.json"
ATTESTATION = "attestation.json"
_SAFE_AMC = re.compile(r"[0-9A-Za-z]{1,20}")  # an AMC number: also a folder name of the pack
_VOLUME = re.compile(r"lettres-([0-9]{3})")  # a volume's code
_VOLUME_FILE = re.compile(r"lettres-art34-([0-9]{3})\.pdf")  # its name, as notify writes it


@dataclass(frozen=True)
class Document:
    """A file of an insurer's pack: its code in addresses, its name in the pack, and the fields
    of people it discloses (recorded in the ledger when it is downloaded)."""

    code: str
    name: str
    label: str
    media_type: str
    fields: tuple[str, ...] = ()


FIXED_DOCUMENTS = (
    Document(
        "cnil", "cnil-art33.pdf", "Projet de notification à la CNIL (art. 33)", "application/pdf"
    ),
    Document(
        "attestation",
        "attestation-integrite.pdf",
        "Attestation d'intégrité",
        "application/pdf",
    ),
    Document(
        "attestation-json", "attestation.json", "Attestation d'intégrité (JSON)", "application/json"
    ),
    Document(
        "publipostage",
        "publipostage.csv",
        "Fichier de publipostage",
        "text/csv",
        ("member_number", "birth_rank"),
    ),
)


def volume(number: int) -> Document:
    """The n-th volume of art. 34 letters (names, birth dates, member numbers)."""
    return Document(
        f"lettres-{number:03d}",
        f"lettres-art34-{number:03d}.pdf",
        f"Lettres aux personnes concernées (art. 34), volume {number}",
        "application/pdf",
        notification.IDENTITY_FIELDS,
    )


def document(code: str) -> Document:
    """The document a code names; anything else is not found."""
    for fixed in FIXED_DOCUMENTS:
        if fixed.code == code:
            return fixed
    found = _VOLUME.fullmatch(code)
    if found is None or int(found.group(1)) == 0:
        raise NotFound("no such document")
    return volume(int(found.group(1)))


# --- Reading the folders back -------------------------------------------------------------------


@dataclass(frozen=True)
class AmcRow:
    amc: str
    people: int
    reads: int
    fields: tuple[str, ...]
    first_read: datetime | None
    last_read: datetime | None


@dataclass(frozen=True)
class PackRow:
    amc: str
    name: str
    people: int
    unresolved: int
    letters: int
    files: tuple[str, ...]


@dataclass(frozen=True)
class Notified:
    """A scope's notification packs, once prepared."""

    at: datetime
    intact: bool
    problems: tuple[str, ...]
    packs: tuple[PackRow, ...]


@dataclass(frozen=True)
class ScopeView:
    id: uuid.UUID
    status: str  # complete | forced | refused
    generated_at: datetime
    since: datetime
    until: datetime
    accounts: tuple[str, ...]
    professionals: tuple[str, ...]
    networks: tuple[str, ...]
    intact: bool
    problems: tuple[str, ...]
    entries: tuple[int | None, int | None]
    checkpoint_size: int | None
    amcs: tuple[AmcRow, ...]
    notified: Notified | None

    @property
    def people(self) -> int:
        return sum(a.people for a in self.amcs)

    @property
    def reads(self) -> int:
        return sum(a.reads for a in self.amcs)


def incidents_home(platform: Platform) -> Path:
    return platform.settings.home / INCIDENTS


def _folder(platform: Platform, scope_id: uuid.UUID) -> Path:
    folder = incidents_home(platform) / scope_id.hex
    if not (folder / scoping.SCOPE_FILE).is_file():
        raise NotFound("no such scope")
    return folder


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _view(scope_id: uuid.UUID, folder: Path) -> ScopeView:
    data = scoping.load_scope(folder)
    criteria, ledger = data["criteria"], data["ledger"]
    checkpoint = ledger.get("checkpoint")
    entries = ledger.get("entries_verified") or {}
    return ScopeView(
        id=scope_id,
        status=data["status"],
        generated_at=datetime.fromisoformat(data["generated_at"]),
        since=datetime.fromisoformat(criteria["from"]),
        until=datetime.fromisoformat(criteria["to"]),
        accounts=tuple(criteria["accounts"]),
        professionals=tuple(criteria["professionals"]),
        networks=tuple(criteria["networks"]),
        intact=bool(ledger["intact"]),
        problems=tuple(ledger["problems"]),
        entries=(entries.get("first"), entries.get("last")),
        checkpoint_size=checkpoint["size"] if checkpoint else None,
        amcs=tuple(
            AmcRow(
                a["amc"],
                a["people"],
                a["reads"],
                tuple(a["fields"]),
                _time(a["first_read"]),
                _time(a["last_read"]),
            )
            for a in data["amcs"]
        ),
        notified=_notified(folder / NOTIFICATION / SUMMARY),
    )


def _notified(summary: Path) -> Notified | None:
    if not summary.is_file():
        return None
    data: dict[str, Any] = json.loads(summary.read_text())
    return Notified(
        at=datetime.fromtimestamp(summary.stat().st_mtime, UTC),
        intact=bool(data["intact"]),
        problems=tuple(data["problems"]),
        packs=tuple(
            PackRow(
                p["amc"], p["name"], p["people"], p["unresolved"], p["letters"], tuple(p["files"])
            )
            for p in data["amcs"]
        ),
    )


def _scope_ids(platform: Platform) -> list[uuid.UUID]:
    """The ids of the scope folders under the home (anything else there is ignored)."""
    home = incidents_home(platform)
    if not home.is_dir():
        return []
    found = []
    for entry in home.iterdir():
        try:
            scope_id = uuid.UUID(hex=entry.name)
        except ValueError:
            continue
        if entry.name == scope_id.hex and (entry / scoping.SCOPE_FILE).is_file():
            found.append(scope_id)
    return found


def scopes(platform: Platform) -> list[ScopeView]:
    """Every scope run from the console, newest first."""
    views = [_view(i, incidents_home(platform) / i.hex) for i in _scope_ids(platform)]
    return sorted(views, key=lambda v: v.generated_at, reverse=True)


def scope_view(platform: Platform, scope_id: uuid.UUID) -> ScopeView:
    return _view(scope_id, _folder(platform, scope_id))


# --- Running ------------------------------------------------------------------------------------


def run_scope(
    platform: Platform,
    since: datetime,
    until: datetime,
    accounts: Sequence[str] = (),
    professionals: Sequence[str] = (),
    ips: Sequence[str] = (),
) -> ScopeView:
    """Check the criteria (nothing is written if they are wrong), then scope into a new folder."""
    criteria = scoping.resolve_criteria(platform, since, until, accounts, professionals, ips)
    home = incidents_home(platform)
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    scope_id = uuid.uuid4()
    scoping.scope(platform, criteria, home / scope_id.hex)
    return scope_view(platform, scope_id)


def prepare_notifications(
    platform: Platform, scope_id: uuid.UUID, actor: str, contact: str | None = None
) -> ScopeView:
    """Write the scope's notification packs (identities read: recorded by ``notify``)."""
    folder = _folder(platform, scope_id)
    if (folder / NOTIFICATION).exists():
        raise Conflict("the notifications of this scope were already prepared")
    notification.notify(platform, folder, actor=actor, contact=contact or None)
    return scope_view(platform, scope_id)


# --- An insurer's packs -------------------------------------------------------------------------


@dataclass(frozen=True)
class InsurerPack:
    """An incident notice for one insurer: its pack in one scope."""

    scope_id: uuid.UUID
    prepared_at: datetime
    since: datetime
    until: datetime
    people: int
    letters: int
    unresolved: int
    documents: tuple[Document, ...]


def _pack_folder(platform: Platform, amc: str, scope_id: uuid.UUID) -> Path:
    if not _SAFE_AMC.fullmatch(amc):
        raise NotFound("no such pack")
    folder = incidents_home(platform) / scope_id.hex / NOTIFICATION / amc
    if not (folder / ATTESTATION).is_file():
        raise NotFound("no such pack")
    return folder


def _documents(files: Sequence[str]) -> tuple[Document, ...]:
    numbers = sorted(int(m.group(1)) for f in files if (m := _VOLUME_FILE.fullmatch(f)))
    return (*(volume(n) for n in numbers), *(d for d in FIXED_DOCUMENTS if d.name in files))


def packs_for(platform: Platform, amc: str) -> list[InsurerPack]:
    """The packs prepared for this insurer, newest first."""
    found = []
    for scope_id in _scope_ids(platform):
        summary = incidents_home(platform) / scope_id.hex / NOTIFICATION / SUMMARY
        notified = _notified(summary)
        pack = next((p for p in notified.packs if p.amc == amc), None) if notified else None
        if notified is None or pack is None:
            continue
        attestation = json.loads((_pack_folder(platform, amc, scope_id) / ATTESTATION).read_text())
        window = attestation["window"]
        found.append(
            InsurerPack(
                scope_id,
                notified.at,
                datetime.fromisoformat(window["from"]),
                datetime.fromisoformat(window["to"]),
                pack.people,
                pack.letters,
                pack.unresolved,
                _documents(pack.files),
            )
        )
    return sorted(found, key=lambda p: p.prepared_at, reverse=True)


def pack_document(
    platform: Platform, amc: str, scope_id: uuid.UUID, code: str
) -> tuple[Path, Document]:
    """One file of this insurer's pack in this scope, by its code: another insurer's pack, an
    unknown code or a file the pack lacks are all "not found"."""
    wanted = document(code)
    path = _pack_folder(platform, amc, scope_id) / wanted.name
    if not path.is_file():
        raise NotFound("no such document")
    return path, wanted
