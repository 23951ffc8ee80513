"""Callbacks: when a job ends, its status document is POSTed to its callback_url, signed and retried.

The signature header is ``Piiport-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">``
under the configured secret, as payment and code-hosting webhooks do: the receiver recomputes
it and rejects old timestamps. Only hosts on the configured allow-list are called (against
SSRF), and redirects are not followed. Each attempt is recorded on the job.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from fnmatch import fnmatch
from typing import Any
from urllib.parse import urlsplit

from piiport.config import ServiceSettings
from piiport.service.jobs import Job, JobStore
from piiport.service.store import utcnow

logger = logging.getLogger("piiport.service")

SIGNATURE_HEADER = "Piiport-Signature"
TIMEOUT = 10.0


def check_callback_url(url: str, settings: ServiceSettings) -> str | None:
    """Why this callback URL is refused, or None."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "callback_url must be an http or https URL"
    if not settings.callback_secret:
        return "callbacks are off: set service.callback_secret (or PIIPORT_CALLBACK_SECRET) in the server's config"
    host = parts.hostname.lower()
    if not any(fnmatch(host, allowed) for allowed in settings.callback_hosts):
        return f"callback host {host} is not in service.callback_hosts of the server's config"
    return None


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class CallbackSender:
    """Delivers due callbacks on a small thread pool; the supervisor calls ``tick`` on its loop."""

    def __init__(self, jobs: JobStore, settings: ServiceSettings, document: Callable[[Job], dict[str, Any]]) -> None:
        self.jobs = jobs
        self.settings = settings
        self.document = document
        self.pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="piiport-callbacks")
        self.opener = urllib.request.build_opener(_NoRedirect)
        self._busy: set[str] = set()
        self._lock = threading.Lock()

    def tick(self) -> None:
        for job in self.jobs.take_callbacks(lease=TIMEOUT * 6):
            with self._lock:
                if job.id in self._busy:
                    continue
                self._busy.add(job.id)
            self.pool.submit(self._deliver, job)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)

    def _deliver(self, job: Job) -> None:
        try:
            self._attempt(job)
        except Exception as exc:  # a bad URL or a store hiccup must not kill the pool
            logger.error("callback of job %s: %s", job.id, type(exc).__name__)
        finally:
            with self._lock:
                self._busy.discard(job.id)

    def _attempt(self, job: Job) -> None:
        number = len(job.callbacks) + 1
        url = job.params.get("callback_url") or ""
        refused = check_callback_url(url, self.settings)
        attempt: dict[str, Any] = {"attempt": number, "at": utcnow()}
        if refused:
            self.jobs.callback_attempted(job.id, attempt | {"ok": False, "error": refused}, next_due=None)
            return
        assert self.settings.callback_secret
        body = json.dumps(self.document(job), sort_keys=True).encode()
        timestamp = int(time.time())
        request = urllib.request.Request(
            url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "User-Agent": "piiport",
                "Piiport-Event": "request.finished",
                SIGNATURE_HEADER: sign(self.settings.callback_secret, timestamp, body),
            },
        )
        try:
            with self.opener.open(request, timeout=TIMEOUT) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            attempt |= {"ok": False, "error": type(reason).__name__ if not isinstance(reason, str) else reason}
            status = None
        if status is not None:
            attempt |= {"ok": 200 <= status < 300, "status": status}
        if attempt["ok"] or number >= self.settings.callback_retries:
            next_due = None
        else:
            next_due = time.time() + self.settings.callback_backoff * 2 ** (number - 1)
            attempt["next_at"] = next_due
        self.jobs.callback_attempted(job.id, attempt, next_due=next_due)
