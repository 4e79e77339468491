"""Structured logs with a correlation id, and no customer PII at info level.

JSON lines for machines (stderr is not a terminal, or ``SUPPORTLAH_LOG_JSON=true``); the same
fields as one readable line on a terminal.

The correlation id is the inbound message id: the ingress and the worker set it in a
context variable (``config.correlation``) and every line logged while handling that
message carries it as ``correlation_id``. Message bodies and phone
numbers are never put in log records by our code; as a second line of defence the
formatter masks anything that looks like a phone number, email, NRIC/FIN or card.
"""
from __future__ import annotations

import json
import logging
import re
import sys
from datetime import datetime, timezone

from config.correlation import correlation_id

_RESERVED = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
# Order matters: NRIC/FIN and cards before the broader phone pattern. A phone number is
# 8+ digits (Singapore numbers have 8) that stand alone: digits glued to letters are part
# of an id (our hex message ids, the correlation id, must survive), and ISO dates are not
# phone numbers.
_PII = [
    (re.compile(r"\b[STFGM]\d{7}[A-Z]\b", re.IGNORECASE), "[nric]"),
    (re.compile(r"\b(?:\d[ -]?){13,19}\b"), "[card]"),
    (re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+"), "[email]"),
    (re.compile(r"(?<![\w.-])(?!\d{4}-\d\d-\d\d)(?:whatsapp:|tel:)?\+?\d[\d -]{6,}\d(?![\w])"), "[phone]"),
]


def mask_pii(text: str) -> str:
    for pattern, replacement in _PII:
        text = pattern.sub(replacement, text)
    return text


def _mask_value(value: object) -> object:
    """Strings anywhere inside an extra (lists, dicts) are masked; numbers and flags are kept."""
    if isinstance(value, str):
        return mask_pii(value)
    if isinstance(value, dict):
        return {str(k): _mask_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_mask_value(v) for v in value]
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    return mask_pii(str(value))


def _fields(record: logging.LogRecord) -> dict[str, object]:
    """The record's extras and correlation id, masked: what both formats show after the event."""
    fields: dict[str, object] = {}
    current = correlation_id.get()
    if current is not None:
        fields["correlation_id"] = current
    for key, value in vars(record).items():
        if key not in _RESERVED and not key.startswith("_"):
            fields[key] = _mask_value(value)
    return fields


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": mask_pii(record.getMessage()),
            **_fields(record),
        }
        if record.exc_info:
            payload["exc"] = mask_pii(self.formatException(record.exc_info))
        return json.dumps(payload, default=str, ensure_ascii=False)


class ConsoleFormatter(logging.Formatter):
    """``08:45:19 INFO  supportlah.backends  event  key=value …`` for a person at a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        extras = " ".join(f"{key}={json.dumps(value, default=str, ensure_ascii=False)}"
                          for key, value in _fields(record).items())
        line = f"{when} {record.levelname:<5} {record.name}  {mask_pii(record.getMessage())}"
        if extras:
            line += f"  {extras}"
        if record.exc_info:
            line += "\n" + mask_pii(self.formatException(record.exc_info))
        return line


def wants_json(setting: bool | None, stream: object) -> bool:
    """JSON when asked for, or when nobody is reading (a file, a pipe, a log collector)."""
    if setting is not None:
        return setting
    isatty = getattr(stream, "isatty", None)
    return not (callable(isatty) and isatty())


def configure_logging(level: str = "INFO", *, json_output: bool = True) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_output else ConsoleFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("aiohttp.access", "httpx", "httpcore", "asyncio", "arq.worker", "arq.jobs",
                  "alembic.runtime.plugins"):  # "setup plugin alembic.autogenerate.…" on every start
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    # These log SQL parameters or request bodies (message text, names, phone numbers) even at INFO or
    # DEBUG; nothing in them is worth that, whatever level the app runs at.
    for leaky in ("aiosqlite", "sqlalchemy.engine", "asyncpg", "twilio", "telegram"):
        logging.getLogger(leaky).setLevel(logging.WARNING)
