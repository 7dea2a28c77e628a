"""The access-log interface: record an event, durably, before answering the request it records.

``LedgerRecorder`` commits the events of concurrent requests together (group commit), without a
writer thread: the request that finds the log free commits every event waiting at that moment,
its own included, while the others wait for it; whoever is still waiting then takes its turn.
Under load a hundred requests share one commit instead of paying one each, each still returns
only once its own event is committed, and no thread hand-off (each one a wait for the GIL) sits
on the path of a request. If a batch cannot be committed, every request in it fails: an access
is never served without its record.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from typing import Protocol

from sqlalchemy import Engine

from rempart.errors import Unavailable
from rempart.ledger.events import AccessEvent
from rempart.ledger.services import append_events

MAX_BATCH = 500
WAIT_SECONDS = 30  # a request waits this long for the log at most, then fails


class Recorder(Protocol):
    """What capabilities call to record an access; the result is the event's sequence number."""

    def record(self, event: AccessEvent) -> int: ...


class LedgerRecorder:
    """Group-commit recorder backed by the ledger tables."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._pending: list[tuple[AccessEvent, Future[int]]] = []
        self._queue_lock = threading.Lock()  # guards _pending
        self._writer = threading.Lock()  # held by the request committing a batch

    def record(self, event: AccessEvent) -> int:
        """Record an event and return once it is durable (raises if it could not be)."""
        future: Future[int] = Future()
        with self._queue_lock:
            self._pending.append((event, future))
        if not self._writer.acquire(timeout=WAIT_SECONDS):
            raise Unavailable("the access log cannot be written now; try again later")
        try:
            while not future.done():  # not committed by the previous writer: commit it now
                with self._queue_lock:
                    batch = self._pending[:MAX_BATCH]
                    del self._pending[:MAX_BATCH]
                self._commit(batch)
        finally:
            self._writer.release()
        return future.result()

    def close(self) -> None:
        """Nothing is left to commit once every ``record`` call has returned; kept so that the
        app's shutdown does not depend on how the recorder works."""

    def _commit(self, batch: list[tuple[AccessEvent, Future[int]]]) -> None:
        try:
            # A bare connection, not an ORM session: nothing here needs one, and it costs.
            with self._engine.begin() as connection:
                numbers = append_events(connection, [event for event, _ in batch])
        except Exception as exc:  # every waiting request learns that its event was not recorded
            for _, future in batch:
                future.set_exception(exc)
            return
        for (_, future), number in zip(batch, numbers, strict=True):
            future.set_result(number)
