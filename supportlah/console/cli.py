"""``supportlah console …``: the web console's accounts from a terminal."""
from __future__ import annotations

import argparse
import getpass
import sys

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from config.settings import Settings
from config.sql import create_engine, session_factory
from supportlah.admin.audit import AuditLog
from supportlah.console.accounts import AccountError, Accounts
from supportlah.console.models import Role
from supportlah.errors import CliError
from supportlah.migrate import prepare_database


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    console = subparsers.add_parser("console", help="accounts for the web console (/console)")
    sub = console.add_subparsers(dest="console_command", required=True, metavar="ACTION")
    add = sub.add_parser("add-user", help="create an owner or staff account")
    add.add_argument("email")
    add.add_argument("--role", choices=[role.value for role in Role], default=Role.STAFF.value)
    add.add_argument("--name", help="the name customers and colleagues see (default: from the e-mail)")
    add.add_argument("--link", action="store_true",
                     help="print a one-time set-password link instead of asking for the password")
    link = sub.add_parser("set-password-link", help="print a one-time link to set a new password")
    link.add_argument("email")
    sub.add_parser("list-users", help="list console accounts")


async def run_cli(settings: Settings, args: argparse.Namespace) -> int:
    await prepare_database(settings)
    engine = create_engine(settings.sqlalchemy_url, pre_ping=settings.database_pre_ping)
    try:
        return await _run(settings, session_factory(engine), args, AuditLog(session_factory(engine)))
    finally:
        await engine.dispose()


async def _run(settings: Settings, sessions: async_sessionmaker[AsyncSession], args: argparse.Namespace,
               audit: AuditLog) -> int:
    accounts = Accounts(sessions)
    if args.console_command == "list-users":
        for user in await accounts.list():
            print(f"{user.email}\t{user.role}\t{user.name}")
        return 0
    if args.console_command == "set-password-link":
        try:
            token = await accounts.new_link(args.email)
        except AccountError as exc:
            raise CliError(str(exc)) from exc
        await audit.record("cli", "console.user.link", None)
        _print_link(settings, token)
        return 0
    password = None
    if not args.link:
        if not sys.stdin.isatty():
            password = sys.stdin.readline().rstrip("\n")
        else:
            password = getpass.getpass("Password (at least 10 characters): ")
            if password != getpass.getpass("Password again: "):
                raise CliError("the two passwords differ")
    try:
        user, link_token = await accounts.add_user(args.email, Role(args.role), password=password, name=args.name)
    except AccountError as exc:
        raise CliError(str(exc)) from exc
    await audit.record("cli", "console.user.create", user.id, detail={"role": user.role.value})
    print(f"created {user.role.value} account {user.email}")
    if link_token is not None:
        _print_link(settings, link_token)
    return 0


def _print_link(settings: Settings, token: str) -> None:
    base = (settings.public_url or f"http://localhost:{settings.port}").rstrip("/")
    print("send this one-time link to set the password (valid 48 hours):")
    print(f"{base}/console/set-password?token={token}")
