"""Deleting packages: on request (DELETE …/package) and when they outlive ``export.package_ttl``."""

from __future__ import annotations

import shutil
import time
from datetime import datetime, timezone
from pathlib import Path

from piiport.config import Config
from piiport.service.audit import AuditLog
from piiport.service.jobs import JobStore


def delete_package(location: str, config: Config) -> None:
    """Delete a package on local disk or S3; one already gone is fine."""
    if location.startswith("s3://"):
        from connectors.s3 import s3_client, split_s3_url

        # split_s3_url reads a prefix (``key/``): a zip is one object, a folder all under it.
        bucket, prefix = split_s3_url(location)
        client = s3_client(config.s3.client_options())
        if location.endswith(".zip"):
            client.delete_object(Bucket=bucket, Key=prefix.rstrip("/"))
        else:
            listing = client.list_objects_v2(Bucket=bucket, Prefix=prefix)
            for obj in listing.get("Contents", []):
                client.delete_object(Bucket=bucket, Key=obj["Key"])
        return
    path = Path(location)
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


class Retention:
    """Deletes packages older than ``export.package_ttl``; their jobs become ``expired``."""

    def __init__(self, jobs: JobStore, audit: AuditLog, config: Config) -> None:
        self.jobs, self.audit, self.config = jobs, audit, config
        self.ttl = config.export.package_ttl
        self.every = max(1.0, min(60.0, self.ttl / 4))
        self._last = 0.0

    def tick(self) -> None:
        now = time.time()
        if now - self._last < self.every:
            return
        self._last = now
        cutoff = datetime.fromtimestamp(now - self.ttl, timezone.utc)
        for job in self.jobs.expirable(cutoff.isoformat(timespec="milliseconds").replace("+00:00", "Z")):
            assert job.package is not None
            delete_package(job.package, self.config)
            if self.jobs.expire(job):
                self.audit.append(
                    actor="service",
                    action="package.expire",
                    request_id=job.request_id,
                    outcome="ok",
                    package_sha256=job.result.get("package_sha256"),
                )
