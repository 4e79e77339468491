"""Ingestion for the command line: a progress bar and a readable summary."""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

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

    def to_json(self) -> dict:
        r = self.report
        return {"seconds": round(r.seconds, 3), "added": len(r.added), "updated": len(r.updated),
                "skipped": len(r.skipped), "failed": len(r.failed), "chunks_added": r.chunks_added,
                "chunks_removed": r.chunks_removed, "chunks_embedded": r.chunks_embedded,
                "chunks_reused": r.chunks_reused,
                "files": [{"path": f.path, "status": f.status, "reason": f.reason, "chunks": f.chunks}
                          for f in r.files]}


async def run_ingest(container: Container, paths: list[Path], *, category: str | None = None,
                     language: str | None = None, show_progress: bool = True) -> IngestSummary:
    bars: list = []  # made at the first file, when the total is known: no empty "0file" bar is drawn

    def progress(done: int, total: int, name: str) -> None:
        if not bars:
            from tqdm import tqdm

            bars.append(tqdm(total=total, unit="file", file=sys.stderr, leave=False))
        bar = bars[0]
        bar.total = total
        bar.set_postfix_str(name[:40])
        bar.update(done - bar.n)

    try:
        report = await container.ingestor.ingest(paths, category=category, language=language,
                                                 progress=progress if show_progress and sys.stderr.isatty() else None)
    finally:
        for bar in bars:
            bar.close()
    return IngestSummary(report)
