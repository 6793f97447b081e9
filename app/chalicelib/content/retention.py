"""How long stored content is kept: the one description the app, the operator's Pulumi program
and the local stack share (plain data; no AWS, no Pulumi).

Each object is tagged with its tenant's retention when it is stored (`TAG`), and the bucket has one
lifecycle rule per allowed value that expires objects with that tag after that many days. S3
runs lifecycle expiry asynchronously (objects can outlive their day by a day or so), so reads
also check the age themselves: content past its retention is never shown, whatever S3 has done.
A tenant chooses among `ALLOWED_DAYS`; 0 stores nothing.
"""

from __future__ import annotations

from typing import Any

TAG = "sesami-retention-days"
DEFAULT_DAYS = 30
ALLOWED_DAYS = (0, 1, 3, 7, 14, 30, 60, 90, 180, 365)


def lifecycle_rules() -> list[dict[str, Any]]:
    """The bucket's lifecycle rules, in S3's PutBucketLifecycleConfiguration shape."""
    rules: list[dict[str, Any]] = [
        {
            "ID": f"expire-after-{days}-days",
            "Status": "Enabled",
            "Filter": {"Tag": {"Key": TAG, "Value": str(days)}},
            "Expiration": {"Days": days},
        }
        for days in ALLOWED_DAYS
        if days > 0
    ]
    rules.append(
        {
            "ID": "abort-incomplete-uploads",
            "Status": "Enabled",
            "Filter": {"Prefix": ""},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
        }
    )
    return rules
