"""The correlation id of the message being handled, carried by every log line about it.

A context variable, so concurrent messages in one process never mix their ids; the
JSON log formatter (supportlah/logs.py) adds it to each record.
"""
from __future__ import annotations

from contextvars import ContextVar

correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)
