"""Request and response bodies of the HTTP API (pydantic; they make the OpenAPI document)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Value = Field(min_length=1, max_length=320)


class Identifiers(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: list[str] = Field(default_factory=list, max_length=20)
    phone: list[str] = Field(default_factory=list, max_length=20)
    ip: list[str] = Field(default_factory=list, max_length=20)
    name: list[str] = Field(default_factory=list, max_length=20)

    def count(self) -> int:
        return len(self.email) + len(self.phone) + len(self.ip) + len(self.name)


class AccessRequest(BaseModel):
    """An access (Art. 15) or portability (Art. 20) request for one subject."""

    model_config = ConfigDict(extra="forbid")

    identifiers: Identifiers
    format: Literal["json", "csv", "parquet"] = "json"
    request_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
    callback_url: str | None = Field(default=None, max_length=2000)


class ScanRequest(BaseModel):
    """Names of configured sources to scan; none: all of them."""

    model_config = ConfigDict(extra="forbid")

    sources: list[str] = Field(default_factory=list, max_length=100)


class Links(BaseModel):
    self: str
    package: str


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


class Job(BaseModel):
    id: str
    request_id: str
    status: Literal["queued", "running", "done", "incomplete", "refused", "failed", "expired"]
    format: str
    #: Masked: ``a***@e***.com``.
    identifiers: list[dict[str, str]]
    attempts: int
    created_at: str
    started_at: str | None = None
    finished_at: str | None = None
    manifest: dict[str, Any] | None = None
    package_sha256: str | None = None
    package_available: bool = False
    error: dict[str, Any] | None = None
    callbacks: list[dict[str, Any]] = Field(default_factory=list)
    links: Links


class JobPage(BaseModel):
    items: list[Job]
    next: str | None = None


class AuditPage(BaseModel):
    entries: list[dict[str, Any]]
    next_after: int | None = None


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 403, 404, 409, 410, 413, 422)
}
