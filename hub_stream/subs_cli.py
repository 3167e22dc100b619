"""Staff commands over the HTTP API: `hub subs list|show|preview` and `hub syncs list|show`.

(`hub subs pause|resume|replay|parked|redeliver|drop`: hub_stream/subs_changes_cli.py.)

Subscriptions live in the workers' tables, not in PostgreSQL, so these
commands ask a running API (``HUB_CLI_API_URL``, default the local
``http://{HUB_API_HOST}:{HUB_API_PORT}``) with the key in
``HUB_CLI_CREDENTIALS`` (``userId:apiKey``; an environment variable, not an
argument, so it never shows in a process list). The API applies its rules:
the CLI only shapes the output. People get lines; ``--json`` prints the API's
answer unchanged for scripts.

Exit codes: 0 done; 1 the hub refused (not found, invalid template, ...);
2 invalid input, configuration or credentials; 3 the hub did not answer (or
answered 5xx); 4 a preview in which some event's row fails.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from hub_stream.platform.settings import HubSettings

OK, REFUSED, INVALID, UNAVAILABLE, ROWS_FAIL = 0, 1, 2, 3, 4
TIMEOUT_S = 330.0  # beyond the API's own deadlines (sync 300 s)


class CliError(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def _call(settings: HubSettings, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """(status, parsed JSON body) of one API call; CliError when it cannot be made."""
    credentials = settings.cli_credentials.get_secret_value() if settings.cli_credentials else ""
    if ":" not in credentials:
        raise CliError("set HUB_CLI_CREDENTIALS to userId:apiKey (a system key)", INVALID)
    base = settings.cli_api_url or f"http://{settings.api_host}:{settings.api_port}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base.rstrip("/") + path, data=data, method=method)
    request.add_header("Authorization", "Basic " + base64.b64encode(credentials.encode()).decode())
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as answer:
            status, raw = answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    except (urllib.error.URLError, OSError) as exc:
        raise CliError(f"the API at {base} did not answer: {exc}", UNAVAILABLE) from None
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        raise CliError(f"the API answered {status} with something that is not JSON", UNAVAILABLE) from None


def _check(status: int, body: Any) -> Any:
    """The body of a 2xx answer; CliError with the problem's message and the exit code its status means."""
    if 200 <= status < 300:
        return body
    problem = body if isinstance(body, dict) else {}
    message = f"{status} {problem.get('error', 'error')}: {problem.get('message', '')}"
    if status in (400, 401, 403, 413):
        raise CliError(message, INVALID)
    raise CliError(message, UNAVAILABLE if status >= 500 else REFUSED)


def _as_json(args: argparse.Namespace, answer: Any, when_empty: str = "") -> bool:
    """Print ``answer`` as JSON when --json was given (True: done); else say ``when_empty`` if it is empty."""
    if args.json:
        print(json.dumps(answer, indent=2))
        return True
    if not answer and when_empty:
        print(when_empty)
    return False


def _quote(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def _template_form(template: Any) -> str:
    if template is None:
        return "none"
    if isinstance(template, dict):
        return f"{len(template)} entries"
    return "text"


# --- subs ------------------------------------------------------------------------


def cmd_subs_list(settings: HubSettings, args: argparse.Namespace) -> int:
    subs = _check(*_call(settings, "GET", f"/api/programs/{_quote(args.program)}/eventSubs"))
    if _as_json(args, subs, f"{args.program} has no subscriptions"):
        return OK
    for s in subs:
        enabled = "sync on " if s["SyncEnabled"] else "sync off"
        print(
            f"{s['PublisherProgramId']:<25} {enabled}  last sync {s['LastSyncUtc'] or '-':<24}"
            f" on error {s.get('OnRenderError', 'stop'):<4}  template {_template_form(s['LbApiPayloadTemplate'])}"
        )
    return OK


def cmd_subs_show(settings: HubSettings, args: argparse.Namespace) -> int:
    sub = _check(*_call(settings, "GET", f"/api/programs/{_quote(args.program)}/eventSubs/{_quote(args.publisher)}"))
    if _as_json(args, sub):
        return OK
    for name, value in sub.items():
        if name == "LbApiPayloadTemplate":
            continue
        print(f"{name + ':':<22}{'-' if value is None else value}")
    template = sub["LbApiPayloadTemplate"]
    print("LbApiPayloadTemplate:")
    print(template if isinstance(template, str) else json.dumps(template, indent=2))
    return OK


def _read_json_file(path: str) -> Any:
    try:
        return json.loads(sys.stdin.read() if path == "-" else Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read JSON from {path}: {exc}", INVALID) from None


def cmd_subs_preview(settings: HubSettings, args: argparse.Namespace) -> int:
    body: dict[str, Any] = {}
    if args.template is not None:
        text = sys.stdin.read() if args.template == "-" else _text(args.template)
        try:  # a file holding the object form, or the plain Handlebars text
            parsed = json.loads(text)
            body["LbApiPayloadTemplate"] = parsed if isinstance(parsed, dict) else text
        except ValueError:
            body["LbApiPayloadTemplate"] = text
    if args.import_process_id is not None:
        body["ImportProcessId"] = args.import_process_id
    if args.events is not None:
        events = _read_json_file(args.events)
        body["Events"] = events if isinstance(events, list) else [events]
    if args.latest is not None:
        body["Latest"] = args.latest
    path = f"/api/programs/{_quote(args.program)}/eventSubs/{_quote(args.publisher)}/preview"
    answer = _check(*_call(settings, "POST", path, body))
    failed = answer["Summary"]["Failed"]
    if _as_json(args, answer):
        return ROWS_FAIL if failed else OK
    for r in answer["Results"]:
        who = r["EventId"] or r["PublisherEventId"]
        route = f"{r['Category'] or '(no category)'} -> {r['EntryKey'] or '(no entry)'}"
        if r["Error"] is not None:
            e = r["Error"]
            at = f" at line {e['line']}, column {e['column']}" if e["line"] is not None else ""
            print(f"FAIL   {who}  {route}  {e['error']}{at}: {e['message']}")
        elif r["Action"] == "ignore":
            print(f"ignore {who}  {route}")
        else:
            print(f"import {who}  {route}  process {r['ImportProcessId']}  {json.dumps(r['Row'], separators=(',', ':'))}")
    s = answer["Summary"]
    print(f"{s['Import']} import, {s['Ignore']} ignore, {s['Failed']} failed")
    return ROWS_FAIL if failed else OK


def _text(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc}", INVALID) from None


# --- syncs -----------------------------------------------------------------------


def _syncs(settings: HubSettings, program: str, limit: int) -> list[dict[str, Any]]:
    answer = _check(*_call(settings, "GET", f"/api/programs/{_quote(program)}/syncs?limit={limit}"))
    return list(answer["Syncs"])


def _sync_line(s: dict[str, Any]) -> str:
    subs = s.get("Subscriptions") or []
    imported = sum(x.get("Imported", 0) for x in subs)
    failed = [x["PublisherProgramId"] for x in subs if x.get("Status") == "failed"]
    tail = f"  failed: {', '.join(failed)}" if failed else ""
    return f"{s['SyncId']}  {s['StartedUtc']}  {s['Status']:<11} {s['HttpStatus'] or '-':<4} {imported} row(s), {len(s['Batches'])} batch(es){tail}"


def cmd_syncs_list(settings: HubSettings, args: argparse.Namespace) -> int:
    syncs = _syncs(settings, args.program, args.limit)
    if _as_json(args, syncs, f"{args.program} has no syncs"):
        return OK
    for s in syncs:
        print(_sync_line(s))
    return OK


def program_of_sync(sync_id: str) -> str:
    """The program a SyncId names: ``S:{ProgramId}-{uuid4}``."""
    if not sync_id.startswith("S:") or sync_id.count("-") < 5:
        raise CliError(f"{sync_id!r} is not a SyncId (S:{{ProgramId}}-{{uuid}})", INVALID)
    return sync_id[2:].rsplit("-", 5)[0]


def cmd_syncs_show(settings: HubSettings, args: argparse.Namespace) -> int:
    found = next((s for s in _syncs(settings, program_of_sync(args.sync_id), 200) if s["SyncId"] == args.sync_id), None)
    if found is None:
        raise CliError(f"no sync {args.sync_id} among the program's last 200", REFUSED)
    if _as_json(args, found):
        return OK
    print(_sync_line(found))
    for b in found["Batches"]:
        print(
            f"  batch {b['Seq']}: {b['PublisherProgramId']} process {b['ImportProcessId']}, {b['Rows']} row(s),"
            f" {b['Status']} (LB {b['LbStatus'] or '-'}) {b['BatchId'] or ''} {b['LbMessage'] or ''}".rstrip()
        )
    return OK


# --- wiring ----------------------------------------------------------------------


def _guarded(handler: Any) -> Any:
    def run(settings: HubSettings, args: argparse.Namespace) -> int:
        try:
            return int(handler(settings, args))
        except CliError as exc:
            print(f"hub: {exc}", file=sys.stderr)
            return exc.code

    return run


def add_commands(sub: Any) -> None:
    subs = sub.add_parser("subs", help="Event subscriptions, through the API (HUB_CLI_CREDENTIALS).", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    subs_sub = subs.add_subparsers(dest="subs_command", required=True)
    listing = subs_sub.add_parser("list", help="A program's subscriptions.")
    listing.add_argument("program")
    show = subs_sub.add_parser("show", help="One subscription, its template in full.")
    show.add_argument("program")
    show.add_argument("publisher")
    preview = subs_sub.add_parser("preview", help="What a template makes of events; nothing sent or stored.")
    preview.add_argument("program")
    preview.add_argument("publisher")
    preview.add_argument("--template", help="a file (- for stdin) with the template; default: the stored one")
    preview.add_argument("--import-process-id", type=int, help="with a plain Handlebars template")
    preview.add_argument("--events", help="a JSON file (- for stdin): event bodies as published; default: the latest live ones")
    preview.add_argument("--latest", type=int, help="how many of the latest live events (1-100, default 10)")
    for parser, func in ((listing, cmd_subs_list), (show, cmd_subs_show), (preview, cmd_subs_preview)):
        parser.add_argument("--json", action="store_true", help="print the API's answer as JSON")
        parser.set_defaults(func=_guarded(func))
    from hub_stream.subs_changes_cli import add_change_commands  # it builds on this module

    add_change_commands(subs_sub)

    syncs = sub.add_parser("syncs", help="The sync ledger, through the API (HUB_CLI_CREDENTIALS).", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    syncs_sub = syncs.add_subparsers(dest="syncs_command", required=True)
    slist = syncs_sub.add_parser("list", help="A program's recent syncs, newest first.")
    slist.add_argument("program")
    slist.add_argument("--limit", type=int, default=20, help="1-200 (default 20)")
    sshow = syncs_sub.add_parser("show", help="One sync and its batches.")
    sshow.add_argument("sync_id")
    for parser, func in ((slist, cmd_syncs_list), (sshow, cmd_syncs_show)):
        parser.add_argument("--json", action="store_true", help="print the API's answer as JSON")
        parser.set_defaults(func=_guarded(func))
