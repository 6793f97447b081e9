"""The lifecycle routes through Chalice's test client (moto's Cognito and STS, DynamoDB Local):
disconnecting keeps the history and is audited; erasing answers with what it removed."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from chalicelib.core import wiring
from chalicelib.core.tables import AccountModel

from tests.api_fixtures import MOTO_ACCOUNT, call, make_role, sign_in
from tests.lifecycle.support import event, unique


def connected(api: Any, moto: str, pool: dict[str, str]) -> str:
    AccountModel(MOTO_ACCOUNT).delete()  # moto has one account: earlier tests bound it
    token = sign_in(moto, pool)
    response = call(api, "PUT", "/account", token, {"role_arn": make_role(moto)})
    assert response.status_code == 200, response.json_body
    return token


def sent_now(name: str, message_id: str, **addresses: str) -> dict[str, Any]:
    raw = event(name, message_id, MOTO_ACCOUNT, **addresses)
    raw["detail"]["mail"]["timestamp"] = datetime.now(UTC).isoformat()
    return raw


def test_disconnect_keeps_the_history_and_is_audited(
    api: Any, moto: str, pool: dict[str, str]
) -> None:
    token = connected(api, moto, pool)
    message = f"m-{uuid.uuid4().hex}"
    assert wiring.ingest([sent_now("send", message, alice=unique("r"))]).counts() == {"stored": 1}
    gone = call(api, "DELETE", "/account", token)
    assert gone.status_code == 200, gone.json_body
    assert gone.json_body["disconnected"] == MOTO_ACCOUNT
    assert call(api, "GET", "/account", token).json_body["connected"] is False
    assert AccountModel.count(MOTO_ACCOUNT) == 0
    assert call(api, "GET", f"/messages/{message}", token).status_code == 200  # history kept
    later = sent_now("send", f"m-{uuid.uuid4().hex}", alice=unique("r"))
    assert wiring.ingest([later]).counts() == {"unknown_account": 1}
    trail = call(api, "GET", "/audit", token).json_body["entries"]
    assert trail[0]["action"] == "account.disconnected" and trail[0]["target"] == MOTO_ACCOUNT
    assert trail[0]["actor"].endswith("@example.com")
    again = call(api, "DELETE", "/account", token)
    assert again.status_code == 200 and again.json_body["disconnected"] is None
    assert len(call(api, "GET", "/audit", token).json_body["entries"]) == 1


def test_erase_answers_with_what_it_removed(api: Any, moto: str, pool: dict[str, str]) -> None:
    token = connected(api, moto, pool)
    target, message = unique("Gone"), f"m-{uuid.uuid4().hex}"
    envelopes = [
        sent_now("send", message, alice=target),
        sent_now("complaint", message, frank=target),
    ]
    assert wiring.ingest(envelopes).counts() == {"stored": 2}
    erased = call(api, "DELETE", f"/recipients/{target.replace('@', '%40')}", token)
    assert erased.status_code == 200, erased.json_body
    body = erased.json_body
    assert body["state"] == "finished" and body["counts"]["messages_erased"] == 1
    assert body["counts"]["kept_hashed_suppression"] == 1
    assert target.lower() not in str(body).lower()
    status = call(api, "GET", f"/erasures/{body['job_id']}", token)
    assert status.status_code == 200 and status.json_body["counts"] == body["counts"]
    assert call(api, "GET", f"/messages/{message}", token).status_code == 404
    recipient = call(api, "GET", f"/recipients/{target}", token).json_body
    assert recipient["messages"] == [] and recipient["suppressed"] is True
    assert recipient["suppression"] == {
        "reason": "COMPLAINT",
        "since": recipient["suppression"]["since"],
        "erased": True,
    }
    bad = call(api, "DELETE", "/recipients/not-an-address", token)
    assert bad.status_code == 400
