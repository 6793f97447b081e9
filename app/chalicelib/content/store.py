"""Where stored content lives: one S3 object per message, and the tenant's retention setting.

    s3://<bucket>/<tenant>/<blake2b(message id)>.json.gz
        {"message_id", "stored_at", "retention_days", "subject", "html", "text", "headers"}
        tagged sesami-retention-days=<n> (content/retention.py: the bucket's lifecycle rules)

Keys start with the tenant, so deleting a tenant's content is one prefix (invariant 7's rule for
S3); the message ID is hashed into the key, so no ID a caller sends can name another key. The
bucket has default encryption, blocks public access and has the lifecycle rules (infra/content.py;
devstack provisions the same rules on moto's S3).

`delete_content(tenant_id, message_ids or ALL)` is what recipient erasure and tenant deletion
call, `delete_older` what a lowered retention runs (see content/service.py).
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any

from chalicelib.content.retention import TAG
from chalicelib.core import aws, dynamo
from chalicelib.core.errors import ServiceUnavailable
from chalicelib.core.tables import TenantModel

DELETE_BATCH = 1_000  # S3 DeleteObjects takes at most 1,000 keys


def object_key(tenant_id: str, message_id: str) -> str:
    digest = hashlib.blake2b(message_id.encode("utf-8", "surrogatepass"), digest_size=16)
    return f"{tenant_id}/{digest.hexdigest()}.json.gz"


class S3ContentStore:
    """The production adapter over a boto3 `s3` client (SESami's own account)."""

    def __init__(self, client: Any, bucket: str, *, page_size: int = 1_000) -> None:
        self._client, self._bucket = client, bucket
        self._page_size = page_size  # keys a listing answers (S3's most: 1,000)

    def put(self, tenant_id: str, message_id: str, document: dict[str, Any], days: int) -> None:
        body = gzip.compress(json.dumps(document, separators=(",", ":")).encode(), mtime=0)
        self._call(
            "storing content",
            lambda: self._client.put_object(
                Bucket=self._bucket,
                Key=object_key(tenant_id, message_id),
                Body=body,
                ContentType="application/json",
                ContentEncoding="gzip",
                Tagging=f"{TAG}={days}",
            ),
        )

    def get(self, tenant_id: str, message_id: str) -> dict[str, Any] | None:
        key = object_key(tenant_id, message_id)
        try:
            response = self._client.get_object(Bucket=self._bucket, Key=key)
            raw = response["Body"].read()
        except aws.errors() as exc:
            failed = aws.failure(exc)
            if failed is not None and failed.code in ("NoSuchKey", "404"):
                return None
            raise _unavailable("reading content", exc) from exc
        document: dict[str, Any] = json.loads(gzip.decompress(raw))
        return document

    def delete(self, tenant_id: str, message_ids: Iterable[str]) -> int:
        keys = sorted({object_key(tenant_id, m) for m in message_ids})
        return self._delete_keys(keys)

    def delete_all(self, tenant_id: str) -> int:
        deleted = 0
        batch: list[str] = []
        for key in self._keys(f"{tenant_id}/"):
            batch.append(key)
            if len(batch) == DELETE_BATCH:
                deleted += self._delete_keys(batch)
                batch = []
        return deleted + self._delete_keys(batch)

    def delete_older(
        self,
        tenant_id: str,
        cutoff: datetime,
        start_after: str | None,
        out_of_time: Callable[[], bool],
    ) -> tuple[int, str | None]:
        """Delete the tenant's objects written before `cutoff`, a listing page (1,000 keys) at
        a time from after `start_after`, until done (None) or out of time (the last key seen,
        where the next call goes on). The listing's LastModified is the time the object was
        stored: no object is read."""
        deleted = 0
        while True:
            kwargs: dict[str, Any] = {
                "Bucket": self._bucket,
                "Prefix": f"{tenant_id}/",
                "MaxKeys": self._page_size,
            }
            if start_after:
                kwargs["StartAfter"] = start_after
            page = self._call(
                "listing content", lambda kw=kwargs: self._client.list_objects_v2(**kw)
            )
            listed = page.get("Contents", [])
            deleted += self._delete_keys(
                [str(o["Key"]) for o in listed if o["LastModified"] < cutoff]
            )
            if not page.get("IsTruncated") or not listed:
                return deleted, None
            start_after = str(listed[-1]["Key"])
            if out_of_time():
                return deleted, start_after

    def _keys(self, prefix: str) -> Iterator[str]:
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"Bucket": self._bucket, "Prefix": prefix}
            if token:
                kwargs["ContinuationToken"] = token
            page = self._call(
                "listing content", lambda kw=kwargs: self._client.list_objects_v2(**kw)
            )
            for item in page.get("Contents", []):
                yield str(item["Key"])
            token = page.get("NextContinuationToken")
            if not token:
                return

    def _delete_keys(self, keys: list[str]) -> int:
        for i in range(0, len(keys), DELETE_BATCH):
            chunk = keys[i : i + DELETE_BATCH]
            answer = self._call(
                "deleting content",
                lambda chunk=chunk: self._client.delete_objects(
                    Bucket=self._bucket,
                    Delete={"Objects": [{"Key": k} for k in chunk], "Quiet": True},
                ),
            )
            if answer.get("Errors"):
                first = answer["Errors"][0]
                raise ServiceUnavailable(
                    f"S3 did not delete {len(answer['Errors'])} content object(s) "
                    f"({first.get('Code')}); nothing was lost, retry",
                    details={"retryable": True},
                )
        return len(keys)

    @staticmethod
    def _call(what: str, call: Any) -> Any:
        try:
            return call()
        except aws.errors() as exc:
            raise _unavailable(what, exc) from exc


def _unavailable(what: str, exc: BaseException) -> ServiceUnavailable:
    failed = aws.failure(exc)
    code = failed.code if failed else type(exc).__name__
    return ServiceUnavailable(f"{what} in S3 failed ({code})", details={"retryable": True})


def set_retention(tenant_id: str, days: int) -> None:
    """The tenant's content retention (TenantModel.content_retention_days)."""
    with dynamo.storage("saving the content retention"):
        TenantModel(tenant_id).update(
            actions=[TenantModel.content_retention_days.set(days)],
            condition=TenantModel.tenant_id.exists(),
        )
