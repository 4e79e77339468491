"""Seams between the edge and the pipeline.

Inbound adapters hand normalized messages to an :class:`Ingress` (store first,
then enqueue). Outbound adapters implement :class:`OutboundSender`. Vendor errors
become :class:`ChannelError` subclasses at the adapter that met them; whether a
failure is worth retrying is decided there, once.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable

from channels.messages import Channel, DeliveryReceipt, InboundMessage, OutboundMessage


@dataclass(frozen=True)
class AcceptResult:
    message_id: str
    duplicate: bool  # the provider delivered this message before; nothing new was queued


@dataclass(frozen=True)
class ProviderRecord:
    """A message the provider says it accepted (for reconciling after a crash)."""

    provider_message_id: str
    body: str
    created_at: datetime


# Part metadata a resend carries: ``{SEND_AS: TEMPLATE}`` makes a WhatsApp part go out as the approved
# template whatever our own estimate of the 24-hour window says (the provider said it was closed).
SEND_AS = "send_as"
TEMPLATE = "template"


class DeliveryProblem(StrEnum):
    """Why a provider reported a message it had accepted as not delivered (decided by the channel)."""

    OUTSIDE_WINDOW = "outside_window"  # WhatsApp 24-hour window closed: resend as a template
    UNREACHABLE = "unreachable"  # the contact cannot be reached: mark it, tell staff
    RATE_LIMITED = "rate_limited"  # throttled after acceptance: send again later
    OTHER = "other"  # anything else: the part stays failed, staff are told


@dataclass(frozen=True)
class DeliveryReport:
    """What the provider says became of a message it accepted (a status callback, or a poll)."""

    channel: Channel
    provider_message_id: str
    status: str  # the provider's word: queued, sent, delivered, read, failed, undelivered
    error_code: str | None = None
    problem: DeliveryProblem | None = None  # set when the status is a failure

    @property
    def failed(self) -> bool:
        return self.status in ("failed", "undelivered")


@runtime_checkable
class Ingress(Protocol):
    """Durably records an inbound message, then enqueues it. Returns only after the row is committed."""

    async def accept(self, message: InboundMessage) -> AcceptResult: ...


@runtime_checkable
class OutboundSender(Protocol):
    channel: Channel

    async def send(self, message: OutboundMessage) -> DeliveryReceipt: ...


class ChannelError(Exception):
    """A send failed. ``retryable`` says whether trying again may succeed."""

    retryable: bool = False

    def __init__(self, message: str, *, code: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.retry_after = retry_after


class TransientChannelError(ChannelError):
    """Rate limits, 5xx, timeouts, network drops: retry with backoff (honour ``retry_after``)."""

    retryable = True


class AmbiguousSendError(TransientChannelError):
    """The request went out but no answer came back (connection dropped, read timeout): the
    provider may have accepted it. The part must be reconciled with the provider before any
    resend, exactly like a part a dead worker left in flight."""


class PermanentChannelError(ChannelError):
    """Invalid recipient, blocked, unsubscribed: mark failed, show staff, never retry."""

    retryable = False


class RecipientUnreachable(PermanentChannelError):
    """The customer blocked us or left; the contact is marked unreachable."""


class OutsideWindowError(PermanentChannelError):
    """WhatsApp 24-hour window closed: send an approved template instead."""
