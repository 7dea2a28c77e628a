"""A stolen copy of the database holds no NIR, name or birth date in clear."""

from __future__ import annotations

import io
import subprocess
from datetime import date
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from rempart.platform import Platform
from rempart.registry.member_import import ImportOptions, import_members
from tests.support import AMC, add_insurer, member_file, person

PEOPLE = [person(n) for n in range(1, 80)]


def secrets_of_people() -> list[bytes]:
    """Every personal value of the file, in the forms a dump could show it."""
    values: list[bytes] = []
    for p in PEOPLE:
        born = date.fromisoformat(p.birth_date)
        for text in (
            p.nir,
            p.last_name,
            p.first_name,
            p.birth_date,
            born.strftime("%d/%m/%Y"),
            p.member_number,
        ):
            values += [text.encode("utf-8"), text.encode("utf-16-le")]
    return values


def imported(platform: Platform) -> None:
    add_insurer(platform)
    report = import_members(platform, AMC, io.BytesIO(member_file(PEOPLE)), ImportOptions())
    assert report.inserted == len(PEOPLE)


def test_the_raw_database_holds_no_personal_value(platform: Platform) -> None:
    imported(platform)
    url = platform.settings.resolved_database_url
    if url.startswith("sqlite"):
        path = Path(url.split("///", 1)[1])
        files = [f for f in (path, Path(f"{path}-wal")) if f.exists()]
        assert files
        assert path.stat().st_size > 0
        dump = b"".join(f.read_bytes() for f in files)
    else:
        parsed = urlparse(url.replace("postgresql+psycopg", "postgresql"))
        schema = parse_qs(parsed.query)["options"][0].split("=", 1)[1]
        dump = subprocess.run(
            [
                "pg_dump",
                "--no-owner",
                "-n",
                schema,
                "-h",
                parsed.hostname or "127.0.0.1",
                "-p",
                str(parsed.port or 5432),
                "-U",
                parsed.username or "postgres",
                parsed.path.lstrip("/"),
            ],
            check=True,
            capture_output=True,
        ).stdout
        assert b"COPY" in dump
        assert b"beneficiaries" in dump
    leaked = [v for v in secrets_of_people() if v in dump]
    assert leaked == []
    # The check is able to see a leak: the AMC number, which is not personal, is in clear.
    assert AMC.encode() in dump
