"""``supportlah admin …``: API keys, the audit log and the retention purge from a terminal."""
from __future__ import annotations

import argparse
import json

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from config.settings import Settings
from config.sql import create_engine, session_factory
from supportlah.admin.audit import AuditLog
from supportlah.admin.keys import SCOPES, ApiKeys, UnknownScope, parse_scopes
from supportlah.admin.wiring import purge_expired
from supportlah.container import build
from supportlah.errors import CliError, print_json
from supportlah.migrate import prepare_database


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    admin = subparsers.add_parser("admin", help="API keys, audit log and retention")
    sub = admin.add_subparsers(dest="admin_command", required=True, metavar="ACTION")
    json_flag = argparse.ArgumentParser(add_help=False)
    json_flag.add_argument("--json", action="store_true", help="print JSON (for scripts)")
    create = sub.add_parser("create-key", parents=[json_flag],
                            help="create an admin API key (printed once, on the last line)")
    create.add_argument("--name", default="admin", help="who or what the key is for")
    create.add_argument("--scopes", nargs="+", default=["all"],
                        help=f"scopes (default: all): {' '.join(SCOPES)}")
    revoke = sub.add_parser("revoke-key", parents=[json_flag], help="revoke a key by its id or prefix")
    revoke.add_argument("key", help="key id or prefix, as shown by list-keys")
    sub.add_parser("list-keys", parents=[json_flag], help="list API keys (prefixes only)")
    audit = sub.add_parser("audit", parents=[json_flag], help="show recent audit log entries")
    audit.add_argument("--limit", type=int, default=50)
    sub.add_parser("purge", parents=[json_flag], help="run the retention purge now")


async def run_cli(settings: Settings, args: argparse.Namespace) -> int:
    await prepare_database(settings)
    engine = create_engine(settings.sqlalchemy_url, pre_ping=settings.database_pre_ping)
    sessions = session_factory(engine)
    try:
        return await _run(settings, sessions, args)
    finally:
        await engine.dispose()


async def _run(settings: Settings, sessions: async_sessionmaker[AsyncSession], args: argparse.Namespace) -> int:
    keys, audit = ApiKeys(sessions), AuditLog(sessions)
    command = args.admin_command
    if command == "create-key":
        try:
            scopes = parse_scopes(args.scopes)
        except UnknownScope as exc:
            raise CliError(str(exc)) from exc
        new = await keys.create(args.name, scopes)
        await audit.record("cli", "key.create", new.info.id, detail={"prefix": new.info.prefix,
                                                                      "scopes": sorted(scopes)})
        if args.json:
            print_json({**_key_json(new.info), "token": new.token})
            return 0
        print(f"created key {new.info.prefix}… (id {new.info.id}) for {new.info.name!r}")
        print(f"scopes: {' '.join(sorted(scopes))}")
        print("store it now: it is shown only this once")
        print(new.token)
        return 0
    if command == "revoke-key":
        info = await keys.revoke(args.key)
        if info is None:
            raise CliError(f"no key with id or prefix {args.key!r} (see `supportlah admin list-keys`)")
        await audit.record("cli", "key.revoke", info.id, detail={"prefix": info.prefix})
        if args.json:
            print_json(_key_json(info))
            return 0
        print(f"revoked {info.prefix}… ({info.name})")
        return 0
    if command == "list-keys":
        if args.json:
            print_json([_key_json(info) for info in await keys.list()])
            return 0
        for info in await keys.list():
            state = f"revoked {info.revoked_at:%Y-%m-%d}" if info.revoked_at else "active"
            used = f"{info.last_used_at:%Y-%m-%d %H:%M}" if info.last_used_at else "never"
            print(f"{info.prefix}…\t{info.id}\t{info.name}\t{state}\tlast used {used}\t{' '.join(sorted(info.scopes))}")
        return 0
    if command == "audit":
        if args.json:
            print_json([{"at": e.at.isoformat(), "actor": e.actor, "action": e.action, "target": e.target,
                         "detail": e.detail} for e in reversed(await audit.recent(args.limit))])
            return 0
        for entry in reversed(await audit.recent(args.limit)):
            print(f"{entry.at:%Y-%m-%d %H:%M:%S}\t{entry.actor}\t{entry.action}\t{entry.target or '-'}\t"
                  f"{json.dumps(entry.detail, ensure_ascii=False)}")
        return 0
    if command == "purge":
        container = await build(settings, start_queue=False)
        try:
            report = await purge_expired(container)
        finally:
            await container.close()
        await audit.record("cli", "retention.purge", None, detail=report.counts)
        if args.json:
            print_json(report.counts)
        else:
            print("purged: " + ", ".join(f"{name} {count}" for name, count in report.counts.items()))
        return 0
    raise CliError(f"unknown admin action {command!r}")


def _key_json(info) -> dict:  # noqa: ANN001 - KeyInfo
    return {"id": info.id, "name": info.name, "prefix": info.prefix, "scopes": sorted(info.scopes),
            "created_at": info.created_at.isoformat(), "revoked_at": _iso(info.revoked_at),
            "last_used_at": _iso(info.last_used_at)}


def _iso(value) -> str | None:  # noqa: ANN001
    return value.isoformat() if value is not None else None
