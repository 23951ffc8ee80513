"""Errors of the export layer."""

from __future__ import annotations

from connectors.errors import PiiportError


class ExportError(PiiportError):
    """A package cannot be written (bad format or destination, a package that exists, a failed upload).

    ``reason`` names the kind of failure for programs: ``purpose``, ``lang``, ``format``, ``config``,
    ``exists``, ``destination``, ``request_id``.
    """

    def __init__(self, message: str, *, request_id: str | None = None, reason: str | None = None):
        super().__init__(message)
        self.request_id = request_id
        self.reason = reason


class RequestIdError(ExportError):
    """The request id is not usable as a file name on every system (it names the package)."""

    def __init__(self, message: str, *, request_id: str):
        super().__init__(message, request_id=request_id, reason="request_id")


def package_exists(request_id: str, where: str) -> ExportError:
    """A package for this request id is already at ``where`` (a folder, a ZIP or an S3 URL)."""
    return ExportError(
        f"a package for request id {request_id} already exists at {where}", request_id=request_id, reason="exists"
    )
