"""Ingestion for the command line: a progress bar and a readable summary."""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from rag.ingest import IngestReport
from supportlah.container import Container


@dataclass
class IngestSummary:
    report: IngestReport

    @property
    def failed(self) -> bool:
        return bool(self.report.failed)

    def __str__(self) -> str:
        r = self.report
        lines = [
            f"ingested in {r.seconds:.1f}s: {len(r.added)} added, {len(r.updated)} updated, "
            f"{len(r.skipped)} unchanged or skipped, {len(r.failed)} failed; "
            f"{r.chunks_added} chunks added, {r.chunks_removed} removed, {r.chunks_embedded} embedded, "
            f"{r.chunks_reused} reused"
        ]
        for f in r.failed:
            lines.append(f"  failed: {f.path}: {f.reason}")
        for f in r.skipped:
            if f.reason and f.reason != "unchanged":
                lines.append(f"  skipped: {f.path}: {f.reason}")
        return "\n".join(lines)


async def run_ingest(container: Container, paths: list[Path], *, category: str | None = None,
                     language: str | None = None, show_progress: bool = True) -> IngestSummary:
    bar = tqdm(total=0, unit="file", disable=not show_progress, file=sys.stderr, leave=False)

    def progress(done: int, total: int, name: str) -> None:
        bar.total = total
        bar.set_postfix_str(name[:40])
        bar.update(done - bar.n)

    try:
        report = await container.ingestor.ingest(paths, category=category, language=language, progress=progress)
    finally:
        bar.close()
    return IngestSummary(report)
