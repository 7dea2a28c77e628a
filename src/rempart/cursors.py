"""Page cursors: where a list sorted by (time, id), newest first, goes on. Opaque to clients
(base64url of the time and the id), checked when they come back. Pure."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime

from rempart.errors import InvalidInput


def encode(at: datetime, ident: uuid.UUID) -> str:
    raw = f"{at.isoformat()}|{ident.hex}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str) -> tuple[datetime, uuid.UUID]:
    """The (time, id) a cursor of ``encode`` holds; InvalidInput (field ``before``) otherwise."""
    refused = InvalidInput("is not a cursor this service gave", field="before")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, _, ident = raw.partition("|")
        parsed = datetime.fromisoformat(at), uuid.UUID(hex=ident)
    except ValueError:
        raise refused from None
    if parsed[0].tzinfo is None:
        raise refused
    return parsed
