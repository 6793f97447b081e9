"""The OpenAPI schemas of the history routes' larger answers (routes.py declares the routes)."""

from __future__ import annotations

_S = {"type": "string"}
_N = {"type": "integer"}
_BY_CLASS = {"type": "object", "additionalProperties": _N}
MESSAGE = {
    "type": "object",
    "properties": {
        "message_id": _S,
        "subject": {**_S, "nullable": True},
        "from": {**_S, "nullable": True},
        "sent_at": _S,
        "status": _S,
        "status_at": _S,
        "destination": {"type": "array", "items": _S},
        "tags": {"type": "object"},
        "event_count": {**_N, "description": "events of the message, on every page"},
        "content": {
            "type": "object",
            "description": "what SESami sent (first page only): status, headers, text, and the "
            "HTML's sandboxed frame URLs, while the tenant's content retention keeps it",
        },
        "recipients": {"type": "object", "description": "address -> its state"},
        "opens": {
            "type": "object",
            "properties": {
                "count": _N,
                "human": _N,
                "by_class": _BY_CLASS,
                "first_at": {**_S, "nullable": True},
                "last_at": {**_S, "nullable": True},
                "user_agents": {"type": "array", "items": {"type": "object"}},
                "user_agents_scope": {
                    **_S,
                    "enum": ["message", "page"],
                    "description": "whether user_agents counts every open of the message or "
                    "the opens on this page of the timeline",
                },
            },
        },
        "clicks": {
            "type": "object",
            "properties": {
                "count": _N,
                "human": _N,
                "by_class": _BY_CLASS,
                "links": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "url": {
                                **_S,
                                "description": "the link, or its first characters and a "
                                "digest when longer than 200 (truncated)",
                            },
                            "count": _N,
                            "human": _N,
                            "scanner": _N,
                            "truncated": {"type": "boolean"},
                        },
                    },
                },
                "other_links": {**_N, "description": "clicks on links past the 50 kept"},
            },
        },
        "bounded": {
            "type": "object",
            "description": "what the message's bounds left out, counted",
            "properties": {
                "recipients_other": {
                    **_N,
                    "description": "events to recipients past the 50 kept",
                },
                "tags_dropped": {**_N, "description": "tag values past 32 KB of tags"},
                "engagement_unjudged": {
                    **_N,
                    "description": "opens and clicks past the earliest 64, counted by their "
                    "own signal (no timing rule)",
                },
            },
        },
        "events": {
            "type": "array",
            "description": "one page of the timeline, oldest first",
            "items": {
                "type": "object",
                "properties": {
                    "id": _S,
                    "type": _S,
                    "status": _S,
                    "at": _S,
                    "recipients": {"type": "array", "items": _S},
                    "recipients_more": {
                        "type": "integer",
                        "description": "recipients the event concerns past the ones named",
                    },
                    "detail": {"type": "object"},
                },
            },
        },
        "next": {**_S, "nullable": True, "description": "the cursor of the timeline's next page"},
    },
}
