"""S3 and S3-compatible object stores: ``s3://bucket/prefix``.

Objects are listed with pagination and read as streams (Parquet by ranged reads), in the
same formats as local files. Credentials come only from boto3's standard chain
(environment, profile, instance role). Throttling and 5xx answers are retried by botocore
with backoff ("standard" retry mode).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator, Mapping
from pathlib import PurePosixPath
from typing import IO, Any

from connectors.base import Connector, ContainerReader, ContainerRef, SourceSpec
from connectors.errors import SourceError
from connectors.files import FileReader, format_for, known_suffixes
from connectors.options import S3Options, coerce
from connectors.transient import S3_TRANSIENT

logger = logging.getLogger(__name__)


def split_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` → ``("bucket", "some/prefix/")``."""
    rest = url[len("s3://") :]
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise SourceError(f"{url} names no bucket; write s3://bucket/prefix")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return bucket, prefix


def s3_client(options: S3Options | Mapping[str, Any]) -> Any:
    """A boto3 client from the standard credential chain, with region, endpoint and profile options
    (an ``S3Options``, or a mapping of its fields: the delivery settings).

    ``AWS_ENDPOINT_URL`` (and ``AWS_ENDPOINT_URL_S3``) work as they do for boto3 itself.
    """
    import boto3
    from botocore.config import Config

    if not isinstance(options, S3Options):
        options = S3Options(**options)

    session = boto3.session.Session(profile_name=options.profile, region_name=options.region)
    config = Config(
        # SigV4 everywhere: presigned URLs of SSE-KMS objects need it, and SigV2 is retired.
        signature_version="s3v4",
        retries={"max_attempts": options.max_attempts, "mode": "standard"},
        connect_timeout=options.connect_timeout,
        read_timeout=options.read_timeout,
    )
    return session.client("s3", endpoint_url=options.endpoint_url, config=config)


def _error_code(exc: BaseException) -> str:
    """The S3 error code of an answer; "" for a failure with no answer (a network error)."""
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


class S3Error(SourceError):
    """An S3 failure, with the S3 error code ("" when no answer came: a network failure).

    ``transient``: the store said "later" (throttling, 5xx) after botocore's own retries.
    """

    def __init__(
        self, message: str, *, code: str = "", source: str | None = None, container: str | None = None
    ) -> None:
        super().__init__(message, source=source, container=container)
        self.code = code

    @property
    def transient(self) -> bool:
        return self.code in S3_TRANSIENT


def translate(
    exc: BaseException, *, where: str, bucket: str, source: str | None = None, container: str | None = None
) -> S3Error:
    """One line that says what went wrong with a bucket or object and what to do."""
    code = _error_code(exc)
    if code in {"NoSuchBucket"}:
        hint = f"bucket {bucket} does not exist; check the URL and region"
    elif code in {"AccessDenied", "403", "AllAccessDisabled", "InvalidAccessKeyId", "SignatureDoesNotMatch"}:
        hint = f"access denied ({code}); give the credentials s3:ListBucket and s3:GetObject on {bucket}"
    elif code in {"NoSuchKey", "404"}:
        hint = "the object was deleted after it was listed; scan again"
    elif code in {"PreconditionFailed", "412"}:
        hint = "the object changed while it was read; scan again"
    elif code in S3_TRANSIENT:
        hint = f"the store kept answering {code} after retries; try again later"
    elif code:
        hint = f"S3 error {code}"
    else:
        hint = f"{type(exc).__name__}: {exc}; check the endpoint and network"
    return S3Error(f"{where}: {hint}", code=code, source=source, container=container)


class _BodyStream(io.RawIOBase):
    """A raw, non-seekable stream over an S3 GetObject body: read in chunks, never whole."""

    def __init__(self, body: Any) -> None:
        self.body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.body.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        return n

    def close(self) -> None:
        if not self.closed:
            self.body.close()
        super().close()


class RangeFile(io.RawIOBase):
    """A seekable file over an S3 object that reads by HTTP range: Parquet reads its footer and row groups."""

    def __init__(self, client: Any, bucket: str, key: str, size: int, etag: str | None) -> None:
        self.client, self.bucket, self.key, self.size, self.etag = client, bucket, key, size, etag
        self.pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def readinto(self, buffer: Any) -> int:
        if self.pos >= self.size or not len(buffer):
            return 0
        end = min(self.size, self.pos + len(buffer)) - 1
        kwargs = {"IfMatch": self.etag} if self.etag else {}
        body = self.client.get_object(Bucket=self.bucket, Key=self.key, Range=f"bytes={self.pos}-{end}", **kwargs)[
            "Body"
        ]
        data = body.read()
        n = len(data)
        buffer[:n] = data
        self.pos += n
        return n


class S3Connector(Connector):
    """Objects under ``s3://bucket/prefix`` whose key ends in a known file suffix."""

    schemes = ("s3",)
    options_type = S3Options
    reads_whole = True

    def __init__(self, spec: SourceSpec) -> None:
        super().__init__(spec)
        self.options = coerce(S3Options, spec.options, spec.name)
        self.bucket, self.prefix = split_s3_url(spec.url)
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = s3_client(self.options)
        return self._client

    def containers(self) -> Iterator[ContainerRef]:
        from botocore.exceptions import BotoCoreError, ClientError

        where = f"source {self.spec.name!r}"
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix)
            for page in pages:
                for obj in page.get("Contents", []):
                    key = obj["Key"]
                    name = key[len(self.prefix) :]
                    found = format_for(PurePosixPath(name))
                    if key.endswith("/") or not self.spec.selects(name):
                        continue
                    if found is None:
                        self.skipped["unknown_format"] += 1
                        continue
                    version = {"bucket": self.bucket, "key": key, "etag": obj["ETag"], "size": obj["Size"]}
                    yield ContainerRef(self.spec.name, name, found[0].kind, version)
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, where=where, bucket=self.bucket, source=self.spec.name) from exc

    def open(self, ref: ContainerRef) -> ContainerReader:
        from botocore.exceptions import BotoCoreError, ClientError

        found = format_for(PurePosixPath(ref.name))
        if found is None:
            raise SourceError(f"{ref.name}: unknown format; known: {', '.join(known_suffixes())}", container=ref.name)
        key = self.prefix + ref.name
        etag = (ref.version or {}).get("etag")
        where = f"s3://{self.bucket}/{key}"

        def open_raw() -> IO[bytes]:
            try:
                kwargs = {"IfMatch": etag} if etag else {}
                body = self.client.get_object(Bucket=self.bucket, Key=key, **kwargs)["Body"]
            except (ClientError, BotoCoreError) as exc:
                raise translate(
                    exc, where=where, bucket=self.bucket, source=self.spec.name, container=ref.name
                ) from exc
            return io.BufferedReader(_BodyStream(body), buffer_size=1 << 16)

        def open_seekable() -> IO[bytes]:
            size = int((ref.version or {}).get("size") or self._head(key, where)["ContentLength"])
            return io.BufferedReader(RangeFile(self.client, self.bucket, key, size, etag), buffer_size=1 << 20)

        def version() -> Mapping[str, Any] | None:
            try:
                head = self._head(key, where)
            except SourceError:
                return None
            return {"bucket": self.bucket, "key": key, "etag": head["ETag"], "size": head["ContentLength"]}

        return FileReader(ref, found[0], found[1], open_raw=open_raw, version=version, open_seekable=open_seekable)

    def _head(self, key: str, where: str) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return dict(self.client.head_object(Bucket=self.bucket, Key=key))
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, where=where, bucket=self.bucket, source=self.spec.name) from exc
