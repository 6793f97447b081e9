"""The bucket that keeps the content of mail SESami sent (the app's chalicelib/content/).

- default encryption (SSE-S3, AES-256) with a bucket key, and object ownership enforced (no ACLs);
- every kind of public access blocked (the functions' roles are the only way in);
- a bucket policy that denies every request not made over TLS (`aws:SecureTransport` false),
  whoever makes it: it grants nothing, so access is still by the roles' policies alone;
- lifecycle expiry by the retention tag each object is stored with, one rule per retention a
  tenant may choose (`chalicelib.content.retention`, the same rules the local stack applies to
  moto's S3), and incomplete uploads aborted after a day;
- protected like the tables (`deletionProtection`): Pulumi refuses to delete it, and it is never
  force-destroyed with its content.

What each role may do with it is in roles.py (`content_bucket` of the scope).
"""

from __future__ import annotations

import json
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws

with warnings.catch_warnings():
    # pulumi_aws.s3 still defines its deprecated *V2 resources when it is imported; SESami uses
    # the current ones, and the suite turns warnings into errors.
    warnings.simplefilter("ignore", DeprecationWarning)
    _ = aws.s3.Bucket  # the package loads its modules lazily: this loads pulumi_aws.s3

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "app"))

from chalicelib.content.retention import lifecycle_rules


@dataclass(frozen=True)
class ContentArgs:
    bucket_name: str
    deletion_protection: bool = True


def tls_only_policy(bucket_arn: str) -> dict[str, Any]:
    """Pure: the bucket policy that refuses plain HTTP, for every action and principal (AWS's
    recommended form, Security Hub's S3.5 control); it allows nothing."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [bucket_arn, f"{bucket_arn}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ],
    }


def lifecycle_rule_args(
    rules: list[dict[str, Any]],
) -> list[aws.s3.BucketLifecycleConfigurationRuleArgs]:
    """Pure: the app's lifecycle rules (S3's shape) as Pulumi arguments."""
    out = []
    for rule in rules:
        tag = rule["Filter"].get("Tag")
        expiration = rule.get("Expiration")
        abort = rule.get("AbortIncompleteMultipartUpload")
        out.append(
            aws.s3.BucketLifecycleConfigurationRuleArgs(
                id=rule["ID"],
                status=rule["Status"],
                filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(
                    tag=aws.s3.BucketLifecycleConfigurationRuleFilterTagArgs(
                        key=tag["Key"], value=tag["Value"]
                    )
                    if tag
                    else None,
                    prefix=rule["Filter"].get("Prefix"),
                ),
                expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(
                    days=expiration["Days"]
                )
                if expiration
                else None,
                abort_incomplete_multipart_upload=(
                    aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                        days_after_initiation=abort["DaysAfterInitiation"]
                    )
                    if abort
                    else None
                ),
            )
        )
    return out


class SesamiContent(pulumi.ComponentResource):
    bucket: aws.s3.Bucket

    def __init__(
        self, name: str, args: ContentArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("sesami:data:Content", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.bucket = aws.s3.Bucket(
            f"{name}-content",
            bucket=args.bucket_name,
            force_destroy=False,
            opts=pulumi.ResourceOptions(parent=self, protect=args.deletion_protection),
        )
        self.encryption = aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-content-encryption",
            bucket=self.bucket.id,
            rules=[
                aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=(
                        aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                            sse_algorithm="AES256"
                        )
                    ),
                    bucket_key_enabled=True,
                )
            ],
            opts=child,
        )
        self.public_access = aws.s3.BucketPublicAccessBlock(
            f"{name}-content-public-access",
            bucket=self.bucket.id,
            block_public_acls=True,
            ignore_public_acls=True,
            block_public_policy=True,
            restrict_public_buckets=True,
            opts=child,
        )
        self.ownership = aws.s3.BucketOwnershipControls(
            f"{name}-content-ownership",
            bucket=self.bucket.id,
            rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
            opts=child,
        )
        self.lifecycle = aws.s3.BucketLifecycleConfiguration(
            f"{name}-content-lifecycle",
            bucket=self.bucket.id,
            rules=lifecycle_rule_args(lifecycle_rules()),
            opts=child,
        )
        self.tls_only = aws.s3.BucketPolicy(
            f"{name}-content-tls-only",
            bucket=self.bucket.id,
            policy=self.bucket.arn.apply(lambda arn: json.dumps(tls_only_policy(arn))),
            # S3 checks a new policy against the public access block: set that first.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.public_access]),
        )
        self.register_outputs({"bucket": self.bucket.bucket, "arn": self.bucket.arn})
