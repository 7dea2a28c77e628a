"""The house rules of ARCHITECTURE.md, checked on the code rather than left to reviews."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).parents[2] / "src" / "rempart"

# Modules of pure rules: no database, web, driver or CLI, no clock.
PURE = [
    "identifiers",
    "dates",
    "registry/plan_format",
    "registry/csv_rows",
    "registry/member_file",
    "registry/professional_file",
    "registry/rights",
    "registry/identity",
    "crypto/fields",
    "ledger/merkle",
    "ledger/nodes",
    "ledger/events",
    "identity/password_rules",
    "identity/totp",
    "rights/rules",
    "claims/engine",
    "claims/money",
    "ledger/checkpoint",
    "integrity/rowmac",
    "guard/signals",
    "payments/rules",
    "payments/documents",
]
FRAMEWORKS = (
    "sqlalchemy",
    "alembic",
    "fastapi",
    "starlette",
    "httpx",
    "redis",
    "psycopg",
    "typer",
    "rich",
    "uvicorn",
)
IMPURE_OWN = ("rempart.db", "rempart.platform", "rempart.settings", "rempart.cli")
CLOCK = {"now", "utcnow", "today", "time", "monotonic", "perf_counter"}
# Leaves that know no capability (rule 3 of ARCHITECTURE.md).
LEAVES = {
    "crypto": ("rempart.registry", "rempart.identity", "rempart.ledger"),
    "ledger": ("rempart.registry", "rempart.identity"),
    "guard": ("rempart.registry", "rempart.identity", "rempart.rights", "rempart.incidents"),
}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_every_listed_pure_module_exists() -> None:
    for name in PURE:
        assert (SRC / f"{name}.py").is_file(), name


def violations(path: Path) -> set[str]:
    """What makes a module impure: framework or database imports, and calls to the clock."""
    imported = imports_of(path)
    bad = {m for m in imported if m.split(".")[0] in FRAMEWORKS or m.startswith(IMPURE_OWN)}
    bad |= {
        m for m in imported if m.startswith("rempart.") and m.endswith((".models", ".services"))
    }
    calls = {
        node.func.attr
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    }
    return bad | (calls & CLOCK)


@pytest.mark.parametrize("name", PURE)
def test_pure_rules_import_no_framework_database_or_clock(name: str) -> None:
    assert violations(SRC / f"{name}.py") == set()


@pytest.mark.parametrize("leaf", list(LEAVES))
def test_leaves_know_no_capability(leaf: str) -> None:
    for path in (SRC / leaf).rglob("*.py"):
        bad = {m for m in imports_of(path) if m.startswith(LEAVES[leaf])}
        assert bad == set(), f"{path.name} imports {bad}"


def test_the_checker_sees_a_violation(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from sqlalchemy import select\nfrom rempart.registry.models import Tenant\n"
        "import datetime\nx = datetime.date.today()\n"
    )
    assert violations(sample) == {"sqlalchemy", "rempart.registry.models", "today"}
