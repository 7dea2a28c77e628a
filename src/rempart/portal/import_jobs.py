"""Member-file imports started from the insurer portal, run in a thread of their own so that the
page can show their progress.

- The uploaded file is copied to a private file (0600) in the upload's folder, read from there
  as the CLI reads its file (constant memory), and deleted once imported.
- One import at a time per insurer: another is refused while one runs (a phished account cannot
  pile up imports, each holding a long write transaction).
- A job lives in this process's memory, under a random id and the insurer it belongs to: its page
  is "not found" for another insurer, and once the process restarts (an import in progress is
  then rolled back: it commits only at its end). Finished jobs are kept an hour for their page.
  The portals run in one process per server (`make run`, docs/runbook.md); behind several
  workers, the progress page would have to reach the worker that started the import.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import BinaryIO

import structlog

from rempart.errors import Conflict, Error, NotFound
from rempart.platform import Platform
from rempart.portal.rendering import Problem, problem_of
from rempart.registry.member_import import ImportOptions, ImportReport, import_members

KEEP_SECONDS = 3600
log = structlog.get_logger("rempart")


@dataclass
class ImportJob:
    id: uuid.UUID
    amc: str
    size: int  # bytes of the file
    read: int = 0  # bytes read so far
    report: ImportReport | None = None
    problem: Problem | None = None  # the file as a whole was refused
    finished_at: float | None = None
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def percent(self) -> int:
        if self.done.is_set():
            return 100
        return min(99, self.read * 100 // self.size) if self.size else 0


class ImportJobs:
    def __init__(self) -> None:
        self._jobs: dict[uuid.UUID, ImportJob] = {}
        self._lock = threading.Lock()

    def start(
        self,
        platform: Platform,
        amc: str,
        job_id: uuid.UUID,
        upload: BinaryIO,
        folder: Path,
        options: ImportOptions,
    ) -> ImportJob:
        """Copy ``upload`` to ``folder`` and import it in a thread; Conflict while another import
        of this insurer runs."""
        with self._lock:
            self._forget_old()
            if any(j.amc == amc and not j.done.is_set() for j in self._jobs.values()):
                raise Conflict("an import of this insurer is already running")
            job = self._jobs[job_id] = ImportJob(job_id, amc, 0)
        try:
            path = _private_copy(upload, folder / "upload.csv")
        except BaseException:
            with self._lock:
                del self._jobs[job_id]
            raise
        job.size = path.stat().st_size
        options = replace(options, progress=lambda read: setattr(job, "read", read))
        # Not a daemon: a process asked to stop lets the import finish (or roll back) first.
        worker = threading.Thread(
            target=self._run, args=(platform, job, path, options), name=f"import-{job_id.hex[:8]}"
        )
        worker.start()
        return job

    def get(self, amc: str, job_id: uuid.UUID) -> ImportJob:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None or job.amc != amc:  # another insurer's: the same answer as none
            raise NotFound("no such import")
        return job

    @staticmethod
    def _run(platform: Platform, job: ImportJob, path: Path, options: ImportOptions) -> None:
        try:
            with path.open("rb") as stream:
                job.report = import_members(platform, job.amc, stream, options)
        except Error as exc:  # the file as a whole: its header, a mass closure
            job.problem = problem_of(exc)
        except Exception as exc:  # the page must end; no message logged: it may quote a row
            log.error("member import failed", job=job.id.hex, error=type(exc).__name__)
            job.problem = Problem("L'import a échoué sur une erreur interne : rien n'a changé.")
        finally:
            path.unlink(missing_ok=True)  # personal data: kept no longer than the import
            job.finished_at = time.monotonic()
            job.done.set()

    def _forget_old(self) -> None:
        now = time.monotonic()
        for job_id, job in list(self._jobs.items()):
            if job.finished_at is not None and now - job.finished_at > KEEP_SECONDS:
                del self._jobs[job_id]


def _private_copy(upload: BinaryIO, path: Path) -> Path:
    """The upload, copied to a new file only this process's user reads."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as copy:
        shutil.copyfileobj(upload, copy, 1 << 20)
    return path
