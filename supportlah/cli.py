"""The ``supportlah`` command. Each subcommand builds the container from settings and
runs one job over it; errors print one clear line and exit non-zero."""
from __future__ import annotations

import argparse
import dataclasses
import asyncio
import json
import logging
import os
import sys
from importlib import resources
from pathlib import Path

from config.settings import Settings, SettingsError, load_settings
from escalation import cli as tickets_cli

log = logging.getLogger("supportlah")


class CliError(Exception):
    """A user-facing failure: printed without a traceback, exit code 1."""


def sample_kb_path() -> Path:
    return Path(str(resources.files("supportlah") / "sample_kb"))


# ------------------------------------------------------------------ commands
async def cmd_ingest(settings: Settings, args: argparse.Namespace) -> int:
    from supportlah.container import build
    from supportlah.ingest_cli import run_ingest

    paths = [Path(p) for p in args.paths]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise CliError(f"no such file or folder: {', '.join(missing)}")
    container = await build(settings, start_queue=False)
    try:
        report = await run_ingest(container, paths, category=args.category, language=args.language,
                                  show_progress=not args.quiet)
    finally:
        await container.close()
    print(report)
    return 0 if not report.failed else 1


async def cmd_kb(settings: Settings, args: argparse.Namespace) -> int:
    from supportlah.container import build

    container = await build(settings, start_queue=False)
    try:
        if args.kb_command == "list":
            documents = await container.catalog.list_documents()
            if args.json:
                print(json.dumps([_document_json(d) for d in documents], ensure_ascii=False, indent=2))
            else:
                for d in documents:
                    print(f"{d.name}\t{d.chunk_count} chunks\t{d.language or '-'}\t{d.category or '-'}\t{d.source_path}")
                if not documents:
                    print("the knowledge base is empty: add documents with `supportlah ingest PATH`")
        elif args.kb_command == "stats":
            stats = dataclasses.asdict(await container.catalog.stats())
            stats["indexed_chunks"] = await container.index.count()
            print(json.dumps(stats, ensure_ascii=False, indent=2, default=str))
        elif args.kb_command == "delete":
            removed = await container.ingestor.delete(args.document)
            if not removed:
                raise CliError(f"no document named {args.document!r} in the knowledge base (see `supportlah kb list`)")
            print(f"deleted {args.document}")
    finally:
        await container.close()
    return 0


def _document_json(d) -> dict:  # noqa: ANN001
    return {"name": d.name, "path": d.source_path, "chunks": d.chunk_count, "language": d.language,
            "category": d.category, "sha256": d.sha256, "updated_at": d.updated_at.isoformat()}


async def cmd_search(settings: Settings, args: argparse.Namespace) -> int:
    from supportlah.container import build

    container = await build(settings, start_queue=False)
    try:
        hits = await container.retriever.search(args.query, k=args.k)
    finally:
        await container.close()
    if args.json:
        print(json.dumps([{"document": h.document, "chunk_id": h.chunk_id, "score": round(h.score, 6),
                           "text": h.text} for h in hits], ensure_ascii=False, indent=2))
    else:
        for rank, h in enumerate(hits, 1):
            snippet = " ".join(h.text.split())[:160]
            print(f"{rank}. [{h.score:.4f}] {h.document} ({h.chunk_id})\n   {snippet}")
        if not hits:
            print("no results (is the knowledge base empty? see `supportlah kb list`)")
    return 0


async def cmd_ask(settings: Settings, args: argparse.Namespace) -> int:
    from supportlah.container import build
    from supportlah.conversation import ask_once

    container = await build(settings, start_queue=False)
    try:
        result = await ask_once(container, args.question, user=args.user)
    finally:
        await container.close()
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        print(result["answer"])
        for source in result["sources"]:
            print(f"  source: {source['document']} ({source['chunk_id']})")
    return 0


async def cmd_chat(settings: Settings, args: argparse.Namespace) -> int:
    from supportlah.container import build
    from supportlah.conversation import ask_once

    container = await build(settings, start_queue=False)
    print(f"Chatting with {settings.business_name} — type your question, Ctrl-D to quit.")
    try:
        while True:
            try:
                line = await asyncio.to_thread(input, "you> ")
            except EOFError:
                print()
                return 0
            if not line.strip():
                continue
            result = await ask_once(container, line, user=args.user)
            print(f"bot> {result['answer']}")
            for source in result["sources"]:
                print(f"     source: {source['document']}")
    finally:
        await container.close()


async def cmd_serve(settings: Settings, args: argparse.Namespace, *, demo: bool = False) -> int:
    from aiohttp import web

    from supportlah.app import create_app
    from supportlah.container import build
    from supportlah.ingest_cli import run_ingest

    container = await build(settings)
    if demo:
        report = await run_ingest(container, [sample_kb_path()], show_progress=True)
        print(report)
    app = create_app(container)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise CliError(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}") from exc
    url = f"http://{'localhost' if settings.host in ('127.0.0.1', '0.0.0.0') else settings.host}:{settings.port}/"
    print(f"supportlah is running — open the web chat at {url}  (Ctrl-C to stop)", flush=True)
    if demo and getattr(args, "open_browser", False):
        import webbrowser

        webbrowser.open(url)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
    return 0


async def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    from supportlah import migrate

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    await migrate.upgrade(settings.sqlalchemy_url)
    print(f"database at revision {await migrate.current_revision(settings.sqlalchemy_url)}")
    return 0


async def cmd_telegram(settings: Settings, args: argparse.Namespace) -> int:
    from channels.telegram.channel import TelegramConfigError, telegram_channel_from_settings

    if not settings.public_url:
        raise CliError("set SUPPORTLAH_PUBLIC_URL to the https address Telegram should call")
    try:
        channel = telegram_channel_from_settings(settings, None)
    except TelegramConfigError as exc:
        raise CliError(str(exc)) from exc
    if channel is None:
        raise CliError("set SUPPORTLAH_TELEGRAM_BOT_TOKEN first (create the bot with @BotFather)")
    try:
        await channel.start()
        url = await channel.register_webhook(settings.public_url, drop_pending_updates=args.drop_pending)
    except TelegramConfigError as exc:
        raise CliError(str(exc)) from exc
    finally:
        await channel.close()
    print(f"Telegram will deliver updates to {url}")
    return 0


def cmd_config(settings: Settings, args: argparse.Namespace) -> int:
    for key, value in settings.masked().items():
        print(f"{key}={value}")
    return 0


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    if not settings.redis_url:
        raise CliError("`supportlah worker` needs SUPPORTLAH_REDIS_URL (embedded mode runs its workers inside `serve`)")
    from workers.arq_queue import run_worker

    run_worker(settings)
    return 0


async def cmd_admin(settings: Settings, args: argparse.Namespace) -> int:
    from supportlah.admin.wiring import run_cli  # admin/PDPA (issue 10)

    return await run_cli(settings, args)


# ------------------------------------------------------------------ parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="supportlah",
        description="Self-hostable AI customer support: web chat, WhatsApp and Telegram, grounded in your documents.",
    )
    parser.add_argument("--data-dir", help="where state lives (default $SUPPORTLAH_DATA_DIR or ./.supportlah)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="ingest the sample knowledge base and serve the web chat")
    demo.add_argument("--port", type=int, help="port to listen on (default 8000)")
    demo.add_argument("--host", help="address to bind (default 127.0.0.1)")
    demo.add_argument("--open", dest="open_browser", action="store_true", help="open the chat in a browser")
    demo.add_argument("--no-browser", dest="open_browser", action="store_false", help="do not open a browser (default)")

    serve = sub.add_parser("serve", help="run the HTTP server (web chat, webhooks, health)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8000)")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")

    ingest = sub.add_parser("ingest", help="add or update documents in the knowledge base")
    ingest.add_argument("paths", nargs="+", metavar="PATH", help="files or folders (.md .txt .html .pdf .docx .csv)")
    ingest.add_argument("--category", help="category stored with these documents")
    ingest.add_argument("--language", help="language of these documents (en, zh, ms, ta); detected if omitted")
    ingest.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    kb = sub.add_parser("kb", help="inspect or change the knowledge base")
    kb_sub = kb.add_subparsers(dest="kb_command", required=True, metavar="ACTION")
    kb_list = kb_sub.add_parser("list", help="list ingested documents")
    kb_list.add_argument("--json", action="store_true", help="print JSON")
    kb_sub.add_parser("stats", help="counts of documents, chunks and tokens")
    kb_delete = kb_sub.add_parser("delete", help="remove a document and its chunks")
    kb_delete.add_argument("document", help="document name (as in `kb list`) or path")

    search = sub.add_parser("search", help="ranked chunks for a query")
    search.add_argument("query")
    search.add_argument("-k", type=int, default=5, help="how many results (default 5)")
    search.add_argument("--json", action="store_true", help="print JSON")

    ask = sub.add_parser("ask", help="one question through the full pipeline")
    ask.add_argument("question")
    ask.add_argument("--user", default="cli-user", help="who is asking (keeps a conversation per user)")
    ask.add_argument("--json", action="store_true", help="print JSON")

    chat = sub.add_parser("chat", help="chat in the terminal")
    chat.add_argument("--user", default="cli-user", help="who is chatting")

    telegram = sub.add_parser("telegram", help="Telegram bot set-up")
    telegram_sub = telegram.add_subparsers(dest="telegram_command", required=True, metavar="ACTION")
    set_webhook = telegram_sub.add_parser("set-webhook", help="register $SUPPORTLAH_PUBLIC_URL/webhooks/telegram")
    set_webhook.add_argument("--drop-pending", action="store_true", help="discard updates Telegram is holding")

    tickets_cli.register(sub)

    sub.add_parser("config", help="print the effective settings (secrets masked)")
    sub.add_parser("migrate", help="upgrade the database schema to the latest version")
    sub.add_parser("worker", help="run queue workers (production mode, needs Redis)")
    from supportlah import eval_cli  # evaluation commands (issue 11)

    eval_cli.register(sub)
    from supportlah.admin.wiring import register_cli as register_admin_cli  # admin/PDPA (issue 10)

    register_admin_cli(sub)
    from supportlah.console.wiring import register_cli as register_console_cli  # the web console (issue 20)

    register_console_cli(sub)
    return parser


def _settings_for(args: argparse.Namespace) -> Settings:
    overrides: dict[str, object] = {}
    if args.data_dir:
        overrides["data_dir"] = Path(args.data_dir)
    if getattr(args, "port", None):
        overrides["port"] = args.port
    if getattr(args, "host", None):
        overrides["host"] = args.host
    return load_settings(**overrides)


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("PTB_TIMEDELTA", "1")  # python-telegram-bot: retry_after as timedelta, no warning
    args = build_parser().parse_args(argv)
    try:
        settings = _settings_for(args)
    except SettingsError as exc:
        print(f"supportlah: {exc}", file=sys.stderr)
        return 2
    from supportlah.logs import configure_logging

    if args.verbose:
        level = "DEBUG"
    elif "log_level" in settings.model_fields_set:
        level = settings.log_level
    else:  # servers log their work; one-shot commands and the demo stay quiet unless something is wrong
        level = "INFO" if args.command in ("serve", "worker") else "WARNING"
    configure_logging(level, json_output=settings.log_json)
    commands = {"ingest": cmd_ingest, "kb": cmd_kb, "search": cmd_search, "ask": cmd_ask, "chat": cmd_chat,
                "serve": cmd_serve, "migrate": cmd_migrate, "telegram": cmd_telegram, "admin": cmd_admin,
                "tickets": tickets_cli.cmd_tickets}
    from supportlah import eval_cli  # evaluation commands (issue 11)

    commands["eval"] = eval_cli.run
    from supportlah.console.wiring import run_cli as run_console_cli  # the web console (issue 20)

    commands["console"] = run_console_cli
    try:
        if args.command == "config":
            return cmd_config(settings, args)
        if args.command == "worker":
            return cmd_worker(settings, args)
        if args.command == "demo":
            return asyncio.run(cmd_serve(settings, args, demo=True))
        return asyncio.run(commands[args.command](settings, args))
    except KeyboardInterrupt:
        return 130
    except CliError as exc:
        print(f"supportlah: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # one clear line; the traceback goes to the debug log
        from supportlah.container import StartupError

        if isinstance(exc, StartupError):
            print(f"supportlah: {exc}", file=sys.stderr)
            return 1
        log.debug("command failed", exc_info=True)
        print(f"supportlah: {args.command} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
