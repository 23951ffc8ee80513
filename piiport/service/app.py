"""The HTTP API (FastAPI): access requests, their packages, the inventory, the audit trail, operations."""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from connectors.errors import ConfigError
from export.errors import ExportError
from piiport.config import Config
from piiport.service import schemas
from piiport.service.audit import AuditLog
from piiport.service.callbacks import CallbackSender, check_callback_url
from piiport.service.jobs import STATUSES, Conflict, Job, JobStore
from piiport.service.metrics import Metrics
from piiport.service.retention import Retention
from piiport.service.store import Store, store_url
from piiport.service.tokens import Token, TokenStore
from piiport.service.worker import Supervisor

logger = logging.getLogger("piiport.service")

MAX_BODY = 64 * 1024
MAX_IDENTIFIERS = 20


@dataclass
class ServerOptions:
    """What ``piiport serve`` runs: the config, where packages go, how many exports at once."""

    config: Config
    config_path: str | None = None
    index_url: str | None = None
    workers: int = 1
    packages: str = ""
    lease: float = 30.0
    start_workers: bool = True


def default_packages(cfg: Config) -> str:
    """S3 when the config sends exports there; else a private folder beside the index."""
    if cfg.export.out.startswith("s3://"):
        return cfg.export.out
    url = store_url(cfg.index)
    if url.startswith("sqlite:///"):
        return str(Path(url[len("sqlite:///") :]).with_name("packages"))
    return str(Path(cfg.export.out).resolve())


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field


def _error(status: int, code: str, message: str, field: str | None = None, **headers: str) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message, "field": field}}, status_code=status, headers=headers or None
    )


class BodyLimit:
    """413 for bodies over the limit, declared (Content-Length) or streamed (chunked).

    The body is read here first (at most the limit, so memory stays bounded) and handed on
    whole: an oversized chunked body is refused before any route parses it."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        too_large = _error(413, "too_large", f"the request body is over {self.limit // 1024} KB", "body")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await too_large(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([message], receive), send)
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await too_large(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body: Message = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self.app(scope, _replay([body], receive), send)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    async def replayed() -> Message:
        return messages.pop(0) if messages else await receive()

    return replayed


class Service:
    """Everything the routes share; built before the server listens, so a bad index fails fast."""

    def __init__(self, settings: ServerOptions) -> None:
        from discover.index import Index
        from discover.sealing import KeySealer

        self.settings = settings
        self.config = settings.config
        self.index = Index(self.config.index, create=False)
        self.sealer = KeySealer(self.index.hasher.key)
        self.store = Store(store_url(self.config.index))
        self.jobs = JobStore(self.store)
        self.audit = AuditLog(self.store)
        self.tokens = TokenStore(self.store, self.audit)
        self.packages = settings.packages or default_packages(self.config)
        self.metrics = Metrics(self.jobs)
        self.callbacks = CallbackSender(self.jobs, self.config.service, job_document)
        self.retention = Retention(self.jobs, self.audit, self.config)
        self.supervisor = Supervisor(
            self.store,
            packages=self.packages,
            workers=settings.workers,
            config_path=settings.config_path,
            index_url=settings.index_url,
            lease=settings.lease,
            on_finished=self.metrics.export_finished,
            on_scan_finished=self.metrics.scan_finished,
            on_tick=self._tick,
        )

    def _tick(self) -> None:
        self.callbacks.tick()
        self.retention.tick()

    def close(self) -> None:
        self.supervisor.stop()
        self.callbacks.close()
        self.store.close()
        self.index.close()

    def submit(self, body: schemas.AccessRequest, *, actor: str) -> tuple[Job, bool]:
        """Validate and persist a request (before anyone is told it was accepted); ApiError if refused."""
        from discover.subjects import parse_identifiers
        from export.package import check_request_id
        from export.subject_export import new_request_id

        given = body.identifiers
        count = given.count()
        if count == 0:
            raise ApiError(422, "invalid", "give at least one identifier: email, phone, ip or name", "identifiers")
        if count > MAX_IDENTIFIERS:
            raise ApiError(
                422, "too_many", f"{count} identifiers; at most {MAX_IDENTIFIERS} per request", "identifiers"
            )
        try:
            parsed = parse_identifiers(
                emails=given.email,
                phones=given.phone,
                ips=given.ip,
                names=given.name,
                regions=self.config.detection.phone_regions,
            )
        except ConfigError as exc:
            field = exc.setting if exc.setting and exc.setting.startswith("identifiers.") else "identifiers"
            raise ApiError(422, "invalid_identifier", exc.message, field) from exc
        if body.request_id is not None:
            try:
                check_request_id(body.request_id)
            except ExportError as exc:
                raise ApiError(422, "invalid", exc.message, "request_id") from exc
        if body.callback_url is not None:
            refused = check_callback_url(body.callback_url, self.config.service)
            if refused:
                raise ApiError(422, "callback_refused", refused, "callback_url")
        canonical = json.dumps(
            {
                "identifiers": sorted([i.entity_type, i.value] for i in parsed),
                "format": body.format,
                "callback_url": body.callback_url,
            },
            sort_keys=True,
        )
        index = self.index
        body_hash = index.hasher.digest("__service_request__", canonical).hex()
        raw = {"email": given.email, "phone": given.phone, "ip": given.ip, "name": given.name}
        params = {
            "format": body.format,
            "callback_url": body.callback_url,
            "identifiers": [{"type": i.entity_type, "masked": i.masked} for i in parsed],
        }
        try:
            job, created = self.jobs.create(
                request_id=body.request_id or new_request_id(),
                body_hash=body_hash,
                sealed=self.sealer.seal(json.dumps(raw)),
                params=params,
                actor=actor,
            )
        except Conflict as exc:
            raise ApiError(
                409,
                "conflict",
                f"request id {exc.job.request_id} is already job {exc.job.id} with a different body; "
                "use another request_id",
                "request_id",
            ) from exc
        self.supervisor.nudge()
        return job, created

    def package_response(self, job: Job, *, actor: str) -> Response:
        """The package (personal data: the download goes into the audit trail)."""
        check_package(job)
        assert job.package is not None
        local = not job.package.startswith("s3://")
        if local and not Path(job.package).is_file():  # deleted by hand, or by retention a moment ago
            raise ApiError(410, "gone", f"the package of request {job.id} is no longer on disk")
        self.audit.append(
            actor=actor,
            action="package.download",
            request_id=job.request_id,
            outcome="ok",
            package_sha256=job.result.get("package_sha256"),
        )
        if not local:
            return RedirectResponse(job.result["download_url"], status_code=307)
        return FileResponse(job.package, media_type="application/zip", filename=f"{job.request_id}.zip")

    def authenticate(self, request: Request, scope: str) -> Token:
        scheme, _, secret = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise ApiError(401, "unauthorized", "send the header Authorization: Bearer <token> (piiport token create)")
        token = self.tokens.authenticate(secret.strip())
        if token is None:
            raise ApiError(401, "unauthorized", "unknown or revoked token")
        if scope not in token.scopes:
            raise ApiError(403, "forbidden", f"token {token.name!r} lacks the scope {scope}")
        return token


def _require(scope: str) -> Callable[[Request], Token]:
    def dependency(request: Request) -> Token:
        service: Service = request.app.state.service
        return service.authenticate(request, scope)

    return dependency


Writer = Annotated[Token, Depends(_require("requests:write"))]
Reader = Annotated[Token, Depends(_require("requests:read"))]
InventoryReader = Annotated[Token, Depends(_require("inventory:read"))]
AuditReader = Annotated[Token, Depends(_require("audit:read"))]
Scanner = Annotated[Token, Depends(_require("scans:write"))]


def job_document(job: Job) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": job.id,
        "request_id": job.request_id,
        "status": job.status,
        "format": job.params.get("format", "json"),
        "identifiers": job.params.get("identifiers", []),
        "attempts": job.attempts,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "package_available": job.package is not None,
        "callbacks": job.callbacks,
        "links": {"self": f"/v1/requests/{job.id}", "package": f"/v1/requests/{job.id}/package"},
    }
    if "summary" in job.result:
        doc["manifest"] = job.result["summary"]
        doc["package_sha256"] = job.result.get("package_sha256")
    if "error" in job.result:
        doc["error"] = job.result["error"]
    return doc


def check_package(job: Job) -> None:
    if job.status in ("queued", "running"):
        raise ApiError(409, "not_ready", f"request {job.id} is {job.status}; poll it until it is done")
    if job.status == "expired" or job.result.get("purged_at"):
        raise ApiError(410, "gone", f"the package of request {job.id} was deleted ({job.status})")
    if job.package is None:
        raise ApiError(404, "no_package", f"request {job.id} ended {job.status} without a package")


def _cursor(job: Job) -> str:
    return base64.urlsafe_b64encode(json.dumps([job.created_at, job.id]).encode()).decode()


def _uncursor(value: str) -> tuple[str, str]:
    try:
        created, job_id = json.loads(base64.urlsafe_b64decode(value.encode()))
        return str(created), str(job_id)
    except (ValueError, TypeError, binascii.Error) as exc:
        raise ApiError(422, "invalid", "cursor is not one this server gave out", "cursor") from exc


def create_app(settings: ServerOptions) -> FastAPI:
    service = Service(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if settings.start_workers:
            service.supervisor.start()
        try:
            yield
        finally:
            service.close()

    app = FastAPI(
        title="piiport",
        version="1",
        description="Access and portability requests: export one subject's data as a package.",
        lifespan=lifespan,
        # The interactive docs pages load their scripts from a CDN; the OpenAPI JSON stays.
        docs_url=None,
        redoc_url=None,
    )
    app.state.service = service
    app.add_middleware(BodyLimit)

    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else {}
        return _error(exc.status, exc.code, exc.message, exc.field, **headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # pydantic's messages describe the rule, never the input, so nothing sent is echoed.
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path"))
        return _error(422, "invalid", str(first.get("msg", "invalid request")), where or None)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "error")
        return _error(exc.status_code, code, str(exc.detail))

    @app.exception_handler(Exception)
    async def crashed(_request: Request, exc: Exception) -> JSONResponse:
        logger.error("unexpected %s while serving a request", type(exc).__name__)
        return _error(500, "internal", "internal error; see the server log")

    @app.post(
        "/v1/requests",
        status_code=202,
        response_model=schemas.Job,
        responses={200: {"model": schemas.Job}, **schemas.ERRORS},
        tags=["requests"],
    )
    def create_request(body: schemas.AccessRequest, response: Response, token: Writer) -> dict[str, Any]:
        """Queue an export. The same request_id with the same body returns that job (200); with another body, 409."""
        job, created = service.submit(body, actor=f"token:{token.name}")
        response.status_code = 202 if created else 200
        return job_document(job)

    @app.get("/v1/requests", response_model=schemas.JobPage, responses=schemas.ERRORS, tags=["requests"])
    def list_requests(
        _token: Reader,
        status: str | None = Query(default=None, description="|".join(STATUSES)),
        since: str | None = Query(default=None, description="ISO-8601 UTC; jobs created at or after it"),
        limit: int = Query(default=50, ge=1, le=200),
        cursor: str | None = Query(default=None, description="the `next` of the previous page"),
    ) -> dict[str, Any]:
        if status is not None and status not in STATUSES:
            raise ApiError(422, "invalid", f"status must be one of {', '.join(STATUSES)}", "status")
        page = service.jobs.page(
            status=status, since=since, after=_uncursor(cursor) if cursor else None, limit=limit + 1
        )
        items = page[:limit]
        return {
            "items": [job_document(j) for j in items],
            "next": _cursor(items[-1]) if len(page) > limit else None,
        }

    def _job(job_id: str) -> Job:
        job = service.jobs.get(job_id)
        if job is None:
            raise ApiError(404, "not_found", f"no request {job_id}", "id")
        return job

    @app.get("/v1/requests/{job_id}", response_model=schemas.Job, responses=schemas.ERRORS, tags=["requests"])
    def get_request(job_id: str, _token: Reader) -> dict[str, Any]:
        return job_document(_job(job_id))

    @app.get(
        "/v1/requests/{job_id}/package",
        response_class=FileResponse,
        responses={200: {"content": {"application/zip": {}}}, 307: {"description": "to S3"}, **schemas.ERRORS},
        tags=["requests"],
    )
    def download(job_id: str, token: Reader) -> Response:
        """The package zip (personal data: the download is in the audit trail)."""
        return service.package_response(_job(job_id), actor=f"token:{token.name}")

    @app.delete(
        "/v1/requests/{job_id}/package", response_model=schemas.Job, responses=schemas.ERRORS, tags=["requests"]
    )
    def purge(job_id: str, token: Writer) -> dict[str, Any]:
        """Delete the package now; the job and its audit entries stay."""
        from piiport.service.retention import delete_package
        from piiport.service.store import utcnow

        job = _job(job_id)
        check_package(job)
        assert job.package is not None
        delete_package(job.package, service.config)
        service.jobs.set_package(job.id, None)
        service.jobs.update_result(job.id, purged_at=utcnow())
        service.audit.append(
            actor=f"token:{token.name}", action="package.purge", request_id=job.request_id, outcome="ok"
        )
        return job_document(_job(job_id))

    @app.get("/v1/inventory", tags=["inventory"], responses=schemas.ERRORS)
    def get_inventory(token: InventoryReader) -> Response:
        """The same JSON as ``piiport inventory --format json``."""
        from discover.inventory import inventory, render

        body = render(inventory(service.index), "json")
        service.audit.append(actor=f"token:{token.name}", action="inventory.read", outcome="ok")
        return Response(body, media_type="application/json")

    @app.get("/v1/audit", response_model=schemas.AuditPage, responses=schemas.ERRORS, tags=["audit"])
    def get_audit(
        _token: AuditReader,
        since: str | None = Query(default=None, description="ISO-8601 UTC"),
        after: int = Query(default=0, ge=0, le=2**62, description="the `next_after` of the previous page"),
        limit: int = Query(default=100, ge=1, le=1000),
    ) -> dict[str, Any]:
        entries = service.audit.entries(since=since, after_seq=after, limit=limit + 1)
        page = entries[:limit]
        return {"entries": page, "next_after": page[-1]["seq"] if len(entries) > limit else None}

    @app.post("/v1/scans", status_code=202, responses=schemas.ERRORS, tags=["scans"])
    def start_scan(token: Scanner, body: schemas.ScanRequest | None = None) -> dict[str, Any]:
        """Scan the sources of the server's config (or some of them, by name) in the background.

        Scans run one at a time per index; a second one waits in the queue."""
        configured = [s.name for s in service.config.sources]
        if not configured:
            raise ApiError(422, "no_sources", "the server's config has no sources to scan; add them under sources:")
        wanted = list(dict.fromkeys(body.sources)) if body and body.sources else []
        unknown = [name for name in wanted if name not in configured]
        if unknown:
            raise ApiError(
                422, "unknown_source", f"no source named {unknown[0]!r}; configured: {', '.join(configured)}", "sources"
            )
        scan = service.supervisor.scans.create(wanted, actor=f"token:{token.name}")
        service.supervisor.nudge()
        return scan.document()

    @app.get("/v1/scans/{scan_id}", responses=schemas.ERRORS, tags=["scans"])
    def get_scan(scan_id: str, _token: Scanner) -> dict[str, Any]:
        scan = service.supervisor.scans.get(scan_id)
        if scan is None:
            raise ApiError(404, "not_found", f"no scan {scan_id}", "id")
        return scan.document()

    @app.get("/healthz", tags=["operations"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], responses={503: {"model": schemas.ErrorBody}})
    def readyz() -> Response:
        from sqlalchemy import text

        try:
            with service.index.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception:
            return _error(503, "not_ready", "the index is not reachable")
        if settings.start_workers and not service.supervisor.alive:
            return _error(503, "not_ready", "no export worker is running")
        return JSONResponse({"status": "ready", "index": "ok", "workers": settings.workers})

    @app.get("/metrics", tags=["operations"], response_class=Response)
    def metrics() -> Response:
        body, content_type = service.metrics.render()
        return Response(body, media_type=content_type)

    from piiport.service import console

    console.install(app, service)
    return app
