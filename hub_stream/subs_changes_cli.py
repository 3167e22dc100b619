"""`hub subs pause|resume|replay|parked|redeliver|drop`: changes to a subscription, through the API.

Same rules as the other `hub subs` commands (hub_stream.subs_cli): the API
decides, the CLI shapes the output, ``--json`` prints what the API answered
(for pause/resume/replay, which answer 204, the subscription as it is after
the change). Exit codes as there: 0 done; 1 the hub refused (no such
subscription, an EventId that is not parked); 2 invalid input or
credentials; 3 the hub did not answer.
"""

from __future__ import annotations

import argparse
from typing import Any

from hub_stream.platform.settings import HubSettings
from hub_stream.subs_cli import OK, REFUSED, _as_json, _call, _check, _guarded, _quote


def _one(args: argparse.Namespace) -> str:
    return f"/api/programs/{_quote(args.program)}/eventSubs/{_quote(args.publisher)}"


def _patch(settings: HubSettings, args: argparse.Namespace, change: dict[str, Any]) -> dict[str, Any]:
    _check(*_call(settings, "PATCH", _one(args), change))
    return _check(*_call(settings, "GET", _one(args)))


def cmd_pause(settings: HubSettings, args: argparse.Namespace) -> int:
    sub = _patch(settings, args, {"SyncEnabled": False})
    if not _as_json(args, sub):
        print(f"{args.program} <- {args.publisher}: paused; syncs skip it until `hub subs resume` (events wait, nothing is lost)")
    return OK


def cmd_resume(settings: HubSettings, args: argparse.Namespace) -> int:
    sub = _patch(settings, args, {"SyncEnabled": True})
    if not _as_json(args, sub):
        print(f"{args.program} <- {args.publisher}: resumed; the next sync delivers from {sub.get('LastSyncUtc') or 'where it stopped'}")
    return OK


def cmd_replay(settings: HubSettings, args: argparse.Namespace) -> int:
    sub = _patch(settings, args, {"LastSyncUtc": args.since})
    if not _as_json(args, sub):
        print(f"{args.program} <- {args.publisher}: the next sync delivers the publisher's events created at or after {sub.get('LastSyncUtc')}")
    return OK


def cmd_parked(settings: HubSettings, args: argparse.Namespace) -> int:
    query = f"?limit={args.limit}" + (f"&pageToken={_quote(args.page_token)}" if args.page_token else "")
    page = _check(*_call(settings, "GET", _one(args) + "/parked" + query))
    if _as_json(args, page):
        return OK
    if not page["Parked"]:
        print(f"{args.program} <- {args.publisher}: nothing parked")
        return OK
    for p in page["Parked"]:
        queued = "queued " if p["Redeliver"] else "parked "
        print(f"{p['Offset']:>10}  {p['EventId']:<45} {queued} {p['ParkedUtc']}  entry {p['EntryKey'] or '-'}: {p['Reason']}")
    shown = len(page["Parked"])
    print(f"{shown} of {page['Total']} parked" + (f"; next page: --page-token {page['NextPageToken']}" if page["NextPageToken"] else ""))
    return OK


def cmd_redeliver(settings: HubSettings, args: argparse.Namespace) -> int:
    body = {"EventIds": args.event_ids} if args.event_ids else None
    answer = _check(*_call(settings, "POST", _one(args) + "/parked/redeliver", body))
    if not _as_json(args, answer):
        print(f"{args.program} <- {args.publisher}: {len(answer['Queued'])} parked event(s) queued; the next sync sends those that now render, before new events")
        for event_id in answer["NotParked"]:
            print(f"not parked (nothing done): {event_id}")
    return REFUSED if answer["NotParked"] else OK


def cmd_drop(settings: HubSettings, args: argparse.Namespace) -> int:
    _check(*_call(settings, "DELETE", _one(args) + f"/parked/{_quote(args.event_id)}"))
    if not _as_json(args, {"Dropped": args.event_id}):
        print(f"{args.program} <- {args.publisher}: {args.event_id} dropped; it is never delivered (recorded in the ledger)")
    return OK


def add_change_commands(subs_sub: Any) -> None:
    """Add the commands to `hub subs`."""
    made = []
    for name, func, help_text in (
        ("pause", cmd_pause, "Stop syncing a subscription (SyncEnabled false); its events wait."),
        ("resume", cmd_resume, "Sync a paused subscription again (SyncEnabled true)."),
        ("replay", cmd_replay, "Deliver again from a time: the next sync starts at events created at or after --since."),
        ("parked", cmd_parked, "Events parked for a subscription (OnRenderError park), oldest first."),
        ("redeliver", cmd_redeliver, "Queue parked events for the next sync (default: all)."),
        ("drop", cmd_drop, "Drop one parked event: it is never delivered."),
    ):
        parser = subs_sub.add_parser(name, help=help_text)
        parser.add_argument("program")
        parser.add_argument("publisher")
        parser.add_argument("--json", action="store_true", help="print the API's answer as JSON")
        parser.set_defaults(func=_guarded(func))
        made.append(parser)
    replay, parked, redeliver, drop = made[2:]
    replay.add_argument("--since", required=True, help="ISO 8601 UTC time, e.g. 2026-11-20T00:00:00Z")
    parked.add_argument("--limit", type=int, default=100, help="1-500 (default 100)")
    parked.add_argument("--page-token", help="NextPageToken of the previous page")
    redeliver.add_argument("event_ids", nargs="*", metavar="EventId", help="default: every parked event")
    drop.add_argument("event_id", metavar="EventId")
