"""Console inbox benchmark: how long the inbox list and a conversation take to read as the
conversations pile up (the inbox refreshes every few seconds for every open console).

``--conversations`` web-chat customers each send ``--messages`` messages through the real
store (one batch per customer); then the inbox query (latest 100, with previews and
tickets), the "waiting for staff" filter, a text search and one conversation's transcript
are each timed ``--repeats`` times. SQLite by default; ``--database-url`` for Postgres
(an empty, migrated database).

    python -m bench.console_inbox [--conversations 2000] [--messages 5] [--repeats 30]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench.common import latency_summary, machine, pyplot, run_benchmark, save_plot, table
from channels.messages import Channel, InboundMessage, new_id
from config.sql import create_engine, session_factory
from memory.store import MessageStore
from supportlah import migrate
from supportlah.console.inbox import InboxFilter, InboxReader

NAME = "console_inbox"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--conversations", type=int, default=2000)
    p.add_argument("--messages", type=int, default=5)
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--database-url", help="a migrated, empty Postgres database (default: a temporary SQLite file)")
    return p


async def run(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}"
        await migrate.upgrade(url)
        engine = create_engine(url)
        try:
            sessions = session_factory(engine)
            store = MessageStore(sessions)
            for customer in range(args.conversations):
                await store.record_inbound_many([
                    InboundMessage(channel=Channel.WEB, provider_message_id=new_id(), sender_id=f"visitor-{customer:06d}",
                                   text=f"Question {n} from customer {customer} about aircon servicing")
                    for n in range(args.messages)])
            reader = InboxReader(sessions)
            some = (await reader.rows(InboxFilter(), actor_id=""))[0].conversation_id
            cases = {
                "inbox (latest 100)": lambda: reader.rows(InboxFilter(), actor_id=""),
                "waiting for staff": lambda: reader.rows(InboxFilter(waiting=True), actor_id=""),
                "search 'customer 1234'": lambda: reader.rows(InboxFilter(query="customer 1234"), actor_id=""),
                "one conversation": lambda: reader.conversation(some),
            }
            results = {}
            for name, call in cases.items():
                await call()  # warm
                seconds = []
                for _ in range(args.repeats):
                    started = time.perf_counter()
                    await call()
                    seconds.append(time.perf_counter() - started)
                results[name] = latency_summary(seconds)
        finally:
            await engine.dispose()
    return {"machine": machine(), "database": "postgres" if args.database_url else "sqlite",
            "conversations": args.conversations, "messages_per_conversation": args.messages, "results": results}


def plot(data: dict) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 3))
    names = list(data["results"])
    ax.barh(names, [data["results"][n]["p50_ms"] for n in names])
    ax.set_xlabel("median ms")
    ax.set_title(f"Console reads, {data['conversations']} conversations ({data['database']})")
    fig.tight_layout()
    save_plot(fig, NAME)


def report(data: dict) -> str:
    rows = [(name, r["p50_ms"], r["p90_ms"]) for name, r in data["results"].items()]
    return table(["read", "p50 ms", "p90 ms"], rows)


def main(argv: list[str] | None = None) -> dict:
    return run_benchmark(NAME, parser, run, plot, report, argv)


if __name__ == "__main__":
    main()
