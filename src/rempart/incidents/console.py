"""Incident response from the consoles: scopes run from the operators' console, each into a new
folder of its own under the platform's home, their notification packs, and each insurer's share
of the packs for its portal.

A scope folder is named by a random id (``<home>/incidents/<id>/``, mode 0700), the only thing an
address names: the criteria (ids, never an e-mail address), the counts and the packs are read back
from the folder's own ``scope.json`` and ``notification/summary.json``. An insurer's documents are
chosen from a fixed list by a code: no name or path from an address reaches the file system.
A folder that cannot be read (cut short, edited by hand) is left out of the lists, logged by its
id only; the others are still shown.
"""

from __future__ import annotations

import json
import re
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import structlog

from rempart.db import transaction, utcnow
from rempart.errors import Error, InvalidInput, NotFound
from rempart.identity.auth import Client
from rempart.incidents import notify as notification
from rempart.incidents import scope as scoping
from rempart.ledger.events import AccessEvent, Tag
from rempart.ledger.services import append_events
from rempart.platform import Platform

log = structlog.get_logger("rempart")

INCIDENTS = "incidents"
NOTIFICATION = notification.NOTIFICATION
SUMMARY = notification.SUMMARY
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


# What a hand-edited or truncated file raises when its fields are read.
_BROKEN = (Error, OSError, ValueError, KeyError, TypeError, AttributeError)


def _view(scope_id: uuid.UUID, folder: Path) -> ScopeView:
    data = scoping.load_scope(folder)
    try:
        return _read_view(scope_id, folder, data)
    except (KeyError, TypeError, ValueError, AttributeError):
        raise InvalidInput("this scope's files are incomplete", field="scope") from None


def _read_view(scope_id: uuid.UUID, folder: Path, data: dict[str, Any]) -> ScopeView:
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
    """A folder's packs, or None if there are none (or none that can be read: logged)."""
    if not summary.is_file():
        return None
    try:
        return _read_notified(summary)
    except _BROKEN as exc:
        log.warning(
            "incident pack summary unreadable",
            scope=summary.parent.parent.name,
            error=type(exc).__name__,
        )
        return None


def _read_notified(summary: Path) -> Notified:
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
    """Every scope run from the console that can be read, newest first."""
    views = []
    for scope_id in _scope_ids(platform):
        try:
            views.append(_view(scope_id, incidents_home(platform) / scope_id.hex))
        except _BROKEN as exc:  # the others are still listed
            log.warning("incident scope unreadable", scope=scope_id.hex, error=type(exc).__name__)
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
    try:
        scoping.scope(platform, criteria, home / scope_id.hex)
    except BaseException:
        shutil.rmtree(home / scope_id.hex, ignore_errors=True)  # no half scope left behind
        raise
    return scope_view(platform, scope_id)


def prepare_notifications(
    platform: Platform, scope_id: uuid.UUID, actor: str, contact: str | None = None
) -> ScopeView:
    """Write the scope's notification packs (identities read: recorded by ``notify``). One run
    at a time, once: a second request while the first runs, or after it, is a conflict; a run
    that failed part-way left no pack, and the next one starts again."""
    folder = _folder(platform, scope_id)
    notification.notify(
        platform, folder, actor=actor, contact=contact or None, replace_incomplete=True
    )
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
    """The packs prepared for this insurer that can be read, newest first."""
    found = []
    for scope_id in _scope_ids(platform):
        try:
            pack = _insurer_pack(platform, amc, scope_id)
        except _BROKEN as exc:  # one bad pack hides itself, not the others
            log.warning("incident pack unreadable", scope=scope_id.hex, error=type(exc).__name__)
            continue
        if pack is not None:
            found.append(pack)
    return sorted(found, key=lambda p: p.prepared_at, reverse=True)


def _insurer_pack(platform: Platform, amc: str, scope_id: uuid.UUID) -> InsurerPack | None:
    notified = _notified(incidents_home(platform) / scope_id.hex / NOTIFICATION / SUMMARY)
    pack = next((p for p in notified.packs if p.amc == amc), None) if notified else None
    if notified is None or pack is None:
        return None
    attestation = json.loads((_pack_folder(platform, amc, scope_id) / ATTESTATION).read_text())
    window = attestation["window"]
    return InsurerPack(
        scope_id,
        notified.at,
        datetime.fromisoformat(window["from"]),
        datetime.fromisoformat(window["to"]),
        pack.people,
        pack.letters,
        pack.unresolved,
        _documents(pack.files),
    )


def pack_document(
    platform: Platform, actor: str, amc: str, client: Client, scope_id: uuid.UUID, code: str
) -> tuple[Path, Document]:
    """One file of this insurer's pack in this scope, by its code: another insurer's pack, an
    unknown code or a file the pack lacks are all "not found". The download is committed to the
    ledger before the file is given: one event per person the file names (by pseudonym), or one
    event for a file that names no one."""
    wanted = document(code)
    folder = _pack_folder(platform, amc, scope_id)
    path = folder / wanted.name
    if not path.is_file():
        raise NotFound("no such document")
    people: list[str | None] = [None]
    if wanted.fields:
        people = [*_disclosed(folder, amc, wanted.name)] or [None]
    now = utcnow()
    events = [
        AccessEvent(
            at=now,
            tag=Tag.NOTIFICATION_DOWNLOADED,
            actor=actor,
            outcome="downloaded",
            purpose=f"incident notification pack {scope_id.hex}: {wanted.name}",
            organisation=amc,
            tenant=amc,
            beneficiary=pseudonym,
            fields=wanted.fields,
            ip=client.ip,
            user_agent=client.user_agent,
        )
        for pseudonym in people
    ]
    with transaction(platform.sessions) as session:
        append_events(session, events)
    return path, wanted


def _disclosed(folder: Path, amc: str, name: str) -> list[str]:
    """The pseudonyms of the people a file of the pack names, as ``notify`` listed them; for a
    pack without that list, everyone of this insurer in the scope (never fewer than named)."""
    try:
        listed = json.loads((folder / notification.DISCLOSED).read_text())[name]
        if isinstance(listed, list) and all(isinstance(p, str) for p in listed):
            return listed
    except (OSError, ValueError, KeyError, TypeError):
        pass
    scope_file = folder.parent.parent / scoping.amc_file(amc, "parquet")
    return [
        str(p) for p in pq.read_table(scope_file, columns=["pseudonym"])["pseudonym"].to_pylist()
    ]
