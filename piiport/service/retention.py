"""Deleting packages: on request (DELETE …/package) and when they outlive ``export.package_ttl``."""

from __future__ import annotations

import shutil
from pathlib import Path

from piiport.config import Config


def delete_package(location: str, config: Config) -> None:
    """Delete a package on local disk or S3; one already gone is fine."""
    if location.startswith("s3://"):
        from connectors.s3 import s3_client, split_s3_url

        bucket, key = split_s3_url(location)
        client = s3_client(config.s3.client_options())
        if key.endswith(".zip"):
            client.delete_object(Bucket=bucket, Key=key)
        else:
            listing = client.list_objects_v2(Bucket=bucket, Prefix=key.rstrip("/") + "/")
            for obj in listing.get("Contents", []):
                client.delete_object(Bucket=bucket, Key=obj["Key"])
        return
    path = Path(location)
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
