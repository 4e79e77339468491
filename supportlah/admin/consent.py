"""The PDPA in the message pipeline: the notice, consent, and customers' own data requests.

One hook, placed before commands and the agent:

* data requests come first and work with or without consent: "my data" / ``/my_data``
  answers with a readable summary (the web chat also downloads the full copy); "delete my
  data" / ``/delete_my_data`` asks for a confirmation, and a confirmed erasure runs as soon
  as this job lets go of the conversation (:meth:`PersonalData.erase_soon`);
* notice mode: the first message of a contact (or the first after the notice version
  changed) gets the notice as a part ordered *before* the answer, and the agent answers;
* opt-in mode: until the customer agrees, every message gets the notice and agree
  buttons (keywords on channels without buttons) and nothing else; what they wrote
  before agreeing is blanked in the store, not kept.
"""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from config.types import Reply
from channels.messages import Channel, OutboundMessage, new_id, utcnow
from channels.telegram.keyboard import KEYBOARD_KEY, Button, encode_keyboard
from config.languages import LANGUAGE_CODES
from config.sql import single_statement_sessions
from memory.models import Contact, InboundMessageRow, OutboundPart, PartState
from memory.pdpa import ERASED_PREFIX, ConsentRecord, ConsentStatus, PersonalData, is_erased
from memory.store import StoredMessage
from supportlah.admin import privacy_texts as texts
from workers.hooks import Decision

log = logging.getLogger(__name__)

ERASE_CONFIRM_WINDOW = timedelta(minutes=15)
NOTICE_PART_INDEX = -1  # sorts before the reply's parts (0, 1, …), so the notice goes out first

AnswerCallback = Callable[[str], Awaitable[None]]
Detect = Callable[[str], str]


@dataclass(frozen=True)
class ConsentConfig:
    mode: str  # notice | opt-in | off
    notice_version: str
    business_name: str
    retention_days: int
    policy_url: str | None = None
    notice_texts: dict[str, str] = field(default_factory=dict)


class PrivacyHook:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        personal_data: PersonalData,
        config: ConsentConfig,
        *,
        detect: Detect | None = None,
        answer_callback: AnswerCallback | None = None,
    ) -> None:
        self._sessions = sessions
        self._reads = single_statement_sessions(sessions)  # read-only: no BEGIN/COMMIT
        self._data = personal_data
        self._config = config
        self._detect = detect
        self._answer_callback = answer_callback

    async def before_agent(self, stored: StoredMessage) -> Decision | None:
        msg = stored.message
        if msg.channel in (Channel.STAFF, Channel.CLI) or msg.metadata.get("staff") == "true":
            return None
        if await self._erased_meanwhile(stored):
            return Decision(reply=Reply(text="", language="en", confidence=1.0, backend={"answerer": "pdpa:erased"}),
                            parts=[])
        language = self._language(stored)
        decision = await self._data_request(stored, language)
        if decision is not None:
            await self._stop_spinner(stored)
            return decision
        if self._config.mode == "notice":
            await self._notice_once(stored, language)
            return None
        if self._config.mode == "opt-in":
            decision = await self._opt_in(stored, language)
            if decision is not None:
                await self._stop_spinner(stored)
            return decision
        return None

    async def after_agent(self, stored: StoredMessage, reply: Reply) -> list[OutboundMessage]:
        return []

    async def _erased_meanwhile(self, stored: StoredMessage) -> bool:
        """The tombstone check: a message that raced an erasure onto the erased contact's shell is
        stripped of everything personal and not answered, so nothing is written back for that person."""
        async with self._reads() as session:  # nearly always "no": answered without a transaction
            contact = await session.get(Contact, stored.contact_id)
        if contact is None or not is_erased(contact.channel_user_id):
            return False
        async with self._sessions() as session:
            await session.execute(
                update(InboundMessageRow).where(InboundMessageRow.id == stored.message.id)
                .values(text="", attachments=[], meta={}, sender_id=ERASED_PREFIX.rstrip(":"))
            )
            await session.commit()
        log.info("message for an erased contact dropped", extra={"message_id": stored.message.id})
        return True

    # --- data requests --------------------------------------------------------
    async def _data_request(self, stored: StoredMessage, language: str) -> Decision | None:
        msg = stored.message
        command = msg.metadata.get("command") or _typed_command(msg.text)
        pending = await self._data.awaiting_confirmation(stored.contact_id, ERASE_CONFIRM_WINDOW)
        if pending is not None:
            if msg.text == texts.CALLBACK_ERASE or texts.is_one_of(msg.text, texts.CONFIRM_ERASE):
                await self._data.set_request_status(pending, "confirmed")
                self._data.erase_soon(stored.contact_id)
                log.info("customer confirmed erasure", extra={"message_id": msg.id})
                return _decision(texts.text("erasing", language), language, "pdpa:erasure")
            if msg.text == texts.CALLBACK_KEEP or texts.is_one_of(msg.text, texts.CANCEL_ERASE):
                await self._data.set_request_status(pending, "cancelled")
                return _decision(texts.text("erase_cancelled", language), language, "pdpa:erasure")
        if command is None:
            language = self._detected(msg.text) or language  # answer a typed request in its own language
        if command == "delete_my_data" or texts.says(msg.text, texts.ERASE_PHRASES):
            await self._data.open_request(stored.contact_id, "erasure", msg.channel.value,
                                          status="awaiting_confirmation")
            keyboard = ((Button(texts.text("button_erase", language), texts.CALLBACK_ERASE),
                         Button(texts.text("button_keep", language), texts.CALLBACK_KEEP)),)
            return _decision(texts.text("erase_confirm", language), language, "pdpa:erasure", keyboard)
        if command == "my_data" or texts.is_one_of(msg.text, texts.ACCESS_EXACT) or texts.says(
            msg.text, texts.ACCESS_PHRASES
        ):
            await self._data.open_request(stored.contact_id, "access", msg.channel.value, status="done")
            export = await self._data.export(stored.contact_id)
            body = _summary(export, language) if export else texts.text("access_none", language)
            return _decision(body, language, "pdpa:access")
        return None

    # --- consent --------------------------------------------------------------
    async def _latest_consent(self, session: AsyncSession, contact_id: str) -> ConsentRecord | None:
        return await session.scalar(
            select(ConsentRecord).where(ConsentRecord.contact_id == contact_id)
            .order_by(ConsentRecord.created_at.desc(), ConsentRecord.id).limit(1)
        )

    async def _notice_once(self, stored: StoredMessage, language: str) -> None:
        """Record the notice and queue it as this message's first part, in one transaction."""
        msg = stored.message
        async with self._reads() as session:  # the usual case, "shown already", without a transaction
            if self._current_notice(await self._latest_consent(session, stored.contact_id)):
                return
        async with self._sessions() as session:
            if self._current_notice(await self._latest_consent(session, stored.contact_id)):
                return  # shown meanwhile (possibly by an earlier attempt at this very message)
            session.add(self._record(stored, ConsentStatus.NOTIFIED, language))
            session.add(OutboundPart(
                id=new_id(), idempotency_key=f"{msg.id}:pdpa-notice:0", conversation_id=msg.conversation_id,
                inbound_message_id=msg.id, channel=msg.channel.value, recipient_id=msg.sender_id, role="system",
                part_index=NOTICE_PART_INDEX, text=self._notice(language), sources=[],
                meta={"language": language, KEYBOARD_KEY: "[]", "role": "system", "escalate": "false",
                      "last_part": "false"},
                state=PartState.PENDING,
            ))
            try:
                await session.commit()
            except IntegrityError:
                await session.rollback()  # a concurrent attempt queued it first
                return
        log.info("privacy notice queued", extra={"message_id": msg.id, "version": self._config.notice_version})

    def _current_notice(self, latest: ConsentRecord | None) -> bool:
        """Whether this consent record shows the current version of the notice."""
        return latest is not None and latest.notice_version == self._config.notice_version

    async def _opt_in(self, stored: StoredMessage, language: str) -> Decision | None:
        msg = stored.message
        async with self._reads() as session:
            latest = await self._latest_consent(session, stored.contact_id)
        current = self._current_notice(latest)
        if current and latest.status == ConsentStatus.AGREED:
            return None
        if msg.text == texts.CALLBACK_AGREE or (current and texts.is_one_of(msg.text, texts.AGREE)):
            await self._save(self._record(stored, ConsentStatus.AGREED, language))
            return _decision(texts.text("agreed", language), language, "pdpa:consent")
        if msg.text == texts.CALLBACK_DECLINE or (current and texts.is_one_of(msg.text, texts.DECLINE)):
            await self._save(self._record(stored, ConsentStatus.DECLINED, language))
            await self._blank(msg.id)
            return _decision(texts.text("declined", language), language, "pdpa:consent")
        if not (current and latest.status == ConsentStatus.PENDING):
            await self._save(self._record(stored, ConsentStatus.PENDING, language))
        await self._blank(msg.id)
        keyboard = ((Button(texts.text("button_agree", language), texts.CALLBACK_AGREE),
                     Button(texts.text("button_decline", language), texts.CALLBACK_DECLINE)),)
        prompt = f"{self._notice(language)}\n\n{texts.text('opt_in_ask', language)}"
        return _decision(prompt, language, "pdpa:consent", keyboard)

    def _record(self, stored: StoredMessage, status: str, language: str) -> ConsentRecord:
        return ConsentRecord(id=new_id(), contact_id=stored.contact_id, channel=stored.message.channel.value,
                             mode=self._config.mode, notice_version=self._config.notice_version, status=status,
                             language=language, message_id=stored.message.id, created_at=utcnow())

    async def _save(self, record: ConsentRecord) -> None:
        async with self._sessions() as session, session.begin():
            session.add(record)

    async def _blank(self, message_id: str) -> None:
        """Opt-in: what was written before consent is not kept (the row stays, for ordering)."""
        async with self._sessions() as session, session.begin():
            await session.execute(
                update(InboundMessageRow).where(InboundMessageRow.id == message_id).values(text="", attachments=[])
            )

    def _notice(self, language: str) -> str:
        return texts.notice(language, business=self._config.business_name, days=self._config.retention_days,
                            policy_url=self._config.policy_url, overrides=self._config.notice_texts)

    def _language(self, stored: StoredMessage) -> str:
        if stored.conversation_language in LANGUAGE_CODES:
            return stored.conversation_language
        code = (stored.message.metadata.get("language_code") or "").lower().split("-")[0]
        if code in LANGUAGE_CODES:
            return code
        return self._detected(stored.message.text) or "en"

    def _detected(self, message: str) -> str | None:
        if self._detect is None or not message.strip() or message.startswith(("/", "pdpa:")):
            return None
        detected = self._detect(message)
        return detected if detected in LANGUAGE_CODES else None

    async def _stop_spinner(self, stored: StoredMessage) -> None:
        meta = stored.message.metadata
        if meta.get("kind") != "callback" or self._answer_callback is None:
            return
        try:
            await self._answer_callback(meta.get("callback_query_id", ""))
        except Exception:  # the spinner stops by itself after a while; the press is still handled
            log.warning("could not answer a callback query", exc_info=True)


def _typed_command(message: str) -> str | None:
    """``/my_data`` typed on a channel without bot commands (WhatsApp, web chat)."""
    word = message.strip().split(" ", 1)[0].lower()
    return word[1:] if word in ("/my_data", "/delete_my_data") else None


def _decision(reply_text: str, language: str, answerer: str, keyboard: tuple = ()) -> Decision:
    return Decision(
        reply=Reply(text=reply_text, language=language, confidence=1.0, backend={"answerer": answerer}),
        metadata={KEYBOARD_KEY: encode_keyboard(keyboard)},
    )


SUMMARY_MESSAGES = 5
SUMMARY_QUOTE_CHARS = 80


def _summary(export: dict, language: str) -> str:
    """The export as a person reads it in a chat: counts, the notice, the latest own messages. The
    full copy is the web chat's download (``GET /api/chat/export``) or the admin API's export."""
    messages = [m for c in export.get("conversations", []) for m in c.get("messages", [])]
    own = [m for m in messages if m.get("from") == "customer"]
    consents = export.get("consents", [])
    consent = f"{consents[-1]['status']} {str(consents[-1]['at'])[:10]}" if consents else "-"
    since = str((export.get("contact") or {}).get("created_at") or "")[:10] or "-"
    lines = [texts.text("access", language, messages=len(own), replies=len(messages) - len(own), since=since,
                        consent=consent)]
    if own:
        lines += ["", texts.text("access_messages", language)]
        for message in own[-SUMMARY_MESSAGES:]:
            quote = " ".join(str(message.get("text") or "").split())
            if len(quote) > SUMMARY_QUOTE_CHARS:
                quote = quote[:SUMMARY_QUOTE_CHARS] + "…"
            lines.append(f"• {str(message.get('at'))[:16].replace('T', ' ')}  “{quote}”")
    lines += ["", texts.text("access_end", language)]
    return "\n".join(lines)
