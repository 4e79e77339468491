"""Voice notes made on the spot: espeak-ng speaks the text, ffmpeg encodes it the way WhatsApp and
Telegram send voice notes (Ogg/Opus, mono, 48 kHz). Nothing is shipped or downloaded.

Both are Debian packages (``espeak-ng``, ``ffmpeg``) that ``.ci/run`` installs. espeak-ng 1.51's
Mandarin voice reads Han characters as tone numbers, so Chinese is spoken from pinyin
(``cmn-latn-pinyin``).
"""
from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

# espeak-ng voice and words per language: what a customer would ask the sample business.
VOICES = {"en": "en", "zh": "cmn-latn-pinyin", "ms": "ms", "ta": "ta"}


@dataclass(frozen=True)
class Phrase:
    language: str
    spoken: str  # what espeak-ng is given
    meaning: str  # what it says, as a customer would type it


PHRASES = {
    "en": Phrase("en", "How much does a chemical wash cost?", "How much does a chemical wash cost?"),
    "zh": Phrase("zh", "hua4 xue2 qing1 xi3 duo1 shao3 qian2", "化学清洗多少钱"),
    "ms": Phrase("ms", "Berapakah harga cucian kimia?", "Berapakah harga cucian kimia?"),
    "ta": Phrase("ta", "ரசாயன சுத்தம் எவ்வளவு?", "ரசாயன சுத்தம் எவ்வளவு?"),
}


class ClipToolMissing(RuntimeError):
    """espeak-ng or ffmpeg is not installed (``apt-get install espeak-ng ffmpeg``)."""


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise ClipToolMissing(f"{name} is not installed: apt-get install -y espeak-ng ffmpeg")
    return path


def make_clip(text: str, path: Path, *, language: str = "en", words_per_minute: int = 140,
              pad_to_seconds: float | None = None) -> Path:
    """An Ogg/Opus voice note of ``text`` at ``path``; ``pad_to_seconds`` adds silence up to that length."""
    wav = path.with_suffix(".wav")
    subprocess.run([_tool("espeak-ng"), "-v", VOICES[language], "-s", str(words_per_minute), "-w", str(wav), text],
                   check=True, capture_output=True, timeout=60)
    pad = ["-af", f"apad=whole_dur={pad_to_seconds}"] if pad_to_seconds else []
    subprocess.run([_tool("ffmpeg"), "-loglevel", "error", "-y", "-i", str(wav), *pad, "-c:a", "libopus",
                    "-b:a", "24k", "-ac", "1", "-ar", "48000", str(path)], check=True, capture_output=True, timeout=60)
    wav.unlink()
    return path


def clip_seconds(path: Path) -> float:
    """The clip's length as ffprobe reads it (independent of the code under test)."""
    out = subprocess.run([_tool("ffprobe"), "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0",
                          str(path)], check=True, capture_output=True, text=True, timeout=30)
    return float(out.stdout.strip())
