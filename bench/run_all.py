"""``make bench``: every benchmark and the quality evals, then ``bench/README-section.md``.

Each step writes its ``bench/results/<name>.json`` and plot; a step that fails (for
instance Postgres or Redis not running, which the production-mode rows need) is
reported and the others still run. Exit status 1 if any step failed.

    python -m bench.run_all [--skip ingress pipeline …]
"""
from __future__ import annotations

import argparse
import sys
import time
import traceback

from bench import cli_startup, ingestion, ingress, pipeline, quality, readme, retrieval_scale, voice

STEPS = {
    "quality": quality.main,
    "ingress": ingress.main,
    "pipeline": pipeline.main,
    "retrieval_scale": retrieval_scale.main,
    "ingestion": ingestion.main,
    "voice": voice.main,  # needs the `voice` extra (make install-voice), espeak-ng and ffmpeg
    "cli_startup": cli_startup.main,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip", nargs="*", default=[], choices=sorted(STEPS))
    args = parser.parse_args(argv)
    started = time.monotonic()
    failed = []
    for name, step in STEPS.items():
        if name in args.skip:
            continue
        print(f"== {name}", flush=True)
        step_started = time.monotonic()
        try:
            step([])
        except Exception:  # one broken benchmark must not hide the others' results
            traceback.print_exc()
            failed.append(name)
        print(f"   ({time.monotonic() - step_started:.0f} s)", flush=True)
    print(f"wrote {readme.main()}")
    print(f"total {time.monotonic() - started:.0f} s" + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
