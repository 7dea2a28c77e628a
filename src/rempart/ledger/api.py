"""The insurers' ledger API: the verifier key, checkpoints, consistency proofs, and their own
members' access events with inclusion proofs (RFC 9162, C2SP tlog-checkpoint).

The ledger is a leaf that knows no capability (ARCHITECTURE.md rule 3): the roles check of the
identity capability is handed in by the app (``router(allow)``) rather than imported.

Reading the ledger is not recorded in it: events hold pseudonyms, never personal data, and no
tag of the fixed set names such a read (ARCHITECTURE.md rule 6).
"""

# No ``from __future__ import annotations``: FastAPI resolves string annotations in the module's
# globals, and the role dependencies below are local to ``router``.

import base64
from collections.abc import Awaitable, Callable
from typing import Annotated, Protocol

from fastapi import APIRouter, Depends, Query, Request

from rempart.errors import Forbidden
from rempart.ledger import services
from rempart.ledger.checkpoint import verifier_key_string
from rempart.ledger.schemas import (
    CheckpointResponse,
    ConsistencyResponse,
    EventsQuery,
    EventsResponse,
    LedgerEvent,
    PublicKeyResponse,
)
from rempart.platform import Platform

PROBLEM = {"description": "Problem details (RFC 9457)", "content": {"application/problem+json": {}}}
READERS = ("amc", "operator", "security")


class Caller(Protocol):
    """What the routes need of identity's principal."""

    @property
    def organisation(self) -> str | None: ...


Allow = Callable[..., Callable[..., Awaitable[Caller]]]
"""``identity.deps.allow``: roles -> a dependency giving the caller, 403 for other roles."""


async def _platform(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


PlatformDep = Annotated[Platform, Depends(_platform)]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def router(allow: Allow) -> APIRouter:
    """The ledger's routes, each admitting the roles it names."""
    api = APIRouter(prefix="/api/v1/ledger", tags=["ledger"])
    Reader = Annotated[Caller, Depends(allow(*READERS))]
    Insurer = Annotated[Caller, Depends(allow("amc"))]

    @api.get(
        "/public-key",
        summary="Roles: amc, operator, security. The key that signs checkpoints: keep it once.",
        responses={401: PROBLEM, 403: PROBLEM},
    )
    def public_key(_: Reader, platform: PlatformDep) -> PublicKeyResponse:
        origin = platform.settings.ledger_origin
        key = services.public_key(platform.sessions, platform.keyring)
        return PublicKeyResponse(origin=origin, verifier_key=verifier_key_string(origin, key))

    @api.get(
        "/checkpoint",
        summary="Roles: amc, operator, security. A signed checkpoint of the log as it is now.",
        responses={401: PROBLEM, 403: PROBLEM},
    )
    def checkpoint(_: Reader, platform: PlatformDep) -> CheckpointResponse:
        note = services.make_checkpoint(
            platform.sessions, platform.keyring, platform.settings.ledger_origin
        )
        return CheckpointResponse(note=note)

    @api.get(
        "/consistency",
        summary="Roles: amc, operator, security. Proof that a newer checkpoint extends a kept one.",
        responses={401: PROBLEM, 403: PROBLEM, 422: PROBLEM},
    )
    def consistency(
        _: Reader,
        platform: PlatformDep,
        from_size: Annotated[int, Query(ge=1)],
        to_size: Annotated[int, Query(ge=1)],
    ) -> ConsistencyResponse:
        proof = services.prove_consistency(platform.sessions, from_size, to_size)
        return ConsistencyResponse(
            from_size=from_size, to_size=to_size, proof=[_b64(h) for h in proof]
        )

    @api.get(
        "/events",
        summary="Roles: amc. Your members' access events, each with its inclusion proof.",
        responses={401: PROBLEM, 403: PROBLEM, 409: PROBLEM, 422: PROBLEM},
    )
    def events(
        caller: Insurer, platform: PlatformDep, query: Annotated[EventsQuery, Query()]
    ) -> EventsResponse:
        """Only the events whose insurer is yours, whatever the parameters: the insurer comes
        from the session, never from the request."""
        if not caller.organisation:
            raise Forbidden("this account is bound to no insurer")
        page = services.tenant_events(
            platform.sessions, caller.organisation, query.after, query.limit, query.size
        )
        return EventsResponse(
            tree_size=page.size,
            root=_b64(page.root),
            checkpoint=page.note,
            events=[
                LedgerEvent(
                    seq=p.seq,
                    tree_size=p.size,
                    event=p.event.decode(),
                    leaf_hash=_b64(p.leaf_hash),
                    proof=[_b64(h) for h in p.proof],
                )
                for p in page.proofs
            ],
            next_after=page.proofs[-1].seq if page.more else None,
        )

    return api
