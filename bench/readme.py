"""Render ``bench/README-section.md`` (the README's "Performance" and "Quality" sections)
from the result files, so every number in the prose is the number in ``bench/results``.

    python -m bench.readme
"""
from __future__ import annotations

from pathlib import Path

from bench.common import ROOT, read_result, table

OUTPUT = ROOT / "bench" / "README-section.md"


def _verdict(ok: bool | None) -> str:
    return "–" if ok is None else ("✅ met" if ok else "❌ not met")


def _machine_line(info: dict) -> str:
    load = ", ".join(f"{x:g}" for x in info.get("load_average_at_start", []))
    return (f"{info['cpu']}, {info['cores']} cores, {info['memory_gb']} GB RAM, {info['os']}, Python {info['python']}; "
            f"commit `{info.get('commit') or '?'}`, {info['taken_at']}; load average when it started: {load}")


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def ingress_section(data: dict) -> list[str]:
    setup, results = data["setup"], data["results"]
    rows = [[name, f"{r['max_requests_per_second']:.0f}", f"{r['share_of_bare']:.2f}", _ms(r["saturation_p50_ms"]),
             _ms(r["saturation_p99_ms"]), _ms(r["moderate_p50_ms"]), _ms(r["moderate_p99_ms"])]
            for name, r in results.items()]
    webhooks = [r for name, r in results.items() if name != "bare aiohttp handler"]
    share_ok = all(r["share_of_bare"] >= data["targets"]["share_of_bare"] for r in webhooks)
    p99_ok = all(r["moderate_p99_ms"] is not None and r["moderate_p99_ms"] < data["targets"]["moderate_p99_ms"]
                 for r in webhooks)
    work = data["work_done"]
    lines = [
        "### Webhook ingress",
        "",
        f"`supportlah serve` ({setup['backend']}) receiving correctly signed Twilio WhatsApp "
        "webhooks and secret-checked Telegram updates — each verified, committed to Postgres and enqueued to "
        "Redis before the 200 — against a bare aiohttp handler fed the same bodies in the same run. Load: "
        f"{setup['load_generator']}; saturation = {setup['concurrency']} concurrent clients for "
        f"{setup['seconds']:g} s, moderate = {setup['moderate_rate']:g} requests/s open loop (latency from the "
        "scheduled send time).",
        "",
        table(["endpoint", "max req/s", "× bare", f"p50 ms @{setup['concurrency']}", f"p99 ms @{setup['concurrency']}",
               f"p50 ms @{setup['moderate_rate']:g}/s", f"p99 ms @{setup['moderate_rate']:g}/s"], rows),
        "",
        f"Targets: ≥ {data['targets']['share_of_bare']:.0%} of the bare handler's throughput — {_verdict(share_ok)}; "
        f"p99 < {data['targets']['moderate_p99_ms']:g} ms at moderate load — {_verdict(p99_ok)}. "
        "Every 200 was real work: " + ", ".join(f"{n:,} {channel} messages" for channel, n in
                                                 sorted(work["stored_by_channel"].items()))
        + f" stored and {work['queued_jobs']:,} jobs queued (warm-up requests included).",
        "",
    ]
    cost = data.get("accept_cost")
    if cost and "one_at_a_time" in cost:
        single, grouped = cost["one_at_a_time"], next(v for k, v in cost.items() if k.endswith("_concurrent"))
        lines += [
            "What it costs: concurrent deliveries are group-committed — one transaction and one enqueue round trip "
            "for every message that arrived while the previous batch was being written — so the store-before-"
            f"acknowledge costs {grouped['cpu_ms']:.2f} ms of CPU and {grouped['sql_statements_per_message']:g} SQL "
            f"statements per message under load, against {single['cpu_ms']:.2f} ms and "
            f"{single['sql_statements_per_message']:g} one message at a time (timed in the same run). What remains "
            "per request is aiohttp, form parsing, the signature check and logging, about ten times the bare "
            "handler's work; with the load generator on one of the two cores, that is the ceiling.",
            "",
        ]
    return lines + ["![ingress](bench/results/ingress.png)", ""]


STAGES = ("store", "queue", "retrieval", "answer", "send", "bookkeeping")


def pipeline_section(data: dict) -> list[str]:
    rows = []
    for r in data["results"]:
        s = r["stages"]
        answerers = ", ".join(f"{k} ×{v}" for k, v in r["answerer_reported"].items())
        rows.append([r["label"], f"{r['messages_per_second']:.1f}", f"{r['open_loop_rate']:g}",
                     *(_ms(s[k]["p50_ms"]) for k in STAGES), _ms(s.get("to_reply", {}).get("p50_ms")),
                     _ms(s["end_to_end"]["p50_ms"]), _ms(s["end_to_end"]["p99_ms"]), answerers])
    headline = data["results"][0] if data["results"] else None
    target = data["targets"]
    lines = [
        "### Message pipeline",
        "",
        "Messages through the real container and workers — store, queue, retrieval, agent, bookkeeping, send — "
        f"with {data['setup']['llm']}; replies go to {data['setup']['channel']}. Workers: "
        f"{data['setup']['workers']}. Throughput: a burst of {data['setup']['burst_messages']} messages from "
        f"{data['setup']['contacts']} customers, until the last was finished. Latency: open loop at half the "
        "burst throughput (so with headroom, not a growing queue); p50 per stage in ms. \"retrieval\" is what the "
        "search still waits for: the query's embedding starts when the worker picks the message up and runs "
        "while the bookkeeping before the agent does (`rag/prefetch.py`). \"answer\" is the agent's work besides "
        "retrieval, the model call included; \"bookkeeping\" is loading the message and history, hooks, memory, "
        "recording the reply and part states. \"reply\" is when the channel accepted the reply's last part (the "
        "customer has it); \"end-to-end\" is when every record of the message is committed.",
        "",
        table(["configuration", "msg/s", "latency at msg/s", *(f"{k} p50" for k in STAGES), "reply p50",
               "end-to-end p50", "end-to-end p99",
               "answered by"], rows),
        "",
    ]
    if data["setup"].get("shared_cpu"):
        lines += [f"Note: {data['setup']['shared_cpu']}.", ""]
    before = data.get("before")
    if before:
        lines += [f"Before the straight message path ({before['note']}, load average "
                  f"{', '.join(f'{x:g}' for x in before['load_average_at_start'])}): "
                  f"{before['messages_per_second']:g} messages/s, {_ms(before['end_to_end_p50_ms'])} ms end-to-end p50, "
                  f"{before['sql_statements_per_message']:g} SQL statements and {before['sql_cpu_ms']:g} ms of "
                  f"SQLAlchemy + asyncpg CPU ({before['main_thread_cpu_ms']:g} ms on the event loop) per message "
                  f"for \"{before['label']}\".", ""]
    if headline is not None:
        e2e = headline["stages"]["end_to_end"]["p50_ms"]
        reply = headline["stages"].get("to_reply", {}).get("p50_ms")
        lines += [
            f"Targets: ≥ {target['messages_per_second']} messages/s — "
            f"{_verdict(headline['messages_per_second'] >= target['messages_per_second'])} "
            f"({headline['messages_per_second']:.1f} for \"{headline['label']}\"); < {target['overhead_p50_ms']} ms p50 "
            f"overhead excluding the LLM (end-to-end with a zero-latency model) — "
            f"{_verdict(e2e is not None and e2e < target['overhead_p50_ms'])} ({_ms(e2e)} ms end-to-end; the reply "
            f"reached the channel after {_ms(reply)} ms).",
            "",
        ]
    queue_p50: dict[str, float] = {}
    for r in data["results"]:  # each backend's first (headline) row
        queue_p50.setdefault(r["config"]["backend"], r["stages"]["queue"]["p50_ms"])
    if "production" in queue_p50 and "embedded" in queue_p50:
        poll = data["setup"].get("worker_poll_seconds", 0.1)
        lines += [f"The queue stage is mostly arq polling Redis every {poll * 1000:g} ms (`SUPPORTLAH_WORKER_POLL_SECONDS`): "
                  f"{_ms(queue_p50['production'])} ms p50 in production against {_ms(queue_p50['embedded'])} ms for the "
                  "in-process queue.", ""]
    elif "production" in queue_p50:
        poll = data["setup"].get("worker_poll_seconds", 0.1)
        lines += [f"The queue stage ({_ms(queue_p50['production'])} ms p50) is mostly arq polling Redis every "
                  f"{poll * 1000:g} ms (`SUPPORTLAH_WORKER_POLL_SECONDS`). arq's public API has no way to wake a "
                  "waiting worker when a job is enqueued (its maintainers prefer polling, python-arq/arq#210), and "
                  "we do not subclass its worker; the trade-off is the setting: each idle worker costs Redis one "
                  "`ZRANGEBYSCORE` per poll (50 a second at 20 ms), and a job waits half a poll on average.", ""]
    profile = headline.get("cpu_per_message") if headline is not None else None
    if profile:
        rows = [[group, f"{ms:.1f}"] for group, ms in profile["by_group_ms"].items()]
        lines += [
            f"What limits it: one process handles one message in {profile['wall_ms']:.0f} ms, "
            f"{profile['main_thread_cpu_ms']:.0f} ms of it on the event loop's own CPU ({profile['messages']} messages "
            f"of \"{headline['label']}\" processed one at a time under cProfile, which inflates Python-heavy code; "
            "self time per message, so nothing is counted twice):",
            "",
            table(["where the time goes", "ms per message"], rows),
            "",
        ]
        if "sql_statements_per_message" in profile:
            statements = profile["sql_statements_per_message"]
            wanted = target.get("sql_statements_per_message")
            verdict = (f" (target ≤ {wanted:g} — {_verdict(statements <= wanted)})" if wanted is not None else "")
            before = data.get("before")
            was = (f", {before['sql_statements_per_message']:g} before the straight message path "
                   f"({before['note']})" if before else "")
            lines += [f"Bookkeeping is {statements:g} SQL statements per message{verdict}{was}. The processor's "
                      "own share is six: the conversation's unfinished messages (read once, before the lock), the "
                      "attempt with the message, its conversation and any recorded reply (one UPDATE … RETURNING "
                      "in a CTE), the decision with its parts and the conversation's language (one statement), "
                      "each part's `sending`, its `sent` with the early delivery reports and — for the last part "
                      "— the message's final status (one statement), and the check for new messages after the "
                      "lock is let go. A crash between any two of them resumes without sending anything twice. "
                      "The rest belongs to the hooks and memory (consent, data requests, tickets, the console "
                      "desk, summary, profile, facts, usage, the WhatsApp window): the next place to cut.", ""]
    embedding = headline.get("query_embedding_cost") if headline is not None else None
    floor = data.get("floor")
    if embedding and floor:
        wanted = target.get("share_of_floor", 0.8)
        lines += [
            f"The floor for this machine: the e5 query embedding ({embedding['cpu_ms']:.1f} ms of CPU, measured in "
            f"the same run) plus retrieval and the durable writes the exactly-once rules need (about 12 ms) is "
            f"{floor['cpu_ms_per_message']:.0f} ms of CPU per message, so {embedding['cores']} cores could answer "
            f"at most {floor['messages_per_second']:.0f} messages/s. The headline row reaches {floor['share']:.2f}× "
            f"that (target ≥ {wanted:g}× — {_verdict(floor['share'] >= wanted)}).",
            "",
        ]
    elif embedding:
        lines += [
            f"A hard ceiling: embedding one query with e5 costs {embedding['cpu_ms']:.1f} ms of CPU here (measured "
            f"in the same run, {embedding['queries']} unseen questions), and every message needs one, so "
            f"{embedding['cores']} cores can embed at most {embedding['ceiling_messages_per_second']:.0f} messages/s "
            "before doing anything else; 200 messages/s leaves 10 ms of CPU per message for everything. The "
            "target is out of reach on this machine with the multilingual dense model.",
            "",
        ]
    cached = next((r for r in data["results"] if headline is not None and r is not headline
                   and r["config"]["backend"] == headline["config"]["backend"]
                   and r["config"]["answerer"] == headline["config"]["answerer"]
                   and r["config"]["query_embedding"] == "cached"), None)
    if cached is not None:
        lines += [
            f"Well below that ceiling, the event loop is the limit: with every query vector cached the same worker "
            f"manages {cached['messages_per_second']:.1f} messages/s against {headline['messages_per_second']:.1f} "
            "with e5. The embedding runs in its own thread, overlapped with the database work, so most of the "
            "cost of a message is on the single Python event loop, SQLAlchemy above all.",
            "",
        ]
    lines += ["Scale-out (the same burst with 1, 2 and 4 worker processes on Postgres + Redis) is not measured "
              "yet. The workers share nothing but Postgres and Redis (conversation locks and send guards live "
              "there), so they scale out as processes; the embedded Qdrant index belongs to one process, so more "
              "than one worker process needs the Qdrant server (`SUPPORTLAH_QDRANT_URL`, `rag/qdrant_server.py`).",
              ""]
    lines += ["![pipeline](bench/results/pipeline.png)", ""]
    return lines


def scale_section(data: dict) -> list[str]:
    rows = []
    for engine, sizes in data["results"].items():
        for size, r in sizes.items():
            if "skipped" in r:
                rows.append([engine, f"{int(size):,}", "–", "–", "–", "–"])
            else:
                rows.append([engine, f"{int(size):,}", f"{r['build_seconds']:g}", str(r["queries_run"]),
                             _ms(r["p50_ms"]), _ms(r["p99_ms"])])
    edge_100k = data["results"].get("edge", {}).get("100000", {})
    ok = edge_100k.get("p50_ms") is not None and edge_100k["p50_ms"] < data["targets"]["p50_ms_at_100k"]
    parts = edge_100k.get("parts_p50_ms")
    breakdown = (f" At 100k the embedded engine's calls, one by one (p50): dense top 50 {_ms(parts['dense_top50'])} ms, "
                 f"sparse top 50 {_ms(parts['sparse_top50'])} ms (its hits carry their stored term ids), and the "
                 f"query-overlap weight of the sparse arm computed from them {_ms(parts['overlap_weight'])} ms; the other "
                 f"≈ {edge_100k['p50_ms'] - sum(parts.values()):.1f} ms is the retriever's own Python (query "
                 "tokenizer, building and fusing 100 hits, the blend) and the hops to the index's thread."
                 if parts else "")
    return [
        "### Retrieval at scale",
        "",
        f"One hybrid query ({data['setup']['query']}) over synthetic chunks: random unit vectors and BM25 vectors of "
        f"Zipf-distributed made-up words ({data['setup']['words_per_chunk']} words a chunk). Embedded engine "
        "(`rag.edge_index.EdgeIndex`, optimized after loading as ingestion does) vs qdrant-client local mode with "
        "the same schema (a pure-Python engine that scans every point; its queries stop after "
        f"{data['setup']['time_budget_seconds']:g} s).",
        "",
        table(["engine", "chunks", "load + optimize s", "queries", "p50 ms", "p99 ms"], rows),
        "",
        f"Target: < {data['targets']['p50_ms_at_100k']:g} ms p50 at 100k chunks (embedded engine) — {_verdict(ok)}."
        + breakdown,
        "",
        "![retrieval scale](bench/results/retrieval_scale.png)",
        "",
    ]


def ingestion_section(data: dict) -> list[str]:
    rows = [[fmt, r["pages"], r["chunks"], f"{r['pages_per_second']:.2f}", f"{r['chunks_per_second']:.2f}",
             f"{r['raw_embed_chunks_per_second']:.2f}", f"{r['parse_chunk_seconds']:.3f}",
             f"{r['overhead_vs_embedding'] * 100:+.1f} %"] for fmt, r in data["formats"].items()]
    targets, re_, mem = data["targets"], data["reingest"], data["memory"]
    overhead_ok = all(r["overhead_vs_embedding"] < targets["overhead_vs_embedding"] for r in data["formats"].values())
    return [
        "### Ingestion and memory",
        "",
        f"Synthetic support manuals ({data['setup']['files_per_format']} files × {data['setup']['pages_per_file']} "
        f"pages per format; a DOCX/Markdown page is the text of a PDF page, ~{data['setup']['page_chars']:,} "
        "characters) through the real `Ingestor`, then the same chunks embedded again on their own in the same "
        f"run ({data['setup']['embedder']}).",
        "",
        table(["format", "pages", "chunks", "pages/s", "chunks/s", "embedding alone, chunks/s", "parse + chunk s",
               "overhead vs embedding"], rows),
        "",
        f"- Overhead — the ingestion's time outside the embedder (parsing, chunking, BM25, indexing, the catalog) "
        f"— < {targets['overhead_vs_embedding']:.0%} of the time embedding the same chunks alone takes — "
        f"{_verdict(overhead_ok)}.",
        f"- Re-ingesting the {re_['files']} unchanged files: {re_['unchanged_run_seconds']:.3f} s = "
        f"{re_['share_of_first_run']:.2%} of the first run's {re_['first_run_seconds']:.1f} s (target < "
        f"{targets['reingest_share']:.0%}) — {_verdict(re_['share_of_first_run'] < targets['reingest_share'])}.",
        f"- Peak RSS of `supportlah serve` with the sample knowledge base, after answering "
        f"{mem['questions_answered']}/{mem['questions_asked']} web-chat questions: {mem['serve_peak_rss_mb']:.0f} MB "
        f"(target < {targets['serve_peak_rss_mb']} MB) — "
        f"{_verdict(mem['serve_peak_rss_mb'] < targets['serve_peak_rss_mb'])}; `supportlah ingest` of it: "
        f"{mem['ingest_peak_rss_mb']:.0f} MB.",
        "",
        "![ingestion](bench/results/ingestion.png)",
        "",
    ]


def retrieval_quality_section(data: dict) -> list[str]:
    rows, commands = [], []
    for name, entry in data["sets"].items():
        if "skipped" in entry:
            rows.append([name, "–", "–", "–", "–", "–", entry["skipped"]])
            continue
        commands.append(entry["command"])
        for method, s in entry["report"]["methods"].items():
            rows.append([name, entry["report"]["n_queries"], method, f"{s['ndcg@10']:.4f}", f"{s['recall@5']:.4f}",
                         f"{s['mrr@10']:.4f}", ""])
    lines = [
        "### Retrieval",
        "",
        "nDCG@10, Recall@5 and MRR@10 of BM25 only, dense (multilingual-e5-small) only and hybrid (weighted RRF, "
        "then the local blend — what the product runs; `hybrid+rerank` appears when a Cohere key is set). XQuAD "
        "(CC BY-SA 4.0: 240 Wikipedia paragraphs, 1,190 questions; zh→en asks Chinese questions of the English "
        "paragraphs) and the sample knowledge base's labelled questions (answerable ones; a hit is any expected "
        "document).",
        "",
        table(["set", "queries", "method", "nDCG@10", "Recall@5", "MRR@10", "note"], rows),
        "",
    ]
    checks = []
    for name, entry in data["sets"].items():
        if "check" in entry:
            c = entry["check"]
            checks.append(f"{name} {c['hybrid_ndcg@10']:.4f} vs {c['best_arm_ndcg@10']:.4f} "
                          f"{'✅' if c['ok'] else '❌'}")
    lines.append(f"Hybrid ≥ max(BM25, dense) − {data['hybrid_slack']} nDCG@10 on every set: " + "; ".join(checks) + ".")
    kb_rows = []
    for name, entry in data["sets"].items():
        report = entry.get("report")
        if not report or "by_lang" not in report:
            continue
        for lang, block in report["by_lang"].items():
            m = block["methods"]
            kb_rows.append([name, lang, block["n_queries"],
                            *(f"{m[method]['ndcg@10']:.3f} / {m[method]['recall@5']:.3f}" for method in report["methods"])])
    if kb_rows:
        floors = [(n, e["check"]) for n, e in data["sets"].items() if "recall_ok" in e.get("check", {})]
        floor = floors[0][1]["recall_floor"] if floors else "–"
        missed = [f"{n} {lang} {r:.3f}" for n, c in floors for lang, r in c["recall@5_by_lang"].items()
                  if r < c["recall_floor"]]
        lines += [
            "",
            "Each knowledge base per language of the question (nDCG@10 / Recall@5, document level):",
            "",
            table(["knowledge base", "language", "queries", "bm25", "dense", "hybrid"], kb_rows),
            "",
            f"Recall@5 ≥ {floor} in every language of every knowledge base — {_verdict(not missed)}"
            + (f" (below: {', '.join(missed)})." if missed else "."),
        ]
    lines += ["", "![retrieval quality](bench/results/retrieval_quality.png)", "", "Reproduce:", "", "```"]
    lines += [c for c in commands] + ["```", ""]
    return lines


ANSWER_COLUMNS = ("answered_correctly", "answered_wrong", "false_escalation", "handled", "citations_any_expected")
ANSWER_HEADERS = ("correct", "wrong", "false hand-off", "handled (negatives)", "cites an expected doc")


def confidence_lines() -> list[str]:
    """How the shipped confidence model did on each business it was not fitted on (its model.json)."""
    import json

    model = json.loads((ROOT / "agent" / "calibration" / "model.json").read_text(encoding="utf-8"))
    held_out = model.get("metadata", {}).get("leave_one_business_out")
    if not held_out:
        return []
    thresholds = [t for t in ("0.60", "0.70", "0.80", "0.90") if t in held_out]
    sent = {t: sum(p["negatives_sent"] for p in held_out[t].values()) for t in thresholds}
    sent = ", ".join(f"{n} at {t}" for t, n in sent.items() if n)
    rows = [[business, *(f"{held_out[t][business]['correct']:.2f} / {held_out[t][business]['wrong']:.2f}"
                         for t in thresholds)] for business in model["metadata"]["fitted_on"]]
    return [
        "The confidence model (`agent/calibration/model.json`) is fitted by `supportlah calibrate` on "
        f"{', '.join(model['metadata']['fitted_on'])}. Each business below is scored by a model fitted on the "
        "*others* only — what an owner with new documents meets — as the share of its answerable questions "
        "answered correctly / wrongly at each threshold (the default is 0.7"
        + ("; no question the documents do not answer was answered at any of these):" if not sent
           else f"; questions the documents do not answer that were answered: {sent}):"),
        "",
        table(["held-out business", *(f"threshold {t}" for t in thresholds)], rows),
        "",
        "Reproduce: `supportlah calibrate evalsets/sample-kb $EVALSETS/physio-clinic evalsets/bakery "
        "--out agent/calibration/model.json`",
        "",
    ]


def answers_section(data: dict) -> list[str]:
    def fmt(value: float | None) -> str:
        return "–" if value is None else f"{value:.2f}"

    lines = [
        "### Answers",
        "",
        "Every labelled question of each knowledge base asked through the real pipeline as a new customer (a "
        "follow-up after its earlier turns, each its own message), offline: no LLM, no network. An answerable "
        "question is **correct** when the reply is not a hand-off, contains every expected value (`$35`, `S$ 35`, "
        "`35新元` alike; numbers on number boundaries) and cites an expected document; **wrong** when it is "
        "answered otherwise; a **false hand-off** when it is handed to staff. The other questions are **handled** "
        "when the reply does what they ask: unanswerable questions and requests for a person handed off, "
        "injections refused (handed off or nothing quoted), small talk answered kindly with nothing cited.",
        "",
        "Each business is reported on its own. `sample-kb` is the demo's aircon company; `bakery` and "
        "`tuition-centre` were written for this by someone who did not see the agent's code, before anything was "
        "tuned on them (`tuition-centre` is held out: nothing is tuned on it); `physio-clinic` is the shared "
        "development set, read in place.",
        "",
    ]
    overall = [[name, e["report"]["overall"]["n"], *(fmt(e["report"]["overall"][c]) for c in ANSWER_COLUMNS)]
               for name, e in data["sets"].items()]
    lines += [table(["knowledge base", "questions", *ANSWER_HEADERS], overall), ""]
    for name, entry in data["sets"].items():
        report = entry["report"]
        rows = [[k, v["n"], *(fmt(v[c]) for c in ANSWER_COLUMNS)] for k, v in report["by_lang"].items()]
        rows += [[k, v["n"], *(fmt(v[c]) for c in ANSWER_COLUMNS)] for k, v in report["by_kind"].items()]
        lines += [f"<details><summary>{name}: by language and kind of question</summary>", "",
                  table(["group", "questions", *ANSWER_HEADERS], rows), "", "</details>", ""]
    lines += confidence_lines()
    lines += ["![answers](bench/results/answers_quality.png)", "", "Reproduce:", "", "```"]
    lines += [e["command"] for e in data["sets"].values()] + ["```", ""]
    return lines


def voice_section(data: dict) -> list[str]:
    rows = [[r["language"], r["audio_seconds"], f"{r['real_time_factor']:.2f}",
             f"{r['cpu_seconds_per_audio_second']:.2f}", f"{r['peak_rss_mb']:.0f}",
             r["first_call_seconds"], r["char_error_rate"], r["detected_language"] or "not understood", r["heard"]]
            for r in data["per_language"]]
    p = data["pipeline"]
    known, detected = p["voice_language_known"], p["voice_language_detected"]
    return [
        "### Voice notes (speech to text)",
        "",
        f"{data['model']} from the `voice` extra, on clips spoken by espeak-ng and encoded to {data['clips']}, one "
        "process per "
        "language: real-time factor (transcription time / audio length, warm, in the conversation's language), "
        "the CPU seconds it took per second of audio (both threads; a busy machine inflates it much less than the "
        "wall time), the "
        "process's peak RSS (interpreter, model and transcriptions), the first call (model load included), the "
        "character error rate of what was heard, and the language detection picks when none is given.",
        "",
        table(["language", "audio s", "RTF", "CPU s / audio s", "peak RSS MB", "first call s", "CER", "detected as",
               "heard"], rows),
        "",
        f"Through the pipeline (embedded mode, {p['messages_each']} messages each, accept → reply recorded): a typed "
        f"question takes {p['typed_p50_ms']:.0f} ms (p50); the same question as a {p['audio_seconds']:g} s voice note "
        f"{known['p50_ms']:.0f} ms when the conversation's language is known (**+{known['added_p50_ms']:.0f} ms**), "
        f"{detected['p50_ms']:.0f} ms from a new customer whose language is detected first "
        f"(+{detected['added_p50_ms']:.0f} ms). In CPU time a voice note adds {known['added_cpu_p50_ms']:.0f} ms "
        f"(language known) and {detected['added_cpu_p50_ms']:.0f} ms (detected). The first voice note after start "
        "also loads the model: "
        f"{p['first_voice_note_ms']:.0f} ms.",
        "",
        "English is heard word for word. espeak-ng's Chinese, Malay and Tamil are robotic and the base model hears "
        "them poorly (the error rates above); detection alone does worse still, which is why the conversation's "
        "language is passed in. Try your customers' own voice notes with `supportlah transcribe` before relying "
        "on it; every answer to a voice note starts with what was heard, so a mis-hearing shows.",
        "",
        f"Measured on {_machine_line(data['machine'])} — a machine shared with other jobs, so these times are "
        f"upper bounds. Reproduce: `{data['command']}`",
        "",
    ]


def cli_startup_section(data: dict) -> list[str]:
    c = data["commands"]

    def row(name: str) -> str:
        r = c[name]
        target = f" (target < {r['target_s']:g} s: {_verdict(r['meets_target'])})" if r["target_s"] else ""
        return f"`{name}` {r['median_s']:.2f} s{target}"

    return [
        "### CLI start-up",
        "",
        f"Wall time of a command from a shell, median of {data['rounds']} warm rounds, each round running every "
        f"command in turn in the same run: {row('python -c pass')}, {row('--help')}, {row('kb list')}, "
        f"{row('ask')} — `ask` is the whole pipeline over the sample knowledge base (migration check, embedding "
        f"model, retrieval, extractive answer), so it is `python -c pass` plus "
        f"{c['ask']['over_python_s']:.2f} s. Machine: {_machine_line(data['machine'])}.",
        "",
        "![CLI start-up](bench/results/cli_startup.png)",
        "",
        "Reproduce: `python -m bench.cli_startup`",
        "",
    ]


def render() -> str:
    parts = ["## Performance", ""]
    sections = [("ingress", ingress_section), ("pipeline", pipeline_section), ("retrieval_scale", scale_section),
                ("ingestion", ingestion_section), ("voice", voice_section), ("cli_startup", cli_startup_section)]
    machines = []
    for name, section in sections:
        data = read_result(name)
        if data is None:
            parts += [f"### {name}", "", f"_not run yet: `python -m bench.{name}`_", ""]
            continue
        machines.append(data["machine"])
        parts += section(data)
    if machines:
        parts[2:2] = [f"Measured on {_machine_line(machines[0])}. Each benchmark measures its own baseline in "
                      "the same run. Reproduce everything with `make bench` (`python -m bench.run_all`; needs "
                      "Postgres and Redis on 127.0.0.1 for the production-mode rows) or one benchmark with "
                      "`python -m bench.<name>`; results land in `bench/results/<name>.json` with the machine and "
                      "the load average they were taken under.", ""]
    parts += ["## Quality", ""]
    retrieval, answers = read_result("retrieval_quality"), read_result("answers_quality")
    if retrieval:
        parts += retrieval_quality_section(retrieval)
    if answers:
        parts += answers_section(answers)
    if retrieval or answers:
        parts += [f"Measured on {_machine_line((retrieval or answers)['machine'])}. `python -m bench.quality` runs "
                  "all of the commands above and stores their JSON in `bench/results/`.", ""]
    return "\n".join(parts)


README = ROOT / "README.md"
START, END = "<!-- bench:start -->", "<!-- bench:end -->"


def splice_into_readme(section: str) -> None:
    """Replace the README's Performance and Quality sections (between the bench markers)."""
    text = README.read_text(encoding="utf-8")
    head, _, rest = text.partition(START)
    _, found, tail = rest.partition(END)
    if not found:
        raise SystemExit(f"README.md has no {START} … {END} markers")
    README.write_text(f"{head}{START}\n{section.strip()}\n{END}{tail}", encoding="utf-8")


def main() -> Path:
    section = render()
    OUTPUT.write_text(section, encoding="utf-8")
    splice_into_readme(section)
    return OUTPUT


if __name__ == "__main__":
    print(main())
