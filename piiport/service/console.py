"""The staff console: server-rendered HTML, no JavaScript, no external assets.

Staff sign in with an API token; the server keeps the session (a random id in an HttpOnly,
SameSite=Strict cookie; the token itself is never stored in it) and checks on every request
that the token is still active. Every form carries the session's CSRF token. Sessions live in
the server's memory: a restart signs everyone out.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from html import escape
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from piiport.service import schemas
from piiport.service.app import ApiError, Service, job_document
from piiport.service.jobs import Job
from piiport.service.tokens import Token

COOKIE = "piiport_session"
LOGIN_COOKIE = "piiport_login"
SESSION_SECONDS = 8 * 3600
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1d2330;background:#f5f6f8}
header{background:#1d2330;color:#fff;padding:.7em 1.5em;display:flex;gap:1.5em;align-items:center}
header a{color:#fff}header form{margin-left:auto}main{max-width:960px;margin:1.5em auto;padding:0 1em}
table{border-collapse:collapse;width:100%;background:#fff}th,td{text-align:left;padding:.45em .6em;
border-bottom:1px solid #dde}label{display:block;margin:.6em 0 .2em;font-weight:600}
input,select,textarea{font:inherit;padding:.35em;width:100%;box-sizing:border-box}
button,a.button{font:inherit;padding:.45em 1.1em;background:#2457c5;color:#fff;border:0;border-radius:3px;
cursor:pointer;text-decoration:none;display:inline-block}
.card{background:#fff;padding:1em 1.3em;margin-bottom:1em;border-radius:4px}
.status{font-weight:700}.err{color:#a11}.muted{color:#667}dl{display:grid;grid-template-columns:12em 1fr}
"""


@dataclass
class Session:
    token_name: str
    csrf: str
    expires: float


class Sessions:
    def __init__(self) -> None:
        self._by_hash: dict[str, Session] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(session_id: str) -> str:
        return hashlib.sha256(session_id.encode()).hexdigest()

    def new(self, token: Token) -> tuple[str, Session]:
        session_id = secrets.token_urlsafe(32)
        session = Session(token.name, secrets.token_urlsafe(32), time.time() + SESSION_SECONDS)
        with self._lock:
            now = time.time()
            self._by_hash = {k: v for k, v in self._by_hash.items() if v.expires > now}
            self._by_hash[self._key(session_id)] = session
        return session_id, session

    def get(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        with self._lock:
            session = self._by_hash.get(self._key(session_id))
        return session if session and session.expires > time.time() else None

    def drop(self, session_id: str | None) -> None:
        if session_id:
            with self._lock:
                self._by_hash.pop(self._key(session_id), None)


def _page(title: str, body: str, *, session: Session | None = None, status: int = 200) -> HTMLResponse:
    nav = ""
    if session is not None:
        nav = (
            '<a href="/console/requests">Requests</a><a href="/console/requests/new">New request</a>'
            f'<span class="muted">signed in as {escape(session.token_name)}</span>'
            f'<form method="post" action="/console/signout">{_csrf(session.csrf)}<button>Sign out</button></form>'
        )
    html = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)} · piiport</title>'
        f'<meta name="viewport" content="width=device-width"><style>{STYLE}</style></head><body>'
        f"<header><strong>piiport</strong>{nav}</header><main><h1>{escape(title)}</h1>{body}</main></body></html>"
    )
    return HTMLResponse(html, status_code=status, headers=HEADERS)


def _csrf(value: str) -> str:
    return f'<input type="hidden" name="csrf" value="{escape(value)}">'


async def _form(request: Request) -> dict[str, str]:
    body = (await request.body()).decode("utf-8", errors="replace")
    return {k: v[-1] for k, v in parse_qs(body, keep_blank_values=True).items()}


def install(app: FastAPI, service: Service) -> None:
    sessions = Sessions()

    def current(request: Request, scope: str) -> tuple[Session, Token] | None:
        session = sessions.get(request.cookies.get(COOKIE))
        token = service.tokens.active(session.token_name) if session else None
        if session is None or token is None:
            return None
        if scope not in token.scopes:
            raise ApiError(403, "forbidden", f"token {token.name!r} lacks the scope {scope}")
        return session, token

    def signin_page(request: Request, message: str = "", status: int = 200) -> HTMLResponse:
        login = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(32)
        body = (
            '<div class="card"><form method="post" action="/console/signin">'
            f"{_csrf(login)}"
            '<label for="token">API token</label>'
            '<input id="token" name="token" type="password" autocomplete="off" required>'
            '<p class="muted">A token from <code>piiport token create NAME --scope requests:write,requests:read</code>'
            '</p><button id="signin">Sign in</button></form>'
            + (f'<p class="err">{escape(message)}</p>' if message else "")
            + "</div>"
        )
        response = _page("Sign in", body, status=status)
        response.set_cookie(
            LOGIN_COOKIE, login, httponly=True, samesite="strict", secure=request.url.scheme == "https", path="/console"
        )
        return response

    def guard(request: Request, scope: str) -> tuple[Session, Token] | Response:
        try:
            found = current(request, scope)
        except ApiError as exc:
            return _page("Not allowed", f'<p class="err">{escape(exc.message)}</p>', status=403)
        return found if found else RedirectResponse("/console/signin", status_code=303)

    def csrf_ok(session: Session, form: dict[str, str]) -> bool:
        return hmac.compare_digest(session.csrf.encode(), form.get("csrf", "").encode())

    @app.get("/", include_in_schema=False)
    def root() -> Response:
        return RedirectResponse("/console/requests", status_code=303)

    @app.get("/console/signin", include_in_schema=False)
    def signin_form(request: Request) -> Response:
        return signin_page(request)

    @app.post("/console/signin", include_in_schema=False)
    async def signin(request: Request) -> Response:
        form = await _form(request)
        expected = request.cookies.get(LOGIN_COOKIE, "")
        if not expected or not hmac.compare_digest(expected.encode(), form.get("csrf", "").encode()):
            return signin_page(request, "The form expired; sign in again.", status=403)
        token = service.tokens.authenticate(form.get("token", "").strip())
        if token is None:
            return signin_page(request, "Unknown or revoked token.", status=401)
        session_id, _session = sessions.new(token)
        response = RedirectResponse("/console/requests", status_code=303)
        response.set_cookie(
            COOKIE,
            session_id,
            max_age=SESSION_SECONDS,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )
        response.delete_cookie(LOGIN_COOKIE, path="/console")
        return response

    @app.post("/console/signout", include_in_schema=False)
    async def signout(request: Request) -> Response:
        session = sessions.get(request.cookies.get(COOKIE))
        if session is not None and csrf_ok(session, await _form(request)):
            sessions.drop(request.cookies.get(COOKIE))
        response = RedirectResponse("/console/signin", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    @app.get("/console/requests", include_in_schema=False)
    def list_page(request: Request) -> Response:
        found = guard(request, "requests:read")
        if isinstance(found, Response):
            return found
        session, _token = found
        rows = "".join(
            f'<tr><td><a href="/console/requests/{escape(j.id)}">{escape(j.request_id)}</a></td>'
            f'<td class="status">{escape(j.status)}</td>'
            f"<td>{escape(', '.join(i['masked'] for i in j.params.get('identifiers', [])))}</td>"
            f"<td>{escape(j.created_at)}</td></tr>"
            for j in service.jobs.page(limit=200, newest_first=True)
        )
        body = (
            '<p><a href="/console/requests/new">New request</a></p>'
            "<table><thead><tr><th>Request</th><th>Status</th><th>Subject</th><th>Created (UTC)</th></tr></thead>"
            f"<tbody>{rows or '<tr><td colspan=4 class=muted>No requests yet.</td></tr>'}</tbody></table>"
        )
        return _page("Requests", body, session=session)

    def new_form(session: Session, message: str = "", status: int = 200) -> HTMLResponse:
        fields = "".join(
            f'<label for="{kind}">{label}</label><textarea id="{kind}" name="{kind}" rows="2" '
            f'placeholder="one per line"></textarea>'
            for kind, label in (("email", "E-mail"), ("phone", "Phone"), ("ip", "IP address"), ("name", "Full name"))
        )
        body = (
            '<div class="card"><form method="post" action="/console/requests">'
            f"{_csrf(session.csrf)}{fields}"
            '<label for="format">Format</label><select id="format" name="format">'
            '<option value="json">JSON</option><option value="csv">CSV</option>'
            '<option value="parquet">Parquet</option></select>'
            '<label for="request_id">Request id (optional, e.g. your ticket number)</label>'
            '<input id="request_id" name="request_id" maxlength="100">'
            '<p><button id="create">Create request</button></p></form>'
            + (f'<p class="err">{escape(message)}</p>' if message else "")
            + "</div>"
        )
        return _page("New access request", body, session=session, status=status)

    @app.get("/console/requests/new", include_in_schema=False)
    def new_page(request: Request) -> Response:
        found = guard(request, "requests:write")
        return found if isinstance(found, Response) else new_form(found[0])

    @app.post("/console/requests", include_in_schema=False)
    async def create(request: Request) -> Response:
        found = guard(request, "requests:write")
        if isinstance(found, Response):
            return found
        session, token = found
        form = await _form(request)
        if not csrf_ok(session, form):
            return _page("Not allowed", '<p class="err">The form expired; open it again.</p>', status=403)
        identifiers = {
            kind: [v.strip() for v in form.get(kind, "").splitlines() if v.strip()]
            for kind in ("email", "phone", "ip", "name")
        }
        try:
            body = schemas.AccessRequest(
                identifiers=schemas.Identifiers(**identifiers),
                format=form.get("format", "json"),  # type: ignore[arg-type]
                request_id=form.get("request_id", "").strip() or None,
            )
            job, _created = service.submit(body, actor=f"token:{token.name}")
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            return new_form(session, f"{where}: {first['msg']}", status=422)
        except ApiError as exc:
            return new_form(session, exc.message, status=exc.status)
        return RedirectResponse(f"/console/requests/{job.id}", status_code=303)

    @app.get("/console/requests/{job_id}", include_in_schema=False)
    def job_page(job_id: str, request: Request) -> Response:
        found = guard(request, "requests:read")
        if isinstance(found, Response):
            return found
        session, _token = found
        job = service.jobs.get(job_id)
        if job is None:
            return _page("Not found", f"<p>No request {escape(job_id)}.</p>", session=session, status=404)
        return _job_view(job, session)

    @app.get("/console/requests/{job_id}/package", include_in_schema=False)
    def package(job_id: str, request: Request) -> Response:
        found = guard(request, "requests:read")
        if isinstance(found, Response):
            return found
        session, token = found
        job = service.jobs.get(job_id)
        if job is None:
            return _page("Not found", f"<p>No request {escape(job_id)}.</p>", session=session, status=404)
        try:
            return service.package_response(job, actor=f"token:{token.name}")
        except ApiError as exc:
            return _page("No package", f'<p class="err">{escape(exc.message)}</p>', session=session, status=exc.status)


def _job_view(job: Job, session: Session) -> HTMLResponse:
    doc: dict[str, Any] = job_document(job)
    summary = doc.get("manifest") or {}
    rows = [
        ("Status", f'<span class="status" id="status">{escape(job.status)}</span>'),
        ("Request id", escape(job.request_id)),
        ("Subject", escape(", ".join(i["masked"] for i in doc["identifiers"]))),
        ("Format", escape(doc["format"])),
        ("Attempts", str(job.attempts)),
        ("Created (UTC)", escape(job.created_at)),
        ("Finished (UTC)", escape(job.finished_at or "")),
    ]
    if summary:
        rows += [
            ("Found", "yes" if summary.get("found") else "no (empty package)"),
            ("Files", str(summary.get("files", 0))),
            ("Records", str(summary.get("records", 0))),
            ("To review", str(summary.get("review", summary.get("third_party_mentions", 0)))),
        ]
        if "complete" in summary:
            rows.append(("Complete", "yes" if summary["complete"] else "no"))
    details = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows)
    parts = [f'<div class="card"><dl>{details}</dl></div>']
    errors = summary.get("errors") or []
    if doc.get("error"):
        parts.append(f'<div class="card err" id="error">{escape(str(doc["error"].get("message", "")))}</div>')
    if errors:
        items = "".join(f"<li>{escape(e)}</li>" for e in errors)
        parts.append(f'<div class="card"><h2>Errors</h2><ul class="err">{items}</ul></div>')
    if summary.get("third_party_mentions"):
        parts.append(
            '<div class="card"><h2>Review</h2><p>Some records mention other people (listed in the manifest\'s '
            "<code>third_party_mentions</code>); redact them before handing the package over.</p></div>"
        )
    if job.package is not None and job.status in ("done", "incomplete"):
        parts.append(
            f'<p><a id="download" class="button" href="/console/requests/{escape(job.id)}/package" download>'
            "Download package (zip)</a></p>"
        )
    response = _page(f"Request {job.request_id}", "".join(parts), session=session)
    if job.status in ("queued", "running"):
        response.headers["Refresh"] = "2"  # no JavaScript: the browser reloads until it is done
    return response
