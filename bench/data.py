"""Synthetic member files for benchmarks: valid, fast to make, cached under bench/.data/."""

from __future__ import annotations

import csv
import random
from datetime import date, timedelta
from pathlib import Path

from rempart.identifiers import make_nir
from rempart.registry.member_file import COLUMNS

DATA = Path(__file__).with_name(".data")
LAST_NAMES = (
    "Martin",
    "Bernard",
    "Thomas",
    "Petit",
    "Robert",
    "Richard",
    "Durand",
    "Dubois",
    "Moreau",
    "Laurent",
)
FIRST_NAMES = (
    "Camille",
    "Louis",
    "Jade",
    "Gabriel",
    "Emma",
    "Arthur",
    "Louise",
    "Jules",
    "Alice",
    "Léo",
)


def member_file(rows: int, seed: int = 1) -> Path:
    """A member file of ``rows`` beneficiaries (about two per card), made once and cached."""
    path = DATA / f"members-v2-{rows}-{seed}.csv"
    if path.exists():
        return path
    DATA.mkdir(exist_ok=True)
    rng = random.Random(seed)
    start = date(1940, 1, 1)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(COLUMNS)
        card, previous = 0, start
        for n in range(rows):
            second = n % 2 == 1
            card += not second
            born = start + timedelta(days=rng.randrange(0, 30000))
            rank = "2" if second and born == previous else "1"  # same birthday on one card
            previous = born
            nir = make_nir(
                rng.choice((1, 2)),
                born.year,
                born.month,
                "75",
                f"{rng.randint(1, 999):03d}",
                rng.randint(1, 999),
            )
            writer.writerow(
                [
                    f"B{card:09d}",
                    "" if second else nir,
                    rng.choice(LAST_NAMES),
                    rng.choice(FIRST_NAMES),
                    born.isoformat(),
                    rank,
                    "spouse" if second else "insured",
                    "BASE",
                    "2025-01-01",
                    "",
                    "",
                ]
            )
    tmp.rename(path)
    return path
