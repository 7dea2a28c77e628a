"""Notification packs from a scope (GDPR art. 33 and 34), one per insurer: the data controller.

For each insurer of the scope: the art. 33 draft for the CNIL (nature of the breach, categories
and numbers of people and records, contact point, likely consequences, measures), the art. 34
letters to the people read, merged into PDF volumes with an index for the insurer's mailing, and
an integrity attestation (the ledger and every business row verified, the checkpoint cited).

The scope holds pseudonyms. The letters need names: each insurer's beneficiaries are found by
recomputing their pseudonyms (the keyed function the ledger uses, ``registry.lookups``), then
their identities are opened. That is a read of personal data: one ``incident:notification:prepare``
event per person is committed to the ledger before any letter is written. The member file holds
no postal address: letters are addressed "to the attention of" the person with the insurer's
mailing reference (member number and rank), and the insurer merges its addresses.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import pyarrow.parquet as pq
from sqlalchemy import select

from rempart.dates import PARIS, paris_day
from rempart.db import transaction, utcnow
from rempart.errors import Conflict, IntegrityFailure, InvalidInput
from rempart.incidents import containment
from rempart.incidents.scope import load_scope, private_file, sha256_file, write_private
from rempart.integrity.verify import IntegrityReport, verify_integrity
from rempart.ledger.checkpoint import verifier_key_string
from rempart.ledger.events import AccessEvent, Tag
from rempart.ledger.services import append_events, make_checkpoint, public_key, verify_ledger
from rempart.platform import Platform
from rempart.registry.identity import Identity
from rempart.registry.models import Beneficiary, Member, Tenant

PSEUDONYM = "pseudonym"  # the blind-index field of ledger pseudonyms (registry.lookups)
IDENTITY_FIELDS = ("last_name", "first_name", "birth_date", "member_number")
LETTERS_PER_VOLUME = 1000
BATCH = 1000
NOTIFICATION = "notification"  # the pack's folder in the scope's, unless told otherwise
SUMMARY = "summary.json"  # written last: a pack folder holding it is complete
DISCLOSED = "disclosed.json"  # per file of an insurer's pack, the pseudonyms of the people named

# What each disclosed field means, for the person concerned (art. 34: plain language).
FIELD_WORDS = {
    "status": "si vos droits à la complémentaire santé étaient ouverts ou fermés",
    "rate": "le taux de prise en charge de votre contrat pour le type de soins demandé",
    "engagement": "un numéro d'engagement de paiement, utilisable seulement par le professionnel "
    "qui l'a demandé",
    "amc_amount": "le montant que votre complémentaire aurait remboursé pour les soins décrits",
    "reject_codes": "les raisons pour lesquelles un soin n'aurait pas été remboursé",
    "last_name": "votre nom",
    "first_name": "votre prénom",
    "birth_date": "votre date de naissance",
    "member_number": "votre numéro d'adhérent",
}
RELATIONSHIPS = {
    "insured": "assurés",
    "spouse": "conjoints",
    "child": "enfants",
    "other": "autres ayants droit",
}
MONTHS = (
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
)


@dataclass(frozen=True)
class Addressee:
    """A person read, with what the letter says to them."""

    pseudonym: str
    last_name: str
    first_name: str
    birth_date: date
    member_number: str
    birth_rank: int
    relationship: str
    first_read: datetime
    last_read: datetime
    reads: int
    fields: tuple[str, ...]

    def minor_on(self, day: date) -> bool:
        born = self.birth_date
        return day.year - born.year - ((day.month, day.day) < (born.month, born.day)) < 18

    @property
    def identity_read(self) -> bool:
        """Whether a read disclosed who the person is (the letter then says so)."""
        return any(f in IDENTITY_FIELDS for f in self.fields)


@dataclass
class AmcPack:
    amc: str
    name: str
    people: int = 0
    unresolved: int = 0
    reads: int = 0
    letters: int = 0
    files: list[str] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        return {
            "amc": self.amc,
            "name": self.name,
            "people": self.people,
            "unresolved": self.unresolved,
            "reads": self.reads,
            "letters": self.letters,
            "files": self.files,
        }


@dataclass
class NotifyResult:
    out: Path
    packs: list[AmcPack]
    integrity: IntegrityReport
    problems: list[str]  # ledger and row problems, as the attestation states them
    checkpoint: str

    @property
    def intact(self) -> bool:
        return not self.problems

    def describe(self) -> dict[str, Any]:
        return {
            "intact": self.intact,
            "problems": self.problems,
            "checkpoint": self.checkpoint,
            "amcs": [p.describe() for p in self.packs],
            "totals": {
                "people": sum(p.people for p in self.packs),
                "letters": sum(p.letters for p in self.packs),
                "unresolved": sum(p.unresolved for p in self.packs),
            },
        }


def notify(
    platform: Platform,
    scope_dir: Path,
    out: Path | None = None,
    actor: str = "cli",
    contact: str | None = None,
    external: Sequence[str] = (),
    force: bool = False,
    progress: Callable[[str], None] | None = None,
    replace_incomplete: bool = False,
) -> NotifyResult:
    """Write the notification pack of each insurer of the scope in ``out`` (by default the
    scope's ``notification/``). The pack is written into a hidden sibling folder, renamed to
    ``out`` once complete: ``out`` never holds half a pack, and a failure leaves nothing behind
    but the ledger's records of the identities already read."""
    scope = load_scope(scope_dir)
    if scope["status"] == "refused":
        raise Conflict("this scope was refused (the ledger did not verify): nothing to notify")
    if scope["status"] != "complete" and not force:
        raise Conflict(
            "this scope was forced from a ledger that did not verify: check its problems "
            "(scope.json), then give --force to notify anyway"
        )
    out = out or scope_dir / NOTIFICATION
    with claimed(out):
        if (out / SUMMARY).is_file():
            raise Conflict("the notifications of this scope were already prepared")
        if replace_incomplete and out.is_dir():
            shutil.rmtree(out)  # half a pack left by an older version: never shown nor served
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise InvalidInput("the output folder is not empty: write into a new one", "out")
        partial = out.with_name(f".{out.name}.{uuid.uuid4().hex}.partial")
        partial.mkdir(mode=0o700)
        try:
            result = _notify(
                platform, scope, scope_dir, partial, actor, contact, external, progress
            )
            os.rename(partial, out)  # replaces an empty folder
        finally:
            shutil.rmtree(partial, ignore_errors=True)
    result.out = out
    return result


@contextmanager
def claimed(out: Path) -> Iterator[None]:
    """The right to write ``out``, for one run at a time (a double click, the CLI beside the
    console): a lock folder beside it, made atomically. A crash leaves it behind: the next run is
    refused until an administrator removes it, rather than two runs reading every identity."""
    out.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    lock = out.with_name(f".{out.name}.lock")
    try:
        lock.mkdir(mode=0o700)
    except FileExistsError:
        raise Conflict(
            "the notifications of this scope are being prepared: wait until it is done"
        ) from None
    try:
        yield
    finally:
        lock.rmdir()


def _notify(
    platform: Platform,
    scope: dict[str, Any],
    scope_dir: Path,
    out: Path,
    actor: str,
    contact: str | None,
    external: Sequence[str],
    progress: Callable[[str], None] | None,
) -> NotifyResult:
    now = utcnow()
    people: list[tuple[AmcPack, list[Addressee]]] = []
    for entry in scope["amcs"]:
        readers = _readers(scope_dir, entry)
        if progress:
            progress(f"AMC {entry['amc']}: {len(readers)} people to identify")
        pack, found = _identify(platform, entry["amc"], readers, actor, now)
        pack.reads = entry["reads"]
        people.append((pack, found))
    origin = platform.settings.ledger_origin
    if progress:
        progress("verifying the ledger and every business row")
    note = make_checkpoint(platform.sessions, platform.keyring, origin)  # covers the reads above
    integrity = verify_integrity(platform)
    problems = [f"window: {p}" for p in scope["ledger"]["problems"]]  # a forced scope's
    problems += [f"ledger: {p}" for p in integrity.ledger.problems] + integrity.problems
    if external:
        kept = verify_ledger(platform.sessions, platform.keyring, origin, external=external)
        problems += [f"ledger: {p}" for p in kept.problems if p not in integrity.ledger.problems]
    key = verifier_key_string(origin, public_key(platform.sessions, platform.keyring))
    context = {
        "scope": scope,
        "now": now,
        "contact": contact,
        "integrity": integrity,
        "problems": problems,
        "note": note,
        "verifier_key": key,
        "kept": len(external),
        "freezes": containment.in_force(platform),
        "window": _window_words(scope),
    }
    for pack, found in people:
        if progress:
            progress(f"AMC {pack.amc}: writing {len(found)} letters")
        _write_pack(out / pack.amc, pack, found, scope, context)
    result = NotifyResult(out, [p for p, _ in people], integrity, problems, note)
    write_private(out / SUMMARY, json.dumps(result.describe(), indent=2) + "\n")
    return result


@dataclass(frozen=True)
class _Read:
    first_read: datetime
    last_read: datetime
    reads: int
    fields: tuple[str, ...]


def _readers(scope_dir: Path, entry: dict[str, Any]) -> dict[str, _Read]:
    """The insurer's rows of the scope, once their file is checked against scope.json."""
    name = entry["files"]["parquet"]
    path = scope_dir / name
    if not path.is_file() or sha256_file(path) != entry["sha256"][name]:
        raise IntegrityFailure(f"{name} differs from the digest scope.json gives for it")
    return {
        row["pseudonym"]: _Read(
            row["first_read"], row["last_read"], row["reads"], tuple(row["fields"])
        )
        for row in pq.read_table(path).to_pylist()
    }


def _identify(
    platform: Platform, amc: str, readers: dict[str, _Read], actor: str, now: datetime
) -> tuple[AmcPack, list[Addressee]]:
    """The people behind the pseudonyms, each read recorded in the ledger, in one transaction:
    the records are committed before any name leaves it."""
    with transaction(platform.sessions) as session:
        tenant = session.scalar(select(Tenant).where(Tenant.amc_number == amc))
        if tenant is None or tenant.status != "active":  # unknown, or crypto-shredded
            return AmcPack(amc, tenant.name if tenant else amc, 0, len(readers)), []
        indexer = platform.keyring.indexer(session, tenant.scope)
        cipher = platform.keyring.cipher(session, tenant.scope)
        matched: dict[uuid.UUID, str] = {}
        ids = session.scalars(
            select(Beneficiary.id)
            .where(Beneficiary.tenant_id == tenant.id)
            .execution_options(yield_per=50_000)
        )
        for beneficiary_id in ids:
            pseudonym = indexer.index(PSEUDONYM, beneficiary_id.hex).hex()
            if pseudonym in readers:
                matched[beneficiary_id] = pseudonym
        found: list[Addressee] = []
        chosen = sorted(matched, key=lambda b: matched[b])
        for start in range(0, len(chosen), BATCH):
            batch = chosen[start : start + BATCH]
            rows = session.execute(
                select(
                    Beneficiary.id,
                    Beneficiary.identity_enc,
                    Beneficiary.birth_rank,
                    Beneficiary.relationship,
                    Member.id,
                    Member.member_number_enc,
                )
                .join(Member, Member.id == Beneficiary.member_id)
                .where(Beneficiary.id.in_(batch))
            ).all()
            events = []
            for b_id, identity_enc, rank, relationship, member_id, number_enc in rows:
                who = Identity.unpack(
                    cipher.open("beneficiaries", "identity", b_id.hex, identity_enc)
                )
                number = cipher.open("members", "member_number", member_id.hex, number_enc)
                read = readers[matched[b_id]]
                found.append(
                    Addressee(
                        matched[b_id],
                        who.last_name,
                        who.first_name,
                        who.birth_date,
                        number,
                        rank,
                        relationship,
                        read.first_read,
                        read.last_read,
                        read.reads,
                        read.fields,
                    )
                )
                events.append(
                    AccessEvent(
                        at=now,
                        tag=Tag.NOTIFICATION_PREPARED,
                        actor=actor,
                        outcome="prepared",
                        purpose="GDPR art. 34 notification letter",
                        tenant=amc,
                        beneficiary=matched[b_id],
                        fields=IDENTITY_FIELDS,
                    )
                )
            append_events(session, events)
        found.sort(key=lambda a: (a.member_number, a.birth_rank, a.pseudonym))
        return AmcPack(amc, tenant.name, len(found), len(readers) - len(found)), found


# --- Rendering ----------------------------------------------------------------------------------


@cache
def _templates() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("rempart.incidents", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["day"] = day_words
    environment.filters["moment"] = moment_words
    environment.filters["plural"] = lambda n, one, many: one if n <= 1 else many
    environment.filters["fromiso"] = datetime.fromisoformat
    environment.filters["utc"] = lambda moment: moment.astimezone(UTC).strftime(
        "%Y-%m-%d %H:%M UTC"
    )
    environment.globals["span"] = span_words
    return environment


def day_words(moment: date | datetime) -> str:
    """``29 janvier 2026``, in Paris time for a datetime."""
    if isinstance(moment, datetime):
        moment = paris_day(moment)
    first = "1er" if moment.day == 1 else str(moment.day)
    return f"{first} {MONTHS[moment.month - 1]} {moment.year}"


def moment_words(moment: datetime) -> str:
    """``29 janvier 2026 à 8 h 05`` (Paris time)."""
    local = moment.astimezone(PARIS)
    return f"{day_words(local.date())} à {local.hour} h {local.minute:02d}"


def span_words(first: datetime, last: datetime, capital: bool = False) -> str:
    """``le 29 janvier 2026 à 8 h 05``, ``le 29 janvier 2026, entre 8 h 05 et 9 h 10``, or
    ``entre le … et le …`` (Paris time)."""
    a, b = first.astimezone(PARIS), last.astimezone(PARIS)
    if (a.date(), a.hour, a.minute) == (b.date(), b.hour, b.minute):
        words = f"le {moment_words(a)}"
    elif a.date() == b.date():
        words = f"le {day_words(a)}, entre {a.hour} h {a.minute:02d} et {b.hour} h {b.minute:02d}"
    else:
        words = f"entre le {moment_words(a)} et le {moment_words(b)}"
    return words[0].upper() + words[1:] if capital else words


def _window_words(scope: dict[str, Any]) -> dict[str, datetime]:
    criteria = scope["criteria"]
    return {
        "since": datetime.fromisoformat(criteria["from"]),
        "until": datetime.fromisoformat(criteria["to"]),
    }


def _pdf(html: str, path: Path) -> list[list[str]]:
    """Write ``html`` as a PDF (owner-only); returns each page's anchors."""
    from weasyprint import HTML  # loads Pango: paid by the commands that write PDFs only

    document = HTML(string=html).render()
    path.touch(mode=0o600)
    document.write_pdf(path)
    return [list(page.anchors) for page in document.pages]


def _write_pack(
    folder: Path,
    pack: AmcPack,
    people: list[Addressee],
    scope: dict[str, Any],
    context: dict[str, Any],
) -> None:
    folder.mkdir(mode=0o700)
    templates = _templates()
    entry = next(a for a in scope["amcs"] if a["amc"] == pack.amc)
    today = paris_day(context["now"])
    mailing: list[list[object]] = []
    disclosed: dict[str, list[str]] = {"publipostage.csv": [p.pseudonym for p in people]}
    for number, start in enumerate(range(0, len(people), LETTERS_PER_VOLUME), start=1):
        volume = people[start : start + LETTERS_PER_VOLUME]
        name = f"lettres-art34-{number:03d}.pdf"
        html = templates.get_template("letters.html.j2").render(
            pack=pack,
            people=[
                (start + i + 1, p, p.minor_on(today), sorted(p.fields, key=_field_order))
                for i, p in enumerate(volume)
            ],
            words=FIELD_WORDS,
            **context,
        )
        first_pages: dict[str, int] = {}
        for page_number, anchors in enumerate(_pdf(html, folder / name), start=1):
            for anchor in anchors:
                first_pages.setdefault(anchor, page_number)
        for i, person in enumerate(volume):
            letter = start + i + 1
            page = first_pages.get(f"lettre-{letter}", "")
            mailing.append([letter, name, page, person.member_number, person.birth_rank])
        pack.files.append(name)
        pack.letters += len(volume)
        disclosed[name] = [p.pseudonym for p in volume]
    with private_file(folder / "publipostage.csv") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["lettre", "fichier", "page", "numero_adherent", "rang"])
        writer.writerows(mailing)
    pack.files.append("publipostage.csv")
    write_private(folder / DISCLOSED, json.dumps(disclosed, indent=2) + "\n")
    counts = Counter(p.relationship for p in people)
    fields = Counter(f for p in people for f in p.fields)
    _pdf(
        templates.get_template("cnil.html.j2").render(
            pack=pack,
            entry=entry,
            relationships=[(RELATIONSHIPS.get(k, k), counts[k]) for k in sorted(counts)],
            minors=sum(p.minor_on(today) for p in people),
            fields=[(FIELD_WORDS.get(f, f), fields[f]) for f in sorted(fields, key=_field_order)],
            **context,
        ),
        folder / "cnil-art33.pdf",
    )
    pack.files.append("cnil-art33.pdf")
    attestation = _attestation(pack, entry, context)
    write_private(folder / "attestation.json", json.dumps(attestation, indent=2) + "\n")
    _pdf(
        templates.get_template("attestation.html.j2").render(
            pack=pack, entry=entry, attestation=attestation, **context
        ),
        folder / "attestation-integrite.pdf",
    )
    pack.files += ["attestation.json", "attestation-integrite.pdf"]


def _field_order(name: str) -> tuple[int, str]:
    known = list(FIELD_WORDS)
    return (known.index(name) if name in known else len(known), name)


def _attestation(pack: AmcPack, entry: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    integrity: IntegrityReport = context["integrity"]
    scope = context["scope"]
    return {
        "amc": pack.amc,
        "verified_at": context["now"].astimezone(UTC).isoformat(timespec="seconds"),
        "intact": not context["problems"],
        "problems": context["problems"],
        "ledger": {
            "entries": integrity.ledger.size,
            "checkpoints_verified": integrity.ledger.checkpoints,
            "kept_checkpoints": context["kept"],
        },
        "window": {
            "from": scope["criteria"]["from"],
            "to": scope["criteria"]["to"],
            "intact": scope["ledger"]["intact"],
            "entries_verified": scope["ledger"]["entries_verified"],
            "roots_compared": scope["ledger"]["roots_compared"],
            "checkpoint": scope["ledger"]["checkpoint"],
            "problems": scope["ledger"]["problems"],
        },
        "rows": {
            "journal_blocks": integrity.blocks,
            "tables": [
                {"table": t.name, "rows": t.rows, "commitment": t.commitment}
                for t in integrity.tables
            ],
        },
        "checkpoint": context["note"],
        "verifier_key": context["verifier_key"],
        "scope_files": entry["sha256"],
    }
