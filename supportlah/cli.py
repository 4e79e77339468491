"""The ``supportlah`` command. Each subcommand builds the container from settings and
runs one job over it; errors print one clear line and exit non-zero.

Start-up is part of the interface: this module imports only the standard library at the top,
and each command imports what it needs, so ``--help`` and ``kb list`` never load a model or a
vendor SDK. Output is for people by default and JSON with ``--json``.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import logging
import os
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from supportlah.errors import CliError, print_json
from supportlah.profile import DEMO_DATA_DIR, SAMPLE_BUSINESS_NAME, DataDirKind, profile_kind, sample_kb_path

if TYPE_CHECKING:
    from config.settings import Settings

log = logging.getLogger("supportlah")
__all__ = ["main", "sample_kb_path", "CliError", "print_json"]




# One-shot commands never hear a voice note: they start without the speech model.
NO_VOICE_COMMANDS = frozenset({"ingest", "kb", "search", "ask", "chat", "eval", "calibrate", "admin", "tickets",
                               "init"})


async def require_index(container) -> None:  # noqa: ANN001
    """Refuse to answer when this process cannot search: the embedded index belongs to one process
    at a time, and a pipeline that cannot search would only apologise and open tickets for it."""
    if await container.index.healthy():
        return
    await container.close()
    settings = container.settings
    if settings.qdrant_url:
        raise CliError(f"cannot reach the Qdrant server at {settings.qdrant_url} (SUPPORTLAH_QDRANT_URL)")
    raise CliError(
        f"cannot open the knowledge-base index ({settings.data_dir / 'index'}); another supportlah process "
        "(a running `serve` or `worker` on this data dir) probably holds it. Stop it, or ask through the "
        "running server (the web chat or POST /api/chat), or point every process at a Qdrant server "
        "(SUPPORTLAH_QDRANT_URL)")


def sample_vocabulary_path() -> Path:
    """The sample business's own words (``config.vocabulary``), kept beside its documents' package."""
    from importlib import resources

    return Path(str(resources.files("supportlah") / "sample_business" / "vocabulary.json"))


# ------------------------------------------------------------------ first run
@contextlib.asynccontextmanager
async def _catalog(settings: Settings):  # noqa: ANN202 - AsyncIterator[Catalog]
    """The knowledge-base catalog alone: no container, no embedding model, no vendor SDK."""
    from config.sql import create_engine, session_factory
    from rag.catalog import Catalog
    from supportlah.migrate import prepare_database

    await prepare_database(settings)
    engine = create_engine(settings.sqlalchemy_url)
    try:
        yield Catalog(session_factory(engine))
    finally:
        await engine.dispose()


async def _documents(settings: Settings) -> list:
    async with _catalog(settings) as catalog:
        return await catalog.list_documents()


async def cmd_init(settings: Settings, args: argparse.Namespace) -> int:
    """Make a data dir yours: your business's name, languages and documents, and no sample content."""
    from config.languages import UnknownLanguage, language
    from supportlah.profile import write_profile

    data_dir = settings.data_dir
    kind = profile_kind(data_dir)
    if kind is DataDirKind.DEMO:
        raise CliError(f"{data_dir} holds the demo's sample business; choose another --data-dir for yours")
    if kind is DataDirKind.BUSINESS and not args.force:
        raise CliError(f"{data_dir} is already set up for {settings.business_name!r} "
                       "(--force rewrites its name, languages and examples; documents stay)")
    name = args.name or _ask_user("Your business's name: ")
    documents_dir = args.documents or _ask_user("Folder with your documents (empty: add them later): ", optional=True)
    if documents_dir and not Path(documents_dir).exists():
        raise CliError(f"no such file or folder: {documents_dir}")
    try:
        languages = [language(code).name for code in (args.languages or "en").split(",") if code.strip()]
    except UnknownLanguage as exc:
        raise CliError(str(exc)) from exc
    existing = await _documents(settings)
    if existing and kind is None:
        raise CliError(f"{data_dir} already holds {len(existing)} documents ({existing[0].name}, …); "
                       "start your business in a new --data-dir")
    values: dict[str, str | list[str]] = {"business_name": name, "business_languages": ",".join(languages)}
    if args.example:
        values["web_example_questions"] = args.example
    profile = write_profile(data_dir, DataDirKind.BUSINESS, values)
    report = None
    if documents_dir:
        fresh = _reload(args)
        report = await _ingest(fresh, [Path(documents_dir)], quiet=args.quiet or args.json)
    if args.json:
        print_json({"data_dir": str(data_dir), "profile": str(profile), "business_name": name,
                    "languages": languages, "ingest": report.to_json() if report else None})
    else:
        print(f"{name}: data dir {data_dir} (settings in {profile})")
        if report is not None:
            print(report)
        print("Next: `supportlah ask \"a question a customer asks\"`, then `supportlah serve` for the web chat.")
    return 1 if report is not None and report.failed else 0


def _ask_user(prompt: str, *, optional: bool = False) -> str:
    if not sys.stdin.isatty():
        if optional:
            return ""
        raise CliError(f"missing {prompt.strip(': ').lower()} (pass it as an option)")
    answer = input(prompt).strip()
    if not answer and not optional:
        raise CliError("a business name is needed")
    return answer


async def _prepare_demo(settings: Settings, args: argparse.Namespace) -> Settings:
    """The demo runs in a data dir of its own: never one that holds a business's documents."""
    from supportlah.profile import sample_hashes, write_profile

    data_dir = settings.data_dir
    kind = profile_kind(data_dir)
    if kind is DataDirKind.BUSINESS:
        raise CliError(f"{data_dir} is the data dir of {settings.business_name!r}; the demo adds its sample business "
                       f"only to a data dir of its own (run `supportlah demo` without --data-dir: {DEMO_DATA_DIR})")
    if kind is None:
        foreign = [d.name for d in await _documents(settings) if d.sha256 not in sample_hashes()]
        if foreign:
            raise CliError(f"{data_dir} holds documents that are not the sample's ({', '.join(foreign[:3])}); "
                           f"the demo runs in a data dir of its own (without --data-dir: {DEMO_DATA_DIR})")
        write_profile(data_dir, DataDirKind.DEMO, {"business_name": SAMPLE_BUSINESS_NAME})
    vocabulary = data_dir / "vocabulary.json"  # the sample business's own words, for every command on this dir
    if not vocabulary.exists():
        import shutil

        shutil.copyfile(sample_vocabulary_path(), vocabulary)
    return _reload(args)


# ------------------------------------------------------------------ knowledge base
async def _ingest(settings: Settings, paths: list[Path], *, category: str | None = None,
                  language: str | None = None, quiet: bool = False):  # noqa: ANN202 - IngestSummary
    from supportlah.container import build
    from supportlah.ingest_cli import run_ingest

    container = await build(settings, start_queue=False)
    try:
        return await run_ingest(container, paths, category=category, language=language, show_progress=not quiet)
    finally:
        await container.close()


async def cmd_ingest(settings: Settings, args: argparse.Namespace) -> int:
    paths = [Path(p) for p in args.paths]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise CliError(f"no such file or folder: {', '.join(missing)}")
    if profile_kind(settings.data_dir) is DataDirKind.DEMO:
        raise CliError(f"{settings.data_dir} is the demo's data dir (the sample business); make your own with "
                       "`supportlah init --name \"Your shop\" --documents PATH`")
    report = await _ingest(settings, paths, category=args.category, language=args.language,
                           quiet=args.quiet or args.json)
    if args.json:
        print_json(report.to_json())
    else:
        print(report)
    return 0 if not report.failed else 1


async def cmd_kb(settings: Settings, args: argparse.Namespace) -> int:
    if args.kb_command == "list":  # list and stats read; they never load the embedding model
        documents = await _documents(settings)
        if args.json:
            print_json([_document_json(d) for d in documents])
        elif documents:
            print(_table(["document", "chunks", "language", "category", "path"],
                         [[d.name, d.chunk_count, d.language or "-", d.category or "-", d.source_path]
                          for d in documents]))
        else:
            print("the knowledge base is empty: add documents with `supportlah ingest PATH`")
        return 0
    if args.kb_command == "stats":
        from supportlah.backends import build_index

        async with _catalog(settings) as catalog:
            stats = await catalog.stats()
        index = build_index(settings)
        try:
            indexed = await index.count()
        finally:
            await index.close()
        body = {"documents": stats.documents, "chunks": stats.chunks, "tokens": stats.tokens,
                "by_category": stats.by_category, "by_language": stats.by_language, "indexed_chunks": indexed}
        if args.json:
            print_json(body)
        else:
            print(_stats_text(body))
        return 0
    from supportlah.container import build

    container = await build(settings, start_queue=False)
    try:
        if args.kb_command == "delete":
            removed = await container.ingestor.delete(args.document)
            if not removed:
                raise CliError(f"no document named {args.document!r} in the knowledge base (see `supportlah kb list`)")
            if args.json:
                print_json({"deleted": _document_json(removed)})
            else:
                print(f"deleted {removed.name} ({removed.chunk_count} chunks)")
    finally:
        await container.close()
    return 0


def _table(header: list[str], rows: list[list[object]]) -> str:
    cells = [header, *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells)


def _stats_text(body: dict) -> str:
    def breakdown(counts: dict) -> str:
        return ", ".join(f"{key or 'none'} {count}" for key, count in sorted(counts.items(), key=lambda kv: str(kv[0])))

    return "\n".join([
        f"documents  {body['documents']}",
        f"chunks     {body['chunks']} ({body['indexed_chunks']} in the vector index)",
        f"tokens     {body['tokens']}",
        f"languages  {breakdown(body['by_language']) or '-'}",
        f"categories {breakdown(body['by_category']) or '-'}",
    ])


def _document_json(d) -> dict:  # noqa: ANN001
    return {"name": d.name, "path": d.source_path, "chunks": d.chunk_count, "language": d.language,
            "category": d.category, "sha256": d.sha256, "updated_at": d.updated_at.isoformat()}


async def cmd_search(settings: Settings, args: argparse.Namespace) -> int:
    from supportlah.container import build

    container = await build(settings, start_queue=False)
    await require_index(container)
    try:
        hits = await container.retriever.search(args.query, k=args.k)
    finally:
        await container.close()
    if args.json:
        print_json([{"document": h.document, "chunk_id": h.chunk_id, "score": round(h.score, 6), "text": h.text}
                    for h in hits])
    else:
        for rank, h in enumerate(hits, 1):
            snippet = " ".join(h.text.split())[:160]
            print(f"{rank}. [{h.score:.4f}] {h.document} ({h.chunk_id})\n   {snippet}")
        if not hits:
            print("no results (is the knowledge base empty? see `supportlah kb list`)")
    return 0


# ------------------------------------------------------------------ conversations
async def cmd_ask(settings: Settings, args: argparse.Namespace) -> int:
    from supportlah.container import build
    from supportlah.conversation import ask_once

    container = await build(settings, start_queue=False)
    await require_index(container)
    try:
        result = await ask_once(container, args.question, user=args.user)
    finally:
        await container.close()
    if args.json:
        print_json(result)
    else:
        print(result["answer"])
        for source in result["sources"]:
            print(f"  source: {source['document']} ({source['chunk_id']})")
    return 0


async def cmd_chat(settings: Settings, args: argparse.Namespace) -> int:
    from supportlah.container import build
    from supportlah.conversation import ask_once

    # The prompt comes at once; the pipeline (database, embedding model) gets ready while you type.
    building = asyncio.create_task(build(settings, start_queue=False))
    print(f"Chatting with {settings.business_name} — type your question, Ctrl-D to quit.")
    container = None
    try:
        while True:
            try:
                line = await _read_line("you> ")
            except EOFError:
                print()
                return 0
            if not line.strip():
                continue
            if container is None:
                container = await building
                await require_index(container)
            result = await ask_once(container, line, user=args.user)
            print(f"bot> {result['answer']}")
            for source in result["sources"]:
                print(f"     source: {source['document']}")
    finally:
        if container is None:
            building.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                container = await building
        if container is not None:
            await container.close()


def _read_line(prompt: str) -> asyncio.Future:
    """``input()`` on a daemon thread: on Ctrl-C the program exits at once instead of waiting for
    a thread of the default executor that is still blocked reading the terminal."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future = loop.create_future()

    def settle(setter, value) -> None:  # noqa: ANN001
        if not future.done():
            setter(value)

    def read() -> None:
        try:
            line = input(prompt)
        except BaseException as exc:  # EOFError, KeyboardInterrupt: handed to the waiting coroutine
            loop.call_soon_threadsafe(settle, future.set_exception, exc)
        else:
            loop.call_soon_threadsafe(settle, future.set_result, line)

    threading.Thread(target=read, name="chat-input", daemon=True).start()
    return future


# ------------------------------------------------------------------ servers
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


async def cmd_transcribe(settings: Settings, args: argparse.Namespace) -> int:
    """What the local Whisper model hears in an audio file (needs the ``voice`` extra)."""
    from agent.local_transcription import SpeechModelUnavailable
    from agent.transcription import TranscriptionError
    from supportlah.container import build_local_transcriber

    path = Path(args.file)
    if not path.is_file():
        raise CliError(f"no such file: {path}")
    try:
        transcriber = await asyncio.to_thread(build_local_transcriber, settings)
    except SpeechModelUnavailable as exc:
        raise CliError(str(exc)) from exc
    if transcriber is None:
        raise CliError("the voice extra is not installed: pip install 'supportlah[voice]'")
    try:
        started = time.perf_counter()
        transcript = await transcriber.transcript(path, language=args.language)
        elapsed = time.perf_counter() - started
    except TranscriptionError as exc:
        raise CliError(str(exc)) from exc
    finally:
        await transcriber.close()
    if args.json:
        print(json.dumps({"text": transcript.text, "language": transcript.language, "detected": transcript.detected,
                          "seconds": round(transcript.seconds, 2), "elapsed": round(elapsed, 2),
                          "model": transcriber.name}, ensure_ascii=False))
    else:
        print(transcript.text)
    return 0


async def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    from supportlah import migrate

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    await migrate.upgrade(settings.sqlalchemy_url)
    revision = await migrate.current_revision(settings.sqlalchemy_url)
    if args.json:
        print_json({"revision": revision})
    else:
        print(f"database at revision {revision}")
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
    if args.json:
        print_json({"webhook_url": url})
    else:
        print(f"Telegram will deliver updates to {url}")
    return 0


def cmd_config(settings: Settings, args: argparse.Namespace) -> int:
    shown = settings.masked()
    if args.json:
        print_json(shown)
    else:
        for key, value in shown.items():
            print(f"{key}={value}")
    return 0


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    if not settings.is_production_queue:
        raise CliError("`supportlah worker` needs SUPPORTLAH_REDIS_URL (embedded mode runs its workers inside `serve`)")
    from supportlah.worker import run_worker

    run_worker(settings)
    return 0


# ------------------------------------------------------------------ parser
# Commands whose arguments live with their code: imported only when the command line names them,
# so `supportlah --help` does not pay for SQLAlchemy models or aiohttp. name -> (help, module, register, run)
EXTERNAL_COMMANDS: dict[str, tuple[str, str, str, str]] = {
    "tickets": ("hand-off tickets: list them or show one with its history", "supportlah.tickets_cli", "register",
                "cmd_tickets"),
    "eval": ("measure retrieval and answer quality", "supportlah.eval_cli", "register", "run"),
    "calibrate": ("fit the answer-confidence model on several question sets", "supportlah.calibrate", "register",
                  "run"),
    "console": ("the web console's accounts: add a user, a set-password link, list users",
                "supportlah.console.cli", "register_cli", "run_cli"),
    "admin": ("API keys, audit log and retention", "supportlah.admin.cli", "register_cli", "run_cli"),
}
GLOBAL_OPTIONS_WITH_VALUE = {"--data-dir"}


def _named_command(argv: list[str]) -> str | None:
    """The subcommand on the command line (the first word that is not a global option or its value)."""
    skip = False
    for token in argv:
        if skip:
            skip = False
        elif token in GLOBAL_OPTIONS_WITH_VALUE:
            skip = True
        elif not token.startswith("-"):
            return token
    return None


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The whole parser; an external command's arguments are added only when ``argv`` names it
    (``argv=None``: all of them, for documentation and tests)."""
    from config.languages import LANGUAGES  # a table of four rows: no cost at start-up

    named = _named_command(argv) if argv is not None else None
    parser = argparse.ArgumentParser(
        prog="supportlah",
        description="Self-hostable AI customer support: web chat, WhatsApp and Telegram, grounded in your documents.",
    )
    parser.add_argument("--data-dir", help="where state lives (default $SUPPORTLAH_DATA_DIR or ./.supportlah; "
                                           f"the demo's: {DEMO_DATA_DIR})")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--log-json", action="store_true", default=None,
                        help="JSON log lines even on a terminal (the default when stderr is not a terminal)")
    json_flag = argparse.ArgumentParser(add_help=False)
    json_flag.add_argument("--json", action="store_true", help="print JSON (for scripts)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    init = sub.add_parser("init", parents=[json_flag],
                          help="set up a data dir for your business: name, languages, documents (no sample)")
    init.add_argument("--name", help="your business's name, as customers know it")
    init.add_argument("--documents", metavar="PATH", help="file or folder to ingest (.md .txt .html .pdf .docx .csv)")
    init.add_argument("--languages", help="languages you serve, comma-separated codes: en,zh,ms,ta (default en)")
    init.add_argument("--example", action="append", metavar="QUESTION",
                      help="an example question the web chat offers (repeatable; default: your documents' headings)")
    init.add_argument("--force", action="store_true", help="rewrite the settings of a data dir already set up")
    init.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    demo = sub.add_parser("demo", help=f"serve the sample business's web chat (its own data dir: {DEMO_DATA_DIR})")
    demo.add_argument("--port", type=int, help="port to listen on (default 8000)")
    demo.add_argument("--host", help="address to bind (default 127.0.0.1)")
    demo.add_argument("--open", dest="open_browser", action="store_true", help="open the chat in a browser")
    demo.add_argument("--no-browser", dest="open_browser", action="store_false", help="do not open a browser (default)")

    serve = sub.add_parser("serve", help="run the HTTP server (web chat, webhooks, health)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8000)")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")

    ingest = sub.add_parser("ingest", parents=[json_flag], help="add or update documents in the knowledge base")
    ingest.add_argument("paths", nargs="+", metavar="PATH", help="files or folders (.md .txt .html .pdf .docx .csv)")
    ingest.add_argument("--category", help="category stored with these documents")
    ingest.add_argument("--language", help="language of these documents (en, zh, ms, ta); detected if omitted")
    ingest.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    kb = sub.add_parser("kb", help="inspect or change the knowledge base")
    kb_sub = kb.add_subparsers(dest="kb_command", required=True, metavar="ACTION")
    kb_sub.add_parser("list", parents=[json_flag], help="list ingested documents")
    kb_sub.add_parser("stats", parents=[json_flag], help="counts of documents, chunks and tokens")
    kb_delete = kb_sub.add_parser("delete", parents=[json_flag], help="remove a document and its chunks")
    kb_delete.add_argument("document", help="document name (as in `kb list`) or path")

    search = sub.add_parser("search", parents=[json_flag], help="ranked chunks for a query")
    search.add_argument("query")
    search.add_argument("-k", type=int, default=5, help="how many results (default 5)")

    ask = sub.add_parser("ask", parents=[json_flag], help="one question through the full pipeline")
    ask.add_argument("question")
    ask.add_argument("--user", default="cli-user", help="who is asking (keeps a conversation per user)")

    chat = sub.add_parser("chat", help="chat in the terminal")
    chat.add_argument("--user", default="cli-user", help="who is chatting")

    telegram = sub.add_parser("telegram", help="Telegram bot set-up")
    telegram_sub = telegram.add_subparsers(dest="telegram_command", required=True, metavar="ACTION")
    set_webhook = telegram_sub.add_parser("set-webhook", parents=[json_flag],
                                          help="register $SUPPORTLAH_PUBLIC_URL/webhooks/telegram")
    set_webhook.add_argument("--drop-pending", action="store_true", help="discard updates Telegram is holding")

    transcribe = sub.add_parser("transcribe", parents=[json_flag],
                                help="print what the local speech model hears in an audio file")
    transcribe.add_argument("file", help="audio file (a WhatsApp or Telegram voice note: Ogg/Opus; also WAV, MP3…)")
    transcribe.add_argument("--language", choices=[language.code for language in LANGUAGES],
                            help="the language spoken; detected (among these) if omitted")

    sub.add_parser("config", parents=[json_flag], help="print the effective settings (secrets masked)")
    sub.add_parser("migrate", parents=[json_flag], help="upgrade the database schema to the latest version")
    sub.add_parser("worker", help="run queue workers (production mode, needs Redis)")
    for name, (help_text, module, register, _run) in EXTERNAL_COMMANDS.items():
        if argv is None or name == named:
            getattr(importlib.import_module(module), register)(sub)
        else:
            sub.add_parser(name, help=help_text)
    return parser


def _settings_for(args: argparse.Namespace) -> Settings:
    from config.settings import load_settings

    overrides: dict[str, object] = {}
    if args.data_dir:
        overrides["data_dir"] = Path(args.data_dir)
    elif args.command == "demo" and not os.environ.get("SUPPORTLAH_DATA_DIR"):
        overrides["data_dir"] = DEMO_DATA_DIR  # the sample business never shares your data dir
    if getattr(args, "port", None):
        overrides["port"] = args.port
    if getattr(args, "host", None):
        overrides["host"] = args.host
    if args.command in NO_VOICE_COMMANDS:
        overrides["stt_local"] = False
    return load_settings(**overrides)


def _reload(args: argparse.Namespace) -> Settings:
    """Settings again, after this command wrote the data dir's profile."""
    return _settings_for(args)


COMMANDS = {"init": cmd_init, "ingest": cmd_ingest, "kb": cmd_kb, "search": cmd_search, "ask": cmd_ask,
            "chat": cmd_chat, "serve": cmd_serve, "migrate": cmd_migrate, "telegram": cmd_telegram,
            "transcribe": cmd_transcribe}
# Servers and the terminal chat leave through os._exit once everything is closed and flushed: the
# interpreter's own teardown (garbage-collecting the embedding model and the index engine) took 8-10 s
# on a busy machine after Ctrl-C.
LONG_RUNNING = frozenset({"serve", "demo", "chat"})


def _dispatch(settings: Settings, args: argparse.Namespace) -> int:
    if args.command == "config":
        return cmd_config(settings, args)
    if args.command == "worker":
        return cmd_worker(settings, args)
    if args.command == "demo":
        async def demo() -> int:
            return await cmd_serve(await _prepare_demo(settings, args), args, demo=True)

        return asyncio.run(demo())
    if args.command in EXTERNAL_COMMANDS:
        _help, module, _register, run = EXTERNAL_COMMANDS[args.command]
        return asyncio.run(getattr(importlib.import_module(module), run)(settings, args))
    return asyncio.run(COMMANDS[args.command](settings, args))


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("PTB_TIMEDELTA", "1")  # python-telegram-bot: retry_after as timedelta, no warning
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    from config.settings import SettingsError

    try:
        settings = _settings_for(args)
    except SettingsError as exc:
        print(f"supportlah: {exc}", file=sys.stderr)
        return 2
    from supportlah.logs import configure_logging, wants_json

    if args.verbose:
        level = "DEBUG"
    elif "log_level" in settings.model_fields_set:
        level = settings.log_level
    else:  # servers log their work; one-shot commands and the demo stay quiet unless something is wrong
        level = "INFO" if args.command in ("serve", "worker") else "WARNING"
    configure_logging(level, json_output=wants_json(True if args.log_json else settings.log_json, sys.stderr))
    code = _main(settings, args)
    if args.command in LONG_RUNNING:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _main(settings: Settings, args: argparse.Namespace) -> int:
    try:
        return _dispatch(settings, args)
    except KeyboardInterrupt:
        return 130
    except CliError as exc:
        print(f"supportlah: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # one clear line; the traceback goes to the debug log
        from supportlah.migrate import StartupError

        if isinstance(exc, StartupError):
            print(f"supportlah: {exc}", file=sys.stderr)
            return 1
        log.debug("command failed", exc_info=True)
        print(f"supportlah: {args.command} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
