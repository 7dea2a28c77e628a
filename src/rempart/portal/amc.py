"""The insurer portal (/amc/): member files, plans, and the access events about its members.

Everything is the caller's own insurer's: the AMC number comes from the session, never from the
address or the form, so no URL opens another insurer's file or report.
"""

from __future__ import annotations

import uuid
from datetime import date
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.datastructures import UploadFile
from starlette.responses import FileResponse, RedirectResponse, Response

from rempart.db import utcnow
from rempart.errors import Conflict, Error, InvalidDocument, NotFound
from rempart.identity.auth import Principal
from rempart.identity.deps import ClientDep, PlatformDep
from rempart.ledger.events import AccessEvent, Tag
from rempart.platform import Platform
from rempart.portal import queries
from rempart.portal.import_jobs import ImportJob, ImportJobs
from rempart.portal.rendering import Problem, problem_of, render
from rempart.portal.security import FormDep, insurer_of, page, text
from rempart.registry import services
from rempart.registry.member_file import COLUMNS
from rempart.registry.member_import import ImportOptions

router = APIRouter(prefix="/amc", include_in_schema=False)
Insurer = Annotated[Principal, Depends(page("amc"))]
EVENTS_PER_PAGE = 50
# An import that takes longer than this goes on in the background, its progress on a page.
IMPORT_WAIT_SECONDS = 2.0
REPORTS = {"erreurs": ("errors.csv", "erreurs"), "quarantaine": ("quarantine.csv", "quarantaine")}


def _folder(platform: Platform, caller: Principal, upload: uuid.UUID) -> Path:
    """Where an upload's reports are kept: under the caller's own insurer, by a random id."""
    return platform.settings.home / "imports" / "portal" / insurer_of(caller) / upload.hex


# Member files ------------------------------------------------------------------------------------


@router.get("/", summary="Roles: amc. Send a member file.")
def imports_page(request: Request, caller: Insurer) -> Response:
    return render(request, "amc_imports.html", {"values": {"mode": "complet"}})


@router.post(
    "/imports",
    summary="Roles: amc. Import a member file: the report line by line, the quarantine.",
)
def import_file(
    request: Request, caller: Insurer, form: FormDep, platform: PlatformDep
) -> Response:
    values = {
        "mode": "delta" if text(form, "mode", 10) == "delta" else "complet",
        "partial": text(form, "partiel", 5) == "oui",
        "effective_date": text(form, "date_effet", 10),
    }
    context: dict[str, Any] = {"values": values}
    upload = form.get("fichier")
    if not isinstance(upload, UploadFile) or not upload.filename:
        context["errors"] = {"fichier": "Choisissez le fichier CSV des adhérents."}
        return render(request, "amc_imports.html", context, status=422)
    effective = None
    if values["effective_date"]:
        try:
            effective = date.fromisoformat(str(values["effective_date"]))
        except ValueError:
            context["errors"] = {"date_effet": "Indiquez une date (jj/mm/aaaa), ou rien."}
            return render(request, "amc_imports.html", context, status=422)
    upload_id = uuid.uuid4()
    folder = _folder(platform, caller, upload_id)
    options = ImportOptions(
        delta=values["mode"] == "delta",
        partial=bool(values["partial"]),
        effective_date=effective,
        errors_path=folder / "errors.csv",
        quarantine_path=folder / "quarantine.csv",
    )
    jobs: ImportJobs = request.app.state.import_jobs
    try:
        job = jobs.start(platform, insurer_of(caller), upload_id, upload.file, folder, options)
    except Conflict:
        problem = Problem("Un import de votre organisme est déjà en cours : attendez sa fin.")
        return render(request, "amc_imports.html", context | {"problem": problem}, status=409)
    if not job.done.wait(IMPORT_WAIT_SECONDS):  # a long file: its progress on a page of its own
        return RedirectResponse(f"/amc/imports/{upload_id}", status_code=303)
    return _import_outcome(request, "amc_imports.html", job, context)


@router.get(
    "/imports/{upload_id}",
    summary="Roles: amc. An import's progress, then its report.",
)
def import_progress(request: Request, upload_id: uuid.UUID, caller: Insurer) -> Response:
    job = request.app.state.import_jobs.get(insurer_of(caller), upload_id)  # another insurer's: 404
    if not job.done.is_set():
        return render(request, "amc_import.html", {"upload_id": upload_id, "percent": job.percent})
    return _import_outcome(request, "amc_import.html", job, {})


def _import_outcome(
    request: Request, template: str, job: ImportJob, context: dict[str, Any]
) -> Response:
    if job.report is None:  # the file as a whole was refused: its header, a mass closure
        return render(request, template, context | {"problem": job.problem}, status=422)
    context |= {"report": job.report, "upload_id": job.id}
    return render(request, template, context, status=200 if job.report.committed else 422)


@router.get(
    "/imports/{upload_id}/{report}.csv",
    summary="Roles: amc. An import's error report (no values) or its quarantine (the rows).",
)
def import_report(
    request: Request,
    upload_id: uuid.UUID,
    report: str,
    caller: Insurer,
    platform: PlatformDep,
    client: ClientDep,
) -> Response:
    if report not in REPORTS:
        raise NotFound("no such report")
    name, label = REPORTS[report]
    path = _folder(platform, caller, upload_id) / name
    if not path.is_file():
        raise NotFound("no such report")
    if report == "quarantaine":  # the insurer's own rows, personal data: on the record first
        request.app.state.recorder.record(
            AccessEvent(
                at=utcnow(),
                tag=Tag.IDENTITY_READ,
                actor=caller.actor,
                outcome="quarantine-download",
                purpose=f"member-file quarantine {upload_id}",
                organisation=caller.organisation,
                tenant=caller.organisation,
                fields=COLUMNS,
                ip=client.ip,
                user_agent=client.user_agent,
            )
        )
    return FileResponse(path, media_type="text/csv", filename=f"{label}-{upload_id}.csv")


# Plans -------------------------------------------------------------------------------------------


def _plans_page(
    request: Request, caller: Principal, platform: Platform, status: int = 200, **context: Any
) -> Response:
    plans = services.list_plans(platform, insurer_of(caller))
    return render(request, "amc_plans.html", {"plans": plans, **context}, status=status)


@router.get("/garanties", summary="Roles: amc. The insurer's plans and their versions.")
def plans_page(request: Request, caller: Insurer, platform: PlatformDep) -> Response:
    return _plans_page(request, caller, platform)


@router.post("/garanties", summary="Roles: amc. Load a plan version (JSON).")
def load_plan(request: Request, caller: Insurer, form: FormDep, platform: PlatformDep) -> Response:
    upload = form.get("fichier")
    if not isinstance(upload, UploadFile) or not upload.filename:
        errors = {"fichier": "Choisissez le fichier JSON de la garantie."}
        return _plans_page(request, caller, platform, 422, errors=errors)
    raw = upload.file.read(1_000_001)
    if len(raw) > 1_000_000:
        errors = {"fichier": "Un fichier de garantie fait au plus 1 Mo."}
        return _plans_page(request, caller, platform, 422, errors=errors)
    try:
        loaded = services.load_plan(platform, insurer_of(caller), raw)
    except InvalidDocument as exc:
        problems = [str(p) for p in exc.problems]
        return _plans_page(
            request, caller, platform, 422, problem=problem_of(exc), problems=problems
        )
    except Error as exc:
        return _plans_page(request, caller, platform, exc.status, problem=problem_of(exc))
    message = (
        f"Version du {loaded.valid_from:%d/%m/%Y} de la garantie {loaded.code} chargée."
        if loaded.loaded
        else f"Cette version de la garantie {loaded.code} était déjà chargée : rien n'a changé."
    )
    return _plans_page(request, caller, platform, message=message)


# Access events -----------------------------------------------------------------------------------


@router.get(
    "/acces",
    summary="Roles: amc. Who accessed your members' data: the ledger's events, newest first.",
)
def events_page(
    request: Request,
    caller: Insurer,
    platform: PlatformDep,
    avant: Annotated[int | None, Query(ge=0)] = None,
) -> Response:
    found = queries.tenant_events(platform, insurer_of(caller), avant, EVENTS_PER_PAGE)
    return render(request, "amc_events.html", {"page": found, "first": avant is None})
