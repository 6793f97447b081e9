"""SESami's own copy of Apple's iCloud Private Relay egress ranges: one S3 object in the
operator's bucket, in the format of the shipped file (events/relay_ranges.py).

The scheduled `relay_ranges` function writes it (`put`); ingest reads it once per instance
(`lines`, registered by core/wiring.py with `relay_ranges.use_published`), on its first open or
click, with short timeouts and no retry, so a stalled S3 delays one event of a new instance by
seconds, never fails it. Ingest's role may read this one key and list nothing, so a missing
object answers AccessDenied, not NoSuchKey: both mean "no copy yet" (the shipped file).
"""

from __future__ import annotations

from typing import Any

from chalicelib.core import aws

OBJECT_KEY = "relay-ranges/apple_relay_egress.csv"
MAX_BYTES = 8 * 1024 * 1024  # the merged list is ~250 KB; Apple's raw file ~10 MB
# Ingest's reads: it must not wait on S3 (botocore's defaults are 60 s and 4 retries).
READ_CONFIG: dict[str, Any] = {
    "connect_timeout": 2,
    "read_timeout": 3,
    "retries": {"mode": "standard", "total_max_attempts": 1},  # one attempt, no retry
}
_MISSING = {"NoSuchKey", "NoSuchBucket"}


class RelayRangesObject:
    def __init__(self, client: Any, bucket: str, key: str = OBJECT_KEY) -> None:
        self._client, self.bucket, self.key = client, bucket, key

    def lines(self) -> list[str] | None:
        """The copy's lines; None when there is none (yet). Other failures raise."""
        try:
            response = self._client.get_object(Bucket=self.bucket, Key=self.key)
            raw = bytes(response["Body"].read(MAX_BYTES + 1))
        except aws.errors() as exc:
            failure = aws.failure(exc)
            if failure is not None and (
                failure.code in _MISSING
                or failure.kind in (aws.Kind.NOT_FOUND, aws.Kind.ACCESS_DENIED)
            ):
                return None
            raise
        if len(raw) > MAX_BYTES:
            raise ValueError(f"s3://{self.bucket}/{self.key} is over {MAX_BYTES} bytes")
        return raw.decode("utf-8", errors="replace").splitlines()

    def put(self, text: str) -> None:
        self._client.put_object(
            Bucket=self.bucket,
            Key=self.key,
            Body=text.encode("utf-8"),
            ContentType="text/plain; charset=utf-8",
        )
