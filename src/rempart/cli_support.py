"""What every CLI command shares: opening the platform, reporting errors, progress bars."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from rempart.errors import Error
from rempart.platform import Platform, open_platform
from rempart.settings import get_settings

out = Console()
err = Console(stderr=True)


@contextmanager
def reported_errors() -> Iterator[None]:
    """Turn a Rempart error into its diagnostics on stderr and exit code 1."""
    try:
        yield
    except Error as exc:
        err.print(f"[bold red]error[/] {exc.diagnostics()}", highlight=False)
        raise typer.Exit(1) from None


@contextmanager
def platform() -> Iterator[Platform]:
    with reported_errors():
        opened = open_platform(get_settings())
        try:
            yield opened
        finally:
            opened.close()


def byte_progress(total: int, label: str) -> Progress:
    return Progress(
        TextColumn(label),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    )


def print_json(data: Any) -> None:
    out.print_json(json.dumps(data, default=str))
