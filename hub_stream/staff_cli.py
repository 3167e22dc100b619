"""Staff commands of `hub`: `hub keys ...` and `hub programs ...`, straight on PostgreSQL.

They need only ``HUB_DATABASE_URL`` (no broker, no running API), so
`hub keys create --system` bootstraps a fresh install; without it they use
the database of a `hub dev` running on ``HUB_DATA_DIR`` (default ``.hub``
in the current directory). They validate with the
same rules and run the same data-access code as the API. Output is JSON in
the API's shapes, except `hub keys create`, which prints ``UserId:ApiKey``.
Exit codes: 0 done, 1 refused (unknown id, program still needed), 2 invalid
input or configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg
from pydantic import ValidationError

from hub_stream.access import keys, programs
from hub_stream.local import dev_state
from hub_stream.platform import db
from hub_stream.platform.settings import HubSettings
from schemas.programs import (
    CREATION_PATH_RULE,
    DEFAULT_CREATION_PATH,
    PROGRAM_ID_RULE,
    ProgramBody,
    is_program_id,
)

T = TypeVar("T")
Handler = Callable[[HubSettings, argparse.Namespace], int]


class Refused(Exception):
    """The command cannot be done as asked; the message says why (exit code in ``code``)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def _database_dsn(settings: HubSettings) -> str:
    """HUB_DATABASE_URL, else the database of the `hub dev` running on this data directory."""
    if settings.database_url is None:
        running = dev_state.running_env(settings.data_dir.expanduser())
        if "HUB_DATABASE_URL" in running:
            return running["HUB_DATABASE_URL"]
    return db.database_dsn(settings)


def _on_database(settings: HubSettings, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    async def run() -> T:
        dsn = _database_dsn(settings)
        try:
            conn = await asyncpg.connect(dsn)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise Refused(f"cannot connect to the database in HUB_DATABASE_URL: {exc}", 2) from None
        try:
            return await work(conn)
        except asyncpg.UndefinedTableError:
            raise Refused("the database has no hub tables yet: run `hub db migrate` first", 2) from None
        finally:
            await conn.close()

    return asyncio.run(run())


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2))


def _refusals(handler: Handler) -> Handler:
    """Turn ``Refused`` into a one-line message on stderr and its exit code."""

    def run(settings: HubSettings, args: argparse.Namespace) -> int:
        try:
            return handler(settings, args)
        except Refused as exc:
            print(f"hub: {exc}", file=sys.stderr)
            return exc.code

    return run


def _check_program_id(value: str) -> str:
    if not is_program_id(value):
        raise Refused(f"program id {value!r} is invalid: use {PROGRAM_ID_RULE}", 2)
    return value


# --- keys ---------------------------------------------------------------------


def _program_grant(value: str) -> tuple[str, keys.Access]:
    """``ID=read`` or ``ID=write`` (argparse type)."""
    program_id, sep, access = value.rpartition("=")
    if not sep or access not in ("read", "write"):
        raise argparse.ArgumentTypeError(f"{value!r}: use PROGRAM_ID=read or PROGRAM_ID=write")
    if not is_program_id(program_id):
        raise argparse.ArgumentTypeError(f"{program_id!r} is not a program id ({PROGRAM_ID_RULE})")
    return program_id, "read" if access == "read" else "write"


@_refusals
def cmd_keys_create(settings: HubSettings, args: argparse.Namespace) -> int:
    grants = dict(args.program or [])
    if args.system == bool(grants):
        raise Refused("give either --system or at least one --program ID=read|write", 2)

    async def work(conn: asyncpg.Connection) -> keys.NewKey:
        try:
            return await keys.create_granted_key(conn, system=args.system, programs=grants)
        except keys.UnknownPrograms as exc:
            raise Refused(
                f"a key can only grant registered programs; not registered: {', '.join(exc.program_ids)}"
            ) from None

    new = _on_database(settings, work)
    print(f"{new.user_id}:{new.api_key}")
    print("Keep this key now: the hub stores only its hash and cannot show it again.", file=sys.stderr)
    return 0


@_refusals
def cmd_keys_list(settings: HubSettings, args: argparse.Namespace) -> int:
    records = _on_database(settings, keys.list_keys)
    _print_json([keys.key_json(r) for r in records if r.active or not args.active])
    return 0


@_refusals
def cmd_keys_revoke(settings: HubSettings, args: argparse.Namespace) -> int:
    record = _on_database(settings, lambda conn: keys.revoke_key(conn, args.user_id))
    if record is None:
        raise Refused(f"there is no API key with user id {args.user_id!r}")
    _print_json(keys.key_json(record))
    return 0


# --- programs -----------------------------------------------------------------


def _program_body(args: argparse.Namespace) -> ProgramBody:
    fields: dict[str, Any] = {
        "Name": args.name,
        "LbBaseUrl": args.lb_base_url,
        "CreationPath": args.creation_path,
        "SendSuccessEmailTo": args.success_email,
        "SendFailureEmailTo": args.failure_email,
    }
    if args.clear_lb_api_key:
        fields["LbApiKey"] = None
    elif args.lb_api_key == "-":
        fields["LbApiKey"] = sys.stdin.readline().rstrip("\r\n")
    elif args.lb_api_key is not None:
        fields["LbApiKey"] = args.lb_api_key
    try:
        return ProgramBody.model_validate(fields)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(body)'}: {e['msg']}"
            for e in exc.errors(include_url=False, include_context=False, include_input=False)
        )
        raise Refused(f"invalid program: {problems}", 2) from None


@_refusals
def cmd_programs_put(settings: HubSettings, args: argparse.Namespace) -> int:
    program_id = _check_program_id(args.program_id)
    body = _program_body(args)
    created = _on_database(settings, lambda conn: programs.put_program(conn, program_id, body))
    print(f"{'created' if created else 'replaced'} program {program_id}")
    return 0


@_refusals
def cmd_programs_get(settings: HubSettings, args: argparse.Namespace) -> int:
    program_id = _check_program_id(args.program_id)
    program = _on_database(settings, lambda conn: programs.get_program(conn, program_id))
    if program is None:
        raise Refused(f"program {program_id!r} is not registered")
    _print_json(programs.program_json(program))
    return 0


@_refusals
def cmd_programs_list(settings: HubSettings, args: argparse.Namespace) -> int:
    _print_json([programs.program_json(p) for p in _on_database(settings, programs.list_programs)])
    return 0


@_refusals
def cmd_programs_delete(settings: HubSettings, args: argparse.Namespace) -> int:
    program_id = _check_program_id(args.program_id)
    if not args.force:
        # Subscriptions live in the workers' Faust tables, which the CLI does not read.
        raise Refused(
            "the CLI cannot see subscriptions, so it cannot check that none reference"
            f" {program_id!r}: use DELETE /api/programs/{program_id} (which refuses while they do),"
            " or pass --force after checking yourself",
            2,
        )
    deleted = _on_database(settings, lambda conn: programs.delete_program(conn, program_id))
    if not deleted:
        raise Refused(f"program {program_id!r} is not registered")
    print(f"deleted program {program_id}")
    return 0


# --- the parser ---------------------------------------------------------------


def _add_keys(sub: Any) -> None:
    group = sub.add_parser("keys", help="API keys: create, list, revoke.", description="API keys.")
    keys_sub = group.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser(
        "create",
        help="Create a key; prints UserId:ApiKey once.",
        description="Create a key and print UserId:ApiKey (the only time the secret is shown).",
    )
    create.add_argument("--system", action="store_true", help="a system key (may do everything)")
    create.add_argument(
        "--program",
        action="append",
        type=_program_grant,
        metavar="ID=read|write",
        help="grant a registered program; repeat for more",
    )
    create.set_defaults(func=cmd_keys_create)
    listing = keys_sub.add_parser("list", help="List keys, revoked ones too (JSON, no secrets).")
    listing.add_argument("--active", action="store_true", help="leave out revoked keys")
    listing.set_defaults(func=cmd_keys_list)
    revoke = keys_sub.add_parser("revoke", help="Revoke a key at once.")
    revoke.add_argument("user_id", metavar="USER_ID")
    revoke.set_defaults(func=cmd_keys_revoke)


def _add_programs(sub: Any) -> None:
    group = sub.add_parser("programs", help="The programs registry.", description="The programs registry.")
    programs_sub = group.add_subparsers(dest="programs_command", required=True)
    put = programs_sub.add_parser(
        "put",
        help="Create or replace a program.",
        description="Create or replace a program, like PUT /api/programs/ID: omitted options are"
        " cleared, except the LB API key, which is kept unless given or --clear-lb-api-key.",
    )
    put.add_argument("program_id", metavar="ID")
    put.add_argument("--name", required=True)
    put.add_argument("--lb-base-url", help="http(s) URL of the program's LearningBuilder")
    key = put.add_mutually_exclusive_group()
    key.add_argument(
        "--lb-api-key",
        metavar="KEY",
        help="LB API key; '-' reads it from the first line of stdin (keeps it out of ps and shell history)",
    )
    key.add_argument("--clear-lb-api-key", action="store_true", help="remove the stored LB API key")
    put.add_argument("--creation-path", default=DEFAULT_CREATION_PATH, help=f"{CREATION_PATH_RULE} (default LH)")
    put.add_argument("--success-email", help="SendSuccessEmailTo")
    put.add_argument("--failure-email", help="SendFailureEmailTo")
    put.set_defaults(func=cmd_programs_put)
    get = programs_sub.add_parser("get", help="Show a program (JSON; never the LB API key).")
    get.add_argument("program_id", metavar="ID")
    get.set_defaults(func=cmd_programs_get)
    programs_sub.add_parser("list", help="List programs (JSON).").set_defaults(func=cmd_programs_list)
    delete = programs_sub.add_parser(
        "delete",
        help="Delete a program (needs --force: the CLI cannot check subscriptions).",
        description="Delete a program. The CLI cannot see subscriptions; prefer DELETE /api/programs/ID.",
    )
    delete.add_argument("program_id", metavar="ID")
    delete.add_argument("--force", action="store_true", help="delete without the subscription check")
    delete.set_defaults(func=cmd_programs_delete)


def add_commands(sub: Any) -> None:
    """Add `keys` and `programs` to the `hub` parser's subcommands."""
    _add_keys(sub)
    _add_programs(sub)
