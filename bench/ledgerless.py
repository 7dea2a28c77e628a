"""The application with an access log that records nothing: a baseline for benchmarks only.

Never served: a rights check answered without its event is exactly what Rempart forbids. It
exists so that bench.ledger_http can measure what recording costs, all else being equal.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from rempart import app as rempart_app
from rempart.ledger.events import AccessEvent


class Forgetful:
    def record(self, event: AccessEvent) -> int:
        return 0

    def close(self) -> None:
        pass


def create_app() -> FastAPI:
    app = rempart_app.create_app()
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(served: FastAPI) -> AsyncIterator[None]:
        async with inner(served):
            served.state.recorder = Forgetful()
            yield

    app.router.lifespan_context = lifespan
    return app
