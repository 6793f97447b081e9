"""`sesami`: SESami's API from a shell.

    sesami send --from news@example.com --to ada@example.org --subject Hi --text "Hello"
    sesami events --status BOUNCED --since 7d [--recipient X] [--json | --csv]
    sesami message MESSAGE_ID
    sesami suppression add|remove|get ADDRESS [--reason WHY];  sesami suppression list
    sesami stats --range 7d

The key comes from SESAMI_API_KEY only (a command-line argument would show in `ps`), the URL
from SESAMI_URL or --url. Tables by default, `--json` for programs. Exit status: 0 done, 1 SESami
refused or could not be reached (the reason on stderr), 2 wrong usage.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TextIO

from sesami_client._format import Column, field, pairs, table
from sesami_client._version import __version__
from sesami_client.client import ENV_API_KEY, ENV_URL, Client
from sesami_client.errors import ApiError, ConfigurationError, SesamiClientError
from sesami_client.params import PRESETS, parse_tags

OK, API_ERROR, USAGE = 0, 1, 2
DEFAULT_LIMIT = 50
STATUSES = (
    "SENT, DELIVERED, BOUNCED, COMPLAINED, OPENED, CLICKED, REJECTED, RENDERING_FAILED, "
    "DELIVERY_DELAYED, SUBSCRIPTION"
)

ClientFactory = Callable[[argparse.Namespace], Client]


class UsageError(Exception):
    """Arguments that parse but do not make sense together: exit status 2."""


# ---------------------------------------------------------------------------- arguments


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sesami",
        description=f"SESami's REST API from the command line. The API key is read from "
        f"{ENV_API_KEY}, the URL from {ENV_URL} (or --url).",
    )
    parser.add_argument("--version", action="version", version=f"sesami {__version__}")
    parser.add_argument("--url", help=f"SESami's API URL (default: ${ENV_URL})")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    json_out = argparse.ArgumentParser(add_help=False)
    json_out.add_argument("--json", action="store_true", help="print SESami's JSON")

    when = argparse.ArgumentParser(add_help=False)
    span = when.add_mutually_exclusive_group()
    span.add_argument("--range", choices=PRESETS, help="a preset (SESami's default: 7d)")
    span.add_argument("--since", help="a duration back from now: 15m, 36h, 7d, 2w")
    span.add_argument("--from", dest="from_", metavar="TIME", help="start, ISO 8601")
    when.add_argument("--to", metavar="TIME", help="end, ISO 8601 (default now)")

    many = argparse.ArgumentParser(add_help=False)
    many.add_argument(
        "--limit", type=int, default=DEFAULT_LIMIT, help=f"at most N (default {DEFAULT_LIMIT})"
    )
    many.add_argument("--all", action="store_true", help="every one, page after page")

    send = commands.add_parser("send", parents=[json_out], help="send one email")
    send.add_argument("--from", dest="from_", required=True, metavar="ADDRESS")
    for flag in ("--to", "--cc", "--bcc", "--reply-to"):
        send.add_argument(flag, action="append", default=[], metavar="ADDRESS", help="repeatable")
    send.add_argument("--subject", required=True)
    send.add_argument("--text", help="the plain-text body")
    send.add_argument("--html", help="the HTML body")
    send.add_argument("--text-file", type=Path, help="read the plain-text body from a file")
    send.add_argument("--html-file", type=Path, help="read the HTML body from a file")
    send.add_argument("--tag", action="append", default=[], metavar="NAME=VALUE")
    send.add_argument("--configuration-set")
    send.add_argument("--skip-suppressed", action="store_true", help="send to the others")
    send.add_argument(
        "--idempotency-key", help="sending again with the same key within 24 h sends nothing"
    )

    events = commands.add_parser(
        "events", parents=[when, many], help="events, newest first, with filters"
    )
    events.add_argument(
        "--status", action="append", default=[], help=f"repeatable or comma-separated: {STATUSES}"
    )
    events.add_argument("--recipient", metavar="ADDRESS")
    events.add_argument("--tag", metavar="NAME=VALUE")
    formats = events.add_mutually_exclusive_group()
    formats.add_argument("--json", action="store_true", help="a JSON array of SESami's events")
    formats.add_argument("--csv", action="store_true", help="SESami's CSV export (all of it)")

    message = commands.add_parser("message", parents=[json_out], help="one message")
    message.add_argument("message_id")

    recipient = commands.add_parser("recipient", parents=[json_out, when], help="one address")
    recipient.add_argument("address")

    commands.add_parser(
        "stats", parents=[json_out, when], help="totals, rates, series"
    ).add_argument("--interval", choices=("hour", "day"))
    commands.add_parser("links", parents=[json_out, when], help="the most clicked links")

    batch = commands.add_parser("batch", parents=[json_out], help="a bulk batch's progress")
    batch.add_argument("batch_id")
    batch.add_argument("--wait", action="store_true", help="until it is done or incomplete")

    suppression = commands.add_parser("suppression", help="the suppression list")
    actions = suppression.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", parents=[json_out, many], help="entries, by address")
    listing.add_argument("--q", help="the start of the address")
    listing.add_argument("--reason", choices=("BOUNCE", "COMPLAINT", "MANUAL", "UNSUBSCRIBED"))
    listing.add_argument("--removed", action="store_true", help="removed addresses instead")
    actions.add_parser("get", parents=[json_out], help="one entry and its history").add_argument(
        "address"
    )
    add = actions.add_parser("add", parents=[json_out], help="suppress an address (MANUAL)")
    add.add_argument("address")
    add.add_argument("--reason", required=True, help="why, kept in the history")
    remove = actions.add_parser("remove", parents=[json_out], help="mail an address again")
    remove.add_argument("address")
    remove.add_argument("--reason", help="why, kept in the tombstone")
    return parser


# ---------------------------------------------------------------------------- output


def _dump(value: Any, out: TextIO) -> None:
    out.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")


def _json_array(items: Iterable[Any], out: TextIO) -> None:
    """A JSON array written as it is fetched (an --all export never sits in memory)."""
    out.write("[")
    for n, item in enumerate(items):
        out.write(("," if n else "") + "\n  " + json.dumps(item, ensure_ascii=False))
    out.write("\n]\n")


def _limited(args: argparse.Namespace) -> int | None:
    if args.all:
        return None
    if args.limit < 1:
        raise UsageError("--limit must be at least 1 (or use --all)")
    return int(args.limit)


def _time(args: argparse.Namespace) -> dict[str, Any]:
    return {"range": args.range, "since": args.since, "from_": args.from_, "to": args.to}


EVENT_COLUMNS: list[Column] = [
    ("AT", field("at")),
    ("STATUS", field("status")),
    ("RECIPIENT", field("recipient")),
    ("SUBJECT", field("subject")),
    ("MESSAGE", field("message_id")),
]
SUPPRESSION_COLUMNS: list[Column] = [
    ("ADDRESS", field("address")),
    ("REASON", field("reason")),
    ("SINCE", field("created_at")),
    ("BY", field("created_by")),
    ("NOTE", lambda e: e.get("note") or e.get("diagnostic_code")),
]
HISTORY_COLUMNS: list[Column] = [
    ("AT", field("at")),
    ("ACTION", field("action")),
    ("BY", field("by")),
    ("WHY", field("why")),
]


def _text_body(inline: str | None, path: Path | None, name: str) -> str | None:
    if inline is not None and path is not None:
        raise UsageError(f"give --{name} or --{name}-file, not both")
    if path is None:
        return inline
    try:
        return sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read --{name}-file: {exc}") from None


# ---------------------------------------------------------------------------- commands


def _send(client: Client, args: argparse.Namespace, out: TextIO) -> None:
    if not (args.to or args.cc or args.bcc):
        raise UsageError("give at least one --to, --cc or --bcc")
    text = _text_body(args.text, args.text_file, "text")
    html = _text_body(args.html, args.html_file, "html")
    if text is None and html is None:
        raise UsageError("give --text or --html (or both)")
    sent = client.send(
        from_=args.from_,
        to=args.to or None,
        cc=args.cc or None,
        bcc=args.bcc or None,
        reply_to=args.reply_to or None,
        subject=args.subject,
        text=text,
        html=html,
        tags=_tags(args.tag),
        configuration_set=args.configuration_set,
        skip_suppressed=args.skip_suppressed,
        idempotency_key=args.idempotency_key,
    )
    if args.json:
        _dump(sent, out)
        return
    replayed = " (replayed: sent earlier with this idempotency key)" if sent["replayed"] else ""
    out.write(f"sent {sent['message_id']} to {', '.join(sent['recipients'])}{replayed}\n")
    for skipped in sent.get("skipped", []):
        out.write(f"skipped {skipped['address']}: suppressed ({skipped['reason']})\n")
    out.write(f"idempotency key {sent.get('idempotency_key', '-')}\n")


def _tags(pairs_: Sequence[str]) -> dict[str, str] | None:
    try:
        return parse_tags(pairs_) or None
    except ValueError as exc:
        raise UsageError(f"--tag: {exc}") from None


def _events(client: Client, args: argparse.Namespace, out: TextIO) -> None:
    filters: dict[str, Any] = {
        "status": args.status or None,
        "recipient": args.recipient,
        "tag": args.tag,
        **_time(args),
    }
    if args.csv:
        if args.limit != DEFAULT_LIMIT or args.all:
            raise UsageError("--csv exports everything the filters select: drop --limit/--all")
        for chunk in client.events_csv(**filters):
            out.write(chunk)
        return
    events = client.events(**filters, limit=_limited(args))
    if args.json:
        _json_array(events, out)
    elif table(events, EVENT_COLUMNS, out) == 0:
        out.write("(no events)\n")


def _message(client: Client, args: argparse.Namespace, out: TextIO) -> None:
    message = client.message(args.message_id)
    if args.json:
        _dump(message, out)
        return
    opens, clicks = message["opens"], message["clicks"]
    pairs(
        [
            ("message", message["message_id"]),
            ("subject", message["subject"]),
            ("from", message["from"]),
            ("sent", message["sent_at"]),
            ("status", f"{message['status']} (at {message['status_at'] or '-'})"),
            ("to", message["destination"]),
            ("opens", f"{opens['count']} (first {opens['first_at'] or '-'})"),
            ("clicks", clicks["count"]),
        ],
        out,
    )
    out.write("\n")
    table(
        message["events"],
        [
            ("AT", field("at")),
            ("STATUS", field("status")),
            ("TYPE", field("type")),
            ("RECIPIENTS", field("recipients")),
        ],
        out,
    )
    if clicks["links"]:
        out.write("\n")
        table(clicks["links"], [("CLICKS", field("count")), ("URL", field("url"))], out)


def _recipient(client: Client, args: argparse.Namespace, out: TextIO) -> None:
    found = client.recipient(args.address, **_time(args))
    if args.json:
        _dump(found, out)
        return
    suppression = found["suppression"]
    state = f"yes ({suppression['reason']} since {suppression['since']})" if suppression else "no"
    pairs([("recipient", found["recipient"]), ("suppressed", state)], out)
    out.write("\n")
    table(
        found["messages"],
        [
            ("SENT", field("sent_at")),
            ("STATUS", field("status")),
            ("OPENS", field("opens")),
            ("CLICKS", field("clicks")),
            ("SUBJECT", field("subject")),
            ("MESSAGE", field("message_id")),
        ],
        out,
    )


def _stats(client: Client, args: argparse.Namespace, out: TextIO) -> None:
    stats = client.stats(**_time(args), interval=args.interval)
    if args.json:
        _dump(stats, out)
        return
    rates = stats["rates"]
    pairs(
        [
            ("range", f"{stats['from']} to {stats['to']}"),
            *((name, count) for name, count in stats["totals"].items()),
            ("bounce rate", f"{rates['bounce']['value']:.2%} ({rates['bounce']['state']})"),
            (
                "complaint rate",
                f"{rates['complaint']['value']:.3%} ({rates['complaint']['state']})",
            ),
        ],
        out,
    )
    shown = ("SENT", "DELIVERED", "BOUNCED", "COMPLAINED", "OPENED", "CLICKED")
    busy = [row for row in stats["series"] if any(row.get(s) for s in shown)]
    if busy:
        out.write("\n")
        columns: list[Column] = [(stats["interval"].upper(), field("t"))]
        columns += [(s, field(s)) for s in shown]
        table(busy, columns, out)


def _links(client: Client, args: argparse.Namespace, out: TextIO) -> None:
    links = client.links(**_time(args))
    if args.json:
        _dump(links, out)
        return
    out.write(f"{links['total_clicks']} clicks on {links['distinct_links']} links\n\n")
    table(links["links"], [("CLICKS", field("clicks")), ("URL", field("url"))], out)


def _batch(client: Client, args: argparse.Namespace, out: TextIO) -> None:
    if args.wait:
        state = None
        for state in client.batch_progress(args.batch_id):
            if not args.json:
                progress = state["progress"]
                out.write(f"{state['status']}: {progress['processed']} of {progress['total']}\n")
                out.flush()
        assert state is not None
    else:
        state = client.batch(args.batch_id)
    if args.json:
        _dump(state, out)
        return
    counts = {k: v for k, v in state["counts"].items() if v}
    pairs([("batch", state["batch_id"]), ("status", state["status"]), ("counts", counts)], out)
    problems = [r for r in state.get("results", []) if r.get("status") not in ("sent", "queued")]
    if problems:
        out.write("\n")
        table(
            problems,
            [("ADDRESS", field("address")), ("STATUS", field("status")), ("WHY", field("error"))],
            out,
        )


def _suppression(client: Client, args: argparse.Namespace, out: TextIO) -> None:
    if args.action == "list":
        entries = client.suppressions(
            q=args.q, reason=args.reason, removed=args.removed, limit=_limited(args)
        )
        if args.json:
            _json_array(entries, out)
        elif table(entries, SUPPRESSION_COLUMNS, out) == 0:
            out.write("(no entries)\n")
        return
    if args.action == "get":
        entry = client.suppression(args.address)
    elif args.action == "add":
        entry = client.add_suppression(args.address, args.reason)
    else:
        entry = client.remove_suppression(args.address, args.reason)
    if args.json:
        _dump(entry, out)
        return
    verb = {
        "add": "suppressed" if entry.get("created", True) else "already suppressed; note updated",
        "remove": "removed from the suppression list",
    }.get(args.action)
    if verb:
        out.write(f"{entry['address']}: {verb}\n\n")
    pairs(
        [
            ("address", entry["address"]),
            ("suppressed", entry["suppressed"]),
            ("reason", entry["reasons"]),
            ("since", entry["created_at"]),
            ("note", entry["note"]),
            *(
                (("removed", f"{entry['removed_at']} by {entry['removed_by']}"),)
                if entry["removed_at"]
                else ()
            ),
        ],
        out,
    )
    history = entry.get("history") or [entry["last_change"]]
    out.write("\n")
    table(history, HISTORY_COLUMNS, out)


COMMANDS: dict[str, Callable[[Client, argparse.Namespace, TextIO], None]] = {
    "send": _send,
    "events": _events,
    "message": _message,
    "recipient": _recipient,
    "stats": _stats,
    "links": _links,
    "batch": _batch,
    "suppression": _suppression,
}


# ---------------------------------------------------------------------------- main


def _client(args: argparse.Namespace) -> Client:
    return Client(base_url=args.url, timeout=args.timeout)


def _detail(value: Any) -> str:
    """A detail for one line: addresses by name (e.g. the suppressed recipients), else JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, dict) and "address" in v for v in value):
        return ", ".join(f"{v['address']} ({v.get('reason', '?')})" for v in value)
    return json.dumps(value, ensure_ascii=False)


def _explain(exc: ApiError) -> str:
    text = f"SESami answered {exc.method} {exc.path} with {exc.status} {exc.code}: {exc.message}"
    if isinstance(exc.details, dict) and exc.details:
        text += f" ({', '.join(f'{k}: {_detail(v)}' for k, v in exc.details.items())})"
    elif exc.details:
        text += f" ({_detail(exc.details)})"
    if exc.retry_after is not None:
        text += f"; try again in {exc.retry_after:g} s"
    if exc.request_id:
        text += f" [request {exc.request_id}]"
    return text


def run(
    argv: Sequence[str] | None = None,
    *,
    client_factory: ClientFactory = _client,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    out, err = stdout or sys.stdout, stderr or sys.stderr
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse printed the help (0) or the usage and the problem
        return OK if exc.code in (0, None) else USAGE
    try:
        with client_factory(args) as client:
            COMMANDS[args.command](client, args, out)
    except (UsageError, ConfigurationError, ValueError) as exc:
        err.write(f"sesami: {exc}\n")
        return USAGE
    except ApiError as exc:
        err.write(f"sesami: {_explain(exc)}\n")
        return API_ERROR
    except SesamiClientError as exc:
        err.write(f"sesami: {exc}\n")
        return API_ERROR
    return OK


def main() -> int:
    try:
        return run()
    except BrokenPipeError:  # `sesami events --all | head`
        # Python flushes stdout at exit: point it somewhere that cannot fail.
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        return OK
    except KeyboardInterrupt:
        return 130
