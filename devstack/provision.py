"""Provision the local stand-ins for SESami's AWS resources, from the same definitions the
production stack uses: the tables (`table_specs()`), the user pool's custom attributes
(`auth.CUSTOM_ATTRIBUTES`), the event bus, a customer role under /sesami/."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import boto3
from chalicelib.tenants.accounts import (
    DEFAULT_ROLE_NAME,
    FORWARDING_RULE_NAME,
    ROLE_PATH,
    SES_EVENT_TYPES,
)
from chalicelib.tenants.auth import CUSTOM_ATTRIBUTES

REGION = "us-east-1"


@dataclass(frozen=True)
class Identity:
    pool_id: str
    client_id: str
    jwks_url: str


def aws(endpoint: str, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="local",
        aws_secret_access_key="local",  # noqa: S106 - emulator
    )


def user_pool(endpoint: str, name: str = "sesami-dev") -> Identity:
    idp = aws(endpoint, "cognito-idp")
    pool_id = idp.create_user_pool(
        PoolName=name,
        UsernameAttributes=["email"],
        AutoVerifiedAttributes=["email"],
        Schema=[
            {"Name": attr, "AttributeDataType": "String", "Mutable": True}
            for attr in CUSTOM_ATTRIBUTES
        ],
    )["UserPool"]["Id"]
    client_id = idp.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="dashboard",
        ExplicitAuthFlows=[
            "ALLOW_USER_SRP_AUTH",
            "ALLOW_USER_PASSWORD_AUTH",
            "ALLOW_REFRESH_TOKEN_AUTH",
        ],
        ReadAttributes=["email", "email_verified", *(f"custom:{a}" for a in CUSTOM_ATTRIBUTES)],
        WriteAttributes=["email"],  # never the tenant attributes
    )["UserPoolClient"]["ClientId"]
    return Identity(pool_id, client_id, f"{endpoint}/{pool_id}/.well-known/jwks.json")


def user(endpoint: str, identity: Identity, email: str, password: str) -> str:
    """A confirmed user; returns its `sub`."""
    idp = aws(endpoint, "cognito-idp")
    created = idp.admin_create_user(
        UserPoolId=identity.pool_id,
        Username=email,
        MessageAction="SUPPRESS",
        UserAttributes=[
            {"Name": "email", "Value": email},
            {"Name": "email_verified", "Value": "true"},
        ],
    )
    idp.admin_set_user_password(
        UserPoolId=identity.pool_id, Username=email, Password=password, Permanent=True
    )
    attrs = {a["Name"]: a["Value"] for a in created["User"]["Attributes"]}
    return str(attrs.get("sub") or created["User"]["Username"])


def id_token(endpoint: str, identity: Identity, email: str, password: str) -> str:
    auth = aws(endpoint, "cognito-idp").initiate_auth(
        ClientId=identity.client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": email, "PASSWORD": password},
    )
    return str(auth["AuthenticationResult"]["IdToken"])


def event_bus(endpoint: str, name: str = "sesami") -> str:
    return str(aws(endpoint, "events").create_event_bus(Name=name)["EventBusArn"])


def customer_role(endpoint: str, sesami_role_arns: Sequence[str], external_id: str) -> str:
    """The role the customer-onboarding stack would create: it trusts SESami's roles, with the
    external ID (moto enforces neither)."""
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": list(sesami_role_arns)},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"sts:ExternalId": external_id}},
            }
        ],
    }
    role = aws(endpoint, "iam").create_role(
        RoleName=DEFAULT_ROLE_NAME, Path=ROLE_PATH, AssumeRolePolicyDocument=json.dumps(trust)
    )
    return str(role["Role"]["Arn"])


def customer_ses_setup(endpoint: str, sesami_bus_arn: str, configuration_set: str) -> list[str]:
    """What the customer-onboarding stack creates besides the role, as far as moto implements
    it. Returns what moto could not create (its SESv2 has no event destinations)."""
    missing = []
    sesv2 = aws(endpoint, "sesv2")
    sesv2.create_configuration_set(ConfigurationSetName=configuration_set)
    sesv2.create_email_identity(EmailIdentity="example.net")
    try:
        sesv2.create_configuration_set_event_destination(
            ConfigurationSetName=configuration_set,
            EventDestinationName="sesami-eventbridge",
            EventDestination={
                "Enabled": True,
                "MatchingEventTypes": sorted(SES_EVENT_TYPES),
                "EventBridgeDestination": {
                    "EventBusArn": sesami_bus_arn.rsplit(":", 1)[0] + ":event-bus/default"
                },
            },
        )
    except Exception:
        missing.append("SES event destinations")
    events = aws(endpoint, "events")
    events.put_rule(
        Name=FORWARDING_RULE_NAME,
        EventBusName="default",
        EventPattern=json.dumps(
            {
                "source": ["aws.ses"],
                "detail": {"mail": {"tags": {"ses:configuration-set": [configuration_set]}}},
            }
        ),
        State="ENABLED",
    )
    events.put_targets(
        Rule=FORWARDING_RULE_NAME,
        EventBusName="default",
        Targets=[{"Id": "sesami", "Arn": sesami_bus_arn}],
    )
    return missing


def content_bucket(endpoint: str, name: str) -> str:
    """The content bucket as the operator stack creates it (infra/content.py): default
    encryption, public access blocked, the lifecycle rules of content/retention.py."""
    from chalicelib.content.retention import lifecycle_rules

    s3 = aws(endpoint, "s3")
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(Bucket=name)
    s3.put_bucket_encryption(
        Bucket=name,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    s3.put_public_access_block(
        Bucket=name,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    s3.put_bucket_lifecycle_configuration(
        Bucket=name, LifecycleConfiguration={"Rules": lifecycle_rules()}
    )
    return name
