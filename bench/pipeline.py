"""Pipeline benchmark: messages/s and per-stage latency through the real workers.

Each configuration builds the real container (``supportlah.container.build``, with every
hook it wires) on a copy of the sample knowledge base's index and runs the real workers
(production: an arq worker on Postgres + Redis; embedded: the in-process queue on
SQLite). The only addition is instrumentation: a few methods of the built objects are
wrapped to note the time (queue.enqueue, store.begin/mark_sent/finish, retriever.search,
agent.answer, outbound.send), so every stage of every message is timed where it happens.
Replies go out through the real Twilio SDK to the strict fake Twilio API, and the LLM is
the fake OpenAI-compatible API answering in zero time (``bench.fake_llm``), each in its
own process.

What is left is our overhead: storing, queueing, retrieval (the e5 query embedding
included), the agent's own work around the model, bookkeeping and sending. Two
reference rows isolate the biggest costs: the same run with the query embeddings
cached (every question was seen in the warm-up), and the offline extractive answerer.

Phases per configuration: a warm-up (every question once), a burst of ``--messages``
accepted as fast as the ingress takes them (throughput = messages / time until the
last one was finished), then an open-loop run at ``--rate`` messages/s (latency per stage).

    python -m bench.pipeline [--messages 300] [--rate 20] [--seconds 10]

``BENCH_SQL_DUMP=1`` also prints the SQL statements of the profiled messages, per message, commonest first.
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import functools
import json
import os
import shutil
import tempfile
import time
from contextlib import AsyncExitStack, asynccontextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from bench.common import (
    ROOT,
    child_env,
    latency_summary,
    machine,
    pyplot,
    python_module_command,
    run_benchmark,
    save_plot,
    table,
)
from channels.messages import Channel, InboundMessage, new_id

NAME = "pipeline"
ACCOUNT_SID = "AC" + "9e1f" * 8
AUTH_TOKEN = "bench-pipeline-token-0123456789ab"
QUESTIONS_FILE = ROOT / "evalsets" / "sample_kb_answers.jsonl"
CONTACTS = 200

_current_message: ContextVar[str | None] = ContextVar("bench_current_message", default=None)


# ------------------------------------------------------------------ timing
@dataclass
class Trace:
    """When each stage of one message happened or how long it took (perf_counter seconds)."""

    accepted_at: float
    stored_at: float | None = None  # the store committed (the ingress called enqueue)
    started_at: float | None = None  # a worker began processing it
    retrieval: float = 0.0
    agent: float = 0.0  # the whole agent.answer, retrieval included
    send: float = 0.0
    replied_at: float | None = None  # the channel accepted the reply's last part: the customer has it
    finished_at: float | None = None  # recorded as answered/escalated, every part sent


class Traces:
    def __init__(self) -> None:
        self.by_id: dict[str, Trace] = {}
        self._finished = 0
        self._target = 0
        self._done = asyncio.Event()

    def start(self, message_id: str) -> None:
        self.by_id[message_id] = Trace(accepted_at=time.perf_counter())

    def current(self) -> Trace | None:
        message_id = _current_message.get()
        return self.by_id.get(message_id) if message_id else None

    def expect(self, total_finished: int) -> None:
        self._target = total_finished
        if self._finished >= total_finished:
            self._done.set()
        else:
            self._done.clear()

    def finished(self, message_id: str) -> None:
        trace = self.by_id.get(message_id)
        if trace is None or trace.finished_at is not None:
            return
        trace.finished_at = time.perf_counter()
        self._finished += 1
        if self._finished >= self._target:
            self._done.set()

    async def wait(self, timeout: float) -> None:
        await asyncio.wait_for(self._done.wait(), timeout)


def _wrap(obj: object, name: str, around) -> None:  # noqa: ANN001
    """Replace ``obj.name`` (on this instance only) by ``around(original)``; behaviour is unchanged."""
    original = getattr(obj, name)
    setattr(obj, name, functools.wraps(original)(around(original)))


def instrument(container, traces: Traces, *, memoize_queries: bool) -> None:  # noqa: ANN001
    """Time the stages on the built container's own objects (see the module docstring)."""

    def on_enqueue(original):  # noqa: ANN001, ANN202
        async def enqueue(message_id: str, *args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            trace = traces.by_id.get(message_id)
            if trace is not None and trace.stored_at is None:
                trace.stored_at = time.perf_counter()
            return await original(message_id, *args, **kwargs)
        return enqueue

    def on_enqueue_many(original):  # noqa: ANN001, ANN202
        async def enqueue_many(message_ids, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
            now = time.perf_counter()  # committed: the ingress enqueues only what is stored
            for message_id in message_ids:
                trace = traces.by_id.get(message_id)
                if trace is not None and trace.stored_at is None:
                    trace.stored_at = now
            return await original(message_ids, *args, **kwargs)
        return enqueue_many

    def on_begin(original):  # noqa: ANN001, ANN202
        async def begin(message_id: str, *args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            _current_message.set(message_id)  # the rest of this job's task is about this message
            trace = traces.by_id.get(message_id)
            if trace is not None and trace.started_at is None:
                trace.started_at = time.perf_counter()
            return await original(message_id, *args, **kwargs)
        return begin

    def on_sent(original):  # noqa: ANN001, ANN202
        async def mark_sent(part_id: str, *args, finish=None, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
            result = await original(part_id, *args, finish=finish, **kwargs)
            if finish is not None:  # the last part's send finished its message in the same statement
                traces.finished(finish[0])
            return result
        return mark_sent

    def on_finish(original):  # noqa: ANN001, ANN202
        async def finish(message_id: str, *args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            result = await original(message_id, *args, **kwargs)
            traces.finished(message_id)
            return result
        return finish

    def timed(field: str):  # noqa: ANN202
        def around(original):  # noqa: ANN001, ANN202
            async def call(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
                started = time.perf_counter()
                try:
                    return await original(*args, **kwargs)
                finally:
                    trace = traces.current()
                    if trace is not None:
                        setattr(trace, field, getattr(trace, field) + time.perf_counter() - started)
            return call
        return around

    def on_send(original):  # noqa: ANN001, ANN202
        async def send(message, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
            started = time.perf_counter()
            try:
                return await original(message, *args, **kwargs)
            finally:
                trace = traces.by_id.get(message.in_reply_to or "")
                if trace is not None:
                    trace.send += time.perf_counter() - started
                    if message.metadata.get("last_part") == "true":
                        trace.replied_at = time.perf_counter()
        return send

    def memoized(original):  # noqa: ANN001, ANN202
        vectors: dict[str, np.ndarray] = {}

        async def embed_query(text: str) -> np.ndarray:
            if text not in vectors:
                vectors[text] = await original(text)
            return vectors[text]
        return embed_query

    _wrap(container.queue, "enqueue", on_enqueue)
    _wrap(container.queue, "enqueue_many", on_enqueue_many)
    _wrap(container.store, "begin", on_begin)
    _wrap(container.store, "mark_sent", on_sent)
    _wrap(container.store, "finish", on_finish)
    _wrap(container.retriever, "search", timed("retrieval"))
    _wrap(container.agent, "answer", timed("agent"))
    _wrap(container.outbound, "send", on_send)
    if memoize_queries:
        _wrap(container.embedder, "embed_query", memoized)


# ------------------------------------------------------------------ configurations
@dataclass(frozen=True)
class Config:
    backend: str  # embedded | production
    answerer: str  # llm | extractive
    query_embedding: str  # e5 | cached

    @property
    def label(self) -> str:
        answerer = "zero-latency LLM" if self.answerer == "llm" else "extractive answerer"
        embedding = "e5 query embedding" if self.query_embedding == "e5" else "query vectors cached"
        return f"{self.backend}: {answerer}, {embedding}"


CONFIGS = [
    Config("production", "llm", "e5"),
    Config("production", "llm", "cached"),
    Config("production", "extractive", "e5"),
    Config("embedded", "llm", "e5"),
    Config("embedded", "llm", "cached"),
]


def load_question_texts() -> list[str]:
    texts = []
    for line in QUESTIONS_FILE.read_text(encoding="utf-8").splitlines():
        if line.strip():
            texts.append(json.loads(line)["question"])
    return list(dict.fromkeys(texts))


async def build_template_index(workdir: Path) -> Path:
    """Ingest the sample knowledge base once; each configuration starts from a copy of its index."""
    from config.settings import load_settings
    from supportlah.cli import sample_kb_path
    from supportlah.container import build

    settings = load_settings(_env_file=None, data_dir=workdir / "template")
    container = await build(settings, start_queue=False)
    try:
        report = await container.ingestor.ingest([sample_kb_path()])
        if report.failed:
            raise RuntimeError(f"sample KB ingestion failed: {report.failed}")
    finally:
        await container.close()
    return workdir / "template" / "index"


@asynccontextmanager
async def fake_server(module: str, *args: str):
    """A fake provider in its own process: yields its first JSON line; its last one is added on exit."""
    process = await asyncio.create_subprocess_exec(*python_module_command(module, *args),
                                                   stdout=asyncio.subprocess.PIPE, env=child_env())
    state: dict = {}
    try:
        state.update(json.loads(await asyncio.wait_for(process.stdout.readline(), 60)))
        yield state
    finally:
        process.terminate()
        out, _ = await asyncio.wait_for(process.communicate(), 30)
        lines = [json.loads(x) for x in out.decode().splitlines() if x.strip()]
        if lines:
            state["final"] = lines[-1]


async def run_config(config: Config, template_index: Path, questions: list[str], args: argparse.Namespace,
                     fakes: dict[str, str], workdir: Path, *, first: bool = False) -> dict:
    from bench.fake_llm import API_KEY as LLM_KEY
    from config.settings import load_settings
    from supportlah import migrate
    from supportlah.container import build
    from tests.services import fresh_postgres, fresh_redis_prefix

    data_dir = workdir / f"{config.backend}-{config.answerer}-{config.query_embedding}"
    shutil.copytree(template_index, data_dir / "index")
    async with AsyncExitStack() as stack:
        overrides: dict = {"data_dir": data_dir, "twilio_account_sid": ACCOUNT_SID, "twilio_auth_token": AUTH_TOKEN,
                           "twilio_whatsapp_from": "whatsapp:+6560000000", "twilio_api_base_url": fakes["twilio"],
                           "public_url": "http://127.0.0.1:9"}
        if config.answerer == "llm":
            overrides.update(llm_base_url=fakes["llm"], llm_api_key=LLM_KEY)
        if config.backend == "production":
            database_url = await stack.enter_async_context(fresh_postgres())
            redis_url, prefix = await stack.enter_async_context(fresh_redis_prefix())
            await migrate.upgrade(database_url)
            overrides.update(database_url=database_url, redis_url=redis_url, redis_prefix=prefix)
        settings = load_settings(_env_file=None, **overrides)
        container = await build(settings, start_queue=config.backend == "embedded")
        stack.push_async_callback(container.close)
        traces = Traces()
        instrument(container, traces, memoize_queries=config.query_embedding == "cached")
        if config.backend == "production":
            from supportlah.worker import make_worker

            worker = make_worker(settings, container=container, handle_signals=False)
            worker_task = asyncio.create_task(worker.main())

            async def stop_worker() -> None:
                worker_task.cancel()
                await asyncio.gather(worker_task, return_exceptions=True)
                await worker.close()

            stack.push_async_callback(stop_worker)

        counter = iter(range(10**9))

        def message(text: str) -> InboundMessage:
            n = next(counter)
            return InboundMessage(id=new_id(), channel=Channel.WHATSAPP, provider_message_id=f"SMbench{n:026d}",
                                  sender_id=f"whatsapp:+6591{n % CONTACTS:06d}", sender_name=f"Customer {n % CONTACTS}",
                                  text=text, metadata={"to": "whatsapp:+6560000000", "transport": "whatsapp"})

        async def accept(msg: InboundMessage) -> None:
            traces.start(msg.id)
            await container.ingress.accept(msg)

        expected = 0

        async def burst(texts: list[str]) -> tuple[list[str], float]:
            nonlocal expected
            expected += len(texts)
            traces.expect(expected)
            started = time.perf_counter()
            ids = []
            for text in texts:
                msg = message(text)
                ids.append(msg.id)
                await accept(msg)
            await traces.wait(args.timeout)
            return ids, started

        await burst(questions)  # warm-up: every question once (connections, caches, every contact's first turn)
        burst_ids, burst_started = await burst([questions[i % len(questions)] for i in range(args.messages)])
        burst_seconds = max(traces.by_id[i].finished_at for i in burst_ids) - burst_started

        # Open loop at a moderate rate — half of what the burst sustained, at most --rate — so the
        # latencies are those of a system with headroom, not of a growing queue.
        rate = min(args.rate, 0.5 * args.messages / burst_seconds)
        n_open = max(10, int(rate * args.seconds))
        expected += n_open
        traces.expect(expected)
        open_ids, tasks = [], []
        started = time.perf_counter()
        for i in range(n_open):
            delay = started + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            msg = message(questions[i % len(questions)])
            open_ids.append(msg.id)
            tasks.append(asyncio.create_task(accept(msg)))
        await asyncio.gather(*tasks)
        await traces.wait(args.timeout)
        answerers = await _answerers(container, open_ids)
        profile = await cpu_breakdown(container, message, questions, args.profile) if args.profile and first else None
        embedding = await query_embedding_cost(container, questions) if first else None

    opened = [traces.by_id[i] for i in open_ids]
    stages = {
        "store": [t.stored_at - t.accepted_at for t in opened],
        "queue": [t.started_at - t.stored_at for t in opened],
        "retrieval": [t.retrieval for t in opened],
        "answer": [t.agent - t.retrieval for t in opened],  # the agent's work besides retrieval (and the model)
        "send": [t.send for t in opened],
        # what is left: loading the message and history, hooks, memory, recording the reply and part states, locks
        "bookkeeping": [(t.finished_at - t.started_at) - t.agent - t.send for t in opened],
        "end_to_end": [t.finished_at - t.accepted_at for t in opened],
        "to_reply": [t.replied_at - t.accepted_at for t in opened if t.replied_at is not None],
    }
    label = config.label
    if config.answerer == "llm" and not any(name.startswith("llm") for name in answerers):
        label += " (no LLM wired in the container: answered by " + ", ".join(answerers) + ")"
    return {
        "label": label,
        "config": asdict(config),
        "answerer_reported": answerers,
        "burst_messages": args.messages,
        "burst_seconds": round(burst_seconds, 2),
        "messages_per_second": round(args.messages / burst_seconds, 1),
        "open_loop_rate": round(rate, 2),
        "open_loop_messages": n_open,
        "stages": {name: latency_summary(values) for name, values in stages.items()},
        **({"cpu_per_message": profile} if profile else {}),
        **({"query_embedding_cost": embedding} if embedding else {}),
    }


# Where a function's own (self) time is counted: first matching rule wins.
_CPU_GROUPS = (
    ("epoll", "waiting: network, database, the embedding thread"),
    ("langdetect", "language detection (langdetect)"),
    ("sqlalchemy", "SQL: SQLAlchemy + asyncpg"), ("asyncpg", "SQL: SQLAlchemy + asyncpg"),
    ("greenlet", "SQL: SQLAlchemy + asyncpg"),
    ("openai", "LLM client: openai SDK, httpx, pydantic"), ("httpx", "LLM client: openai SDK, httpx, pydantic"),
    ("httpcore", "LLM client: openai SDK, httpx, pydantic"), ("pydantic", "LLM client: openai SDK, httpx, pydantic"),
    ("anyio", "LLM client: openai SDK, httpx, pydantic"),
    ("twilio", "Twilio SDK + aiohttp"), ("aiohttp", "Twilio SDK + aiohttp"),
    ("redis", "Redis + arq"), ("arq", "Redis + arq"),
    ("CoreBPE", "token counting (tiktoken)"), ("tiktoken", "token counting (tiktoken)"),
    ("logging", "logging"), ("supportlah/logs.py", "logging"), ("json", "JSON"),
    ("asyncio", "asyncio event loop"), ("selectors", "asyncio event loop"), ("socket", "asyncio event loop"),
    (str(ROOT), "supportlah's own Python code"),
)


async def cpu_breakdown(container, message, questions: list[str], n: int) -> dict:  # noqa: ANN001
    """Process ``n`` messages one at a time in this process under cProfile; return milliseconds per
    message by where the time went (self time, so nothing is counted twice). cProfile slows down
    Python-heavy code more than C, so the shares matter more than the absolute figures."""
    import cProfile
    import pstats

    ids = [(await container.store.record_inbound(message(questions[i % len(questions)]))).message_id
           for i in range(n)]  # stored, not enqueued: the worker never sees them
    statements: list[str] = []
    from sqlalchemy import event

    def count(_conn, _cursor, statement, *_):  # noqa: ANN001, ANN002, ANN202
        statements.append(statement)

    event.listen(container.engine.sync_engine, "before_cursor_execute", count)
    profiler = cProfile.Profile()
    started, cpu = time.perf_counter(), time.thread_time()
    profiler.enable()
    for message_id in ids:
        await container.processor.process(message_id)
    profiler.disable()
    wall, cpu = time.perf_counter() - started, time.thread_time() - cpu
    event.remove(container.engine.sync_engine, "before_cursor_execute", count)
    if os.environ.get("BENCH_SQL_DUMP"):  # list the statements themselves, commonest first
        for text, k in collections.Counter(" ".join(x.split())[:110] for x in statements).most_common():
            print(f"{k / n:5.1f}  {text}")
    groups: dict[str, float] = {}
    other: list[tuple[float, str]] = []
    for (filename, _line, function), (_cc, _nc, self_time, _ct, _callers) in pstats.Stats(profiler).stats.items():
        where = f"{filename}:{function}"
        group = next((name for key, name in _CPU_GROUPS if key in where), "other")
        groups[group] = groups.get(group, 0.0) + self_time
        if group == "other":
            other.append((self_time, where.replace(str(ROOT), "").split("site-packages/")[-1]))
    ordered = dict(sorted(((g, round(t / n * 1000, 1)) for g, t in groups.items()), key=lambda kv: -kv[1]))
    return {"messages": n, "wall_ms": round(wall / n * 1000, 1), "main_thread_cpu_ms": round(cpu / n * 1000, 1),
            "sql_statements_per_message": round(len(statements) / n, 1),
            "by_group_ms": ordered,
            "largest_other_ms": {where: round(t / n * 1000, 2) for t, where in sorted(other, reverse=True)[:8]}}


async def query_embedding_cost(container, questions: list[str]) -> dict:  # noqa: ANN001
    """CPU per e5 query embedding (all threads of this process), one question at a time as the
    workers embed them: every message pays it once, so it bounds messages/s on this machine."""
    texts = [f"{q} ({i})" for i, q in enumerate(questions)]  # never seen before: no cache anywhere helps
    started, cpu = time.perf_counter(), time.process_time()
    for text in texts:
        await container.embedder.embed_query(text)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    cores = os.cpu_count() or 1
    per_query = cpu / len(texts) * 1000
    return {"queries": len(texts), "wall_ms": round(wall / len(texts) * 1000, 2), "cpu_ms": round(per_query, 2),
            "cores": cores, "ceiling_messages_per_second": round(cores * 1000 / per_query, 1)}


async def _answerers(container, message_ids: list[str]) -> dict[str, int]:  # noqa: ANN001
    """Which answerer each reply says produced it (so a row is never mislabelled)."""
    counts: dict[str, int] = {}
    for message_id in message_ids:
        reply = await container.store.get_reply(message_id)
        name = (reply.backend or {}).get("answerer", "none") if reply is not None else "no reply"
        counts[name] = counts.get(name, 0) + 1
    return counts


async def run(args: argparse.Namespace) -> dict:
    from config.settings import load_settings

    info = machine()
    defaults = load_settings(_env_file=None)  # what the workers ran with
    jobs = defaults.max_jobs
    questions = load_question_texts()
    results = []
    selected = [c for c in CONFIGS if not args.only or args.only in c.label]
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        workdir = Path(tmp)
        template = await build_template_index(workdir)
        async with fake_server("bench.fake_twilio", "--account-sid", ACCOUNT_SID, "--auth-token", AUTH_TOKEN) as twilio, \
                fake_server("bench.fake_llm") as llm:
            fakes = {"twilio": twilio["base_url"], "llm": llm["base_url"]}
            for i, config in enumerate(selected):
                results.append(await run_config(config, template, questions, args, fakes, workdir, first=i == 0))
                print(f"  {config.label}: {results[-1]['messages_per_second']} msg/s", flush=True)
    for name, fake in (("Twilio", twilio), ("LLM", llm)):
        if fake.get("final", {}).get("errors"):
            raise RuntimeError(f"the fake {name} API refused calls: {fake['final']['errors']}")
    return {
        "name": NAME,
        "machine": info,
        "setup": {"burst_messages": args.messages, "open_loop_rate_cap": args.rate, "open_loop_seconds": args.seconds,
                  "contacts": CONTACTS, "questions": len(questions),
                  "worker_poll_seconds": defaults.worker_poll_seconds,
                  "channel": "WhatsApp: twilio SDK -> fake Twilio API (own process)",
                  "llm": "a fake OpenAI-compatible API answering at once, streamed (own process)",
                  "workers": f"production: an arq worker (max_jobs {jobs}) in the benchmark process, Postgres + Redis; "
                             f"embedded: the in-process queue ({jobs} workers) on SQLite"},
        "targets": {"messages_per_second": 45, "overhead_p50_ms": 40, "sql_statements_per_message": 8,
                    "share_of_floor": 0.8},
        "floor": _floor(results),
        "fake_requests": {"twilio_messages": twilio.get("final", {}).get("messages"),
                          "llm_requests": llm.get("final", {}).get("requests")},
        "results": results,
    }


# What a message needs besides its e5 query embedding, as CPU: the search (about 5 ms) and the durable
# writes the exactly-once rules need (a handful of statements, about 7 ms).
FLOOR_BESIDES_EMBEDDING_MS = 12.0


def _floor(results: list[dict]) -> dict | None:
    """The most messages/s this machine could do: its cores over the e5 query's CPU (measured in this
    run) plus :data:`FLOOR_BESIDES_EMBEDDING_MS`; and the headline row's share of it."""
    embedding = next((r["query_embedding_cost"] for r in results if "query_embedding_cost" in r), None)
    if embedding is None:
        return None
    per_message = embedding["cpu_ms"] + FLOOR_BESIDES_EMBEDDING_MS
    floor = embedding["cores"] * 1000 / per_message
    return {"cpu_ms_per_message": round(per_message, 1), "messages_per_second": round(floor, 1),
            "share": round(results[0]["messages_per_second"] / floor, 2)}


STAGES = ("store", "queue", "retrieval", "answer", "send", "bookkeeping")


def report(data: dict) -> str:
    rows = []
    for r in data["results"]:
        s = r["stages"]
        rows.append([r["label"], r["messages_per_second"], r["open_loop_rate"], *(s[k]["p50_ms"] for k in STAGES),
                     s["to_reply"]["p50_ms"], s["end_to_end"]["p50_ms"], s["end_to_end"]["p99_ms"]])
    header = ["configuration", "msg/s", "latency at msg/s", *(f"{k} p50" for k in STAGES), "reply p50", "e2e p50",
              "e2e p99"]
    return table(header, rows) + "\n(latencies in ms, open loop at half the burst throughput)"


def plot(data: dict) -> Path:
    plt = pyplot()
    labels = [r["label"].replace(": ", ":\n", 1) for r in data["results"]]
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.8))
    left.barh(labels, [r["messages_per_second"] for r in data["results"]], color="#2a7")
    left.axvline(data["targets"]["messages_per_second"], color="red", linestyle="--", linewidth=1, label="target")
    left.set_xlabel("messages/s (burst)")
    left.invert_yaxis()
    left.legend()
    base = np.zeros(len(labels))
    for stage in STAGES:
        values = np.array([r["stages"][stage]["p50_ms"] or 0.0 for r in data["results"]])
        right.barh(labels, values, left=base, label=stage)
        base += values
    right.axvline(data["targets"]["overhead_p50_ms"], color="red", linestyle="--", linewidth=1)
    right.set_xlabel("p50 ms per stage, open loop at half the burst throughput")
    right.set_yticks(range(len(labels)), [""] * len(labels))
    right.invert_yaxis()
    right.legend(fontsize=8)
    return save_plot(fig, NAME)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="messages/s and per-stage latency through the real workers")
    p.add_argument("--messages", type=int, default=300, help="burst size for the throughput phase")
    p.add_argument("--rate", type=float, default=20.0,
                   help="most messages/s for the latency phase (it runs at half the burst throughput)")
    p.add_argument("--seconds", type=float, default=10.0, help="length of the latency phase")
    p.add_argument("--timeout", type=float, default=180.0, help="give up waiting for replies after this long")
    p.add_argument("--only", help="run only configurations whose label contains this text")
    p.add_argument("--profile", type=int, default=30,
                   help="messages processed one by one under cProfile for the first configuration (0: none)")
    return p


def main(argv: list[str] | None = None) -> dict:
    return run_benchmark(NAME, parser, run, plot, report, argv)


if __name__ == "__main__":
    main()
