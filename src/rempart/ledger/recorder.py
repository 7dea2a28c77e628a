"""The access-log interface: record an event, durably, before answering the request it records.

``LedgerRecorder`` batches events from every thread of a process into one transaction (group
commit): under load, a hundred requests share one commit instead of paying one each, and each
still waits until its own event is committed. If the batch cannot be committed, every request
in it fails: an access is never served without its record.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from typing import Protocol

from sqlalchemy.orm import Session, sessionmaker

from rempart.db import transaction
from rempart.ledger.events import AccessEvent
from rempart.ledger.services import append_events

MAX_BATCH = 500
WAIT_SECONDS = 30  # a request waits this long for its event at most, then fails


class Recorder(Protocol):
    """What capabilities call to record an access; the result is the event's sequence number."""

    def submit(self, event: AccessEvent) -> Future[int]: ...

    def record(self, event: AccessEvent) -> int: ...


class LedgerRecorder:
    """Group-commit recorder backed by the ledger tables."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self._queue: queue.SimpleQueue[tuple[AccessEvent, Future[int]] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, event: AccessEvent) -> Future[int]:
        """Queue an event; the future resolves to its sequence number once it is committed."""
        future: Future[int] = Future()
        self._ensure_started()
        self._queue.put((event, future))
        return future

    def record(self, event: AccessEvent) -> int:
        """Record an event and wait until it is durable (raises if it could not be)."""
        return self.submit(event).result(timeout=WAIT_SECONDS)

    def close(self) -> None:
        """Commit what is queued, then stop the writer."""
        with self._lock:
            if self._thread is not None:
                self._queue.put(None)
                self._thread.join()
                self._thread = None

    def _ensure_started(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():  # (re)start a dead writer
                self._thread = threading.Thread(
                    target=self._run, name="ledger-recorder", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            stop = False
            while len(batch) < MAX_BATCH:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                batch.append(more)
            self._commit(batch)
            if stop:
                return

    def _commit(self, batch: list[tuple[AccessEvent, Future[int]]]) -> None:
        try:
            with transaction(self._sessions) as session:
                numbers = append_events(session, [event for event, _ in batch])
        except Exception as exc:  # every waiting request learns that its event was not recorded
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), number in zip(batch, numbers, strict=True):
            if not future.done():  # a caller may have given up waiting
                future.set_result(number)
