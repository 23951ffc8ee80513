"""Deliver a written package to S3: server-side encryption, multipart uploads, a presigned URL."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connectors.s3 import s3_client, split_s3_url, translate
from export.errors import ExportError

logger = logging.getLogger(__name__)

SEVEN_DAYS = 7 * 24 * 3600


@dataclass(frozen=True)
class S3Delivery:
    """Where and how a package goes to S3."""

    #: ``AES256`` (SSE-S3, the default) or ``aws:kms`` (SSE-KMS, with ``kms_key_id``).
    sse: str = "AES256"
    kms_key_id: str | None = None
    url_expiry: int = SEVEN_DAYS
    multipart_threshold: int = 8 * 1024 * 1024
    #: region, endpoint_url, profile: as for S3 sources.
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.sse not in {"AES256", "aws:kms"}:
            raise ExportError(f"s3 sse {self.sse!r} is not AES256 or aws:kms", reason="config")
        if not 1 <= self.url_expiry <= SEVEN_DAYS:
            # SigV4 presigned URLs live at most seven days.
            raise ExportError("the download URL expiry must be between 1 second and 7 days", reason="config")

    def extra_args(self) -> dict[str, str]:
        args = {"ServerSideEncryption": self.sse}
        if self.sse == "aws:kms" and self.kms_key_id:
            args["SSEKMSKeyId"] = self.kms_key_id
        return args


@dataclass(frozen=True)
class Delivered:
    url: str
    download_url: str


def existing_package(url: str, request_id: str, delivery: S3Delivery) -> str | None:
    """The S3 URL of a package already stored for this request id, if any."""
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, prefix = split_s3_url(url)
    client = s3_client(delivery.options)
    try:
        listing = client.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}{request_id}", MaxKeys=10)
    except (ClientError, BotoCoreError) as exc:
        raise _export_error(exc, bucket, url) from exc
    for obj in listing.get("Contents", []):
        rest = obj["Key"][len(prefix) :]
        if rest == f"{request_id}.zip" or rest.startswith(f"{request_id}/"):
            return f"s3://{bucket}/{prefix}{rest}"
    return None


def upload(local: Path, url: str, delivery: S3Delivery) -> Delivered:
    """Upload a package folder or zip under ``url``. Memory: one multipart chunk at a time."""
    from boto3.s3.transfer import TransferConfig
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, prefix = split_s3_url(url)
    client = s3_client(delivery.options)
    transfer = TransferConfig(
        multipart_threshold=delivery.multipart_threshold, multipart_chunksize=delivery.multipart_threshold
    )
    files = [local] if local.is_file() else sorted(p for p in local.rglob("*") if p.is_file())
    base = local.name if local.is_file() else f"{local.name}/"
    try:
        for path in files:
            key = prefix + (base if local.is_file() else base + path.relative_to(local).as_posix())
            client.upload_file(str(path), bucket, key, ExtraArgs=delivery.extra_args(), Config=transfer)
        target = prefix + (base if local.is_file() else f"{base}manifest.json")
        download = client.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": target}, ExpiresIn=delivery.url_expiry
        )
    except (ClientError, BotoCoreError) as exc:
        raise _export_error(exc, bucket, url) from exc
    return Delivered(url=f"s3://{bucket}/{prefix}{base}".rstrip("/"), download_url=download)


def _export_error(exc: BaseException, bucket: str, url: str) -> ExportError:
    message = translate(exc, where=url, bucket=bucket).message
    message = message.replace("s3:ListBucket and s3:GetObject", "s3:ListBucket and s3:PutObject")
    return ExportError(message, reason="destination")
