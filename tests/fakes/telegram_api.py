"""A local fake of the Telegram Bot API, strict enough to catch what the real one would refuse.

The real python-telegram-bot ``Bot`` is pointed at it with
``Bot(token, base_url=f"{fake.url}/bot", base_file_url=f"{fake.url}/file/bot")``
(or ``build_bot(token, api_base_url=fake.url)``). It serves ``POST /bot<token>/<method>``
with bodies as PTB sends them (form-encoded, each value JSON-encoded unless it is a
plain string; multipart when a file is uploaded) or as JSON, and answers in the
documented envelope: ``{"ok": true, "result": …}`` or
``{"ok": false, "error_code": N, "description": "…", "parameters": {…}}``.

It checks what Telegram checks for the calls we make: required and known parameters,
HTML parse-mode markup (unescaped ``<``/``&`` is refused just like Telegram refuses
it), message length (4,096 UTF-16 units of visible text), captions (1,024 UTF-16 units),
callback data (≤ 64 bytes), command names, forum topics (sending into an unknown or
deleted topic is "message thread not found"), getUpdates while a webhook is set (409),
edits that change nothing ("message is not modified", TOPIC_NOT_MODIFIED), a callback
query answered twice or with more than 200 characters, uploaded photo bytes that are
not an image (IMAGE_PROCESS_FAILED), webhooks on a port other than 443, 80, 88 or 8443,
and calls to a group that became a supergroup (:meth:`FakeTelegramAPI.migrate_chat`:
400 with ``parameters.migrate_to_chat_id``, as PTB's ``ChatMigrated`` reads it).

Anything unexpected (unknown method, wrong token, unknown parameter, wrong HTTP verb)
is answered 404/400 *and* appended to :attr:`FakeTelegramAPI.errors`; tests assert
that list is empty. Every call is recorded with a monotonic timestamp.

Scripting: :meth:`fail_next` (any error, e.g. 429 with retry_after), :meth:`block_chat`
(403), :meth:`delete_topic` (400 thread not found), :meth:`close_topic` (400 TOPIC_CLOSED),
:meth:`disable_topics` (the group is not a forum), :meth:`drop_next` (connection
dropped without a response), :meth:`queue_updates` (served by getUpdates).
:class:`UpdateFactory` builds update payloads in the documented shape.
"""
from __future__ import annotations

import asyncio
import html
import itertools
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

TEST_TOKEN = "123456:TEST-token_for-fake-bot-api"
BOT_ID = 123456
BOT_USERNAME = "supportlah_test_bot"

# Parameter decoding: S = plain string, J = JSON-encoded value, F = file (attach://name, file_id or URL).
S, J, F = "str", "json", "file"
_MESSAGE_OPTIONS = {"parse_mode": S, "reply_markup": J, "message_thread_id": J, "entities": J,
                    "link_preview_options": J, "disable_notification": J, "protect_content": J,
                    "reply_parameters": J}
_MEDIA_OPTIONS = {"caption": S, "parse_mode": S, "reply_markup": J, "message_thread_id": J,
                  "caption_entities": J, "disable_notification": J, "protect_content": J, "reply_parameters": J}
# method -> (required params, optional params)
METHODS: dict[str, tuple[dict[str, str], dict[str, str]]] = {
    "getMe": ({}, {}),
    "sendMessage": ({"chat_id": J, "text": S}, _MESSAGE_OPTIONS),
    "sendChatAction": ({"chat_id": J, "action": S}, {"message_thread_id": J}),
    "answerCallbackQuery": ({"callback_query_id": S}, {"text": S, "show_alert": J, "url": S, "cache_time": J}),
    "setMyCommands": ({"commands": J}, {"scope": J, "language_code": S}),
    "setWebhook": ({"url": S}, {"secret_token": S, "allowed_updates": J, "drop_pending_updates": J,
                                "max_connections": J, "ip_address": S}),
    "deleteWebhook": ({}, {"drop_pending_updates": J}),
    "getUpdates": ({}, {"offset": J, "limit": J, "timeout": J, "allowed_updates": J}),
    "getFile": ({"file_id": S}, {}),
    "editMessageText": ({"text": S}, {"chat_id": J, "message_id": J, "inline_message_id": S, "parse_mode": S,
                                      "reply_markup": J, "entities": J, "link_preview_options": J}),
    "createForumTopic": ({"chat_id": J, "name": S}, {"icon_color": J, "icon_custom_emoji_id": S}),
    "editForumTopic": ({"chat_id": J, "message_thread_id": J}, {"name": S, "icon_custom_emoji_id": S}),
    "closeForumTopic": ({"chat_id": J, "message_thread_id": J}, {}),
    "sendPhoto": ({"chat_id": J, "photo": F}, _MEDIA_OPTIONS),
    "sendDocument": ({"chat_id": J, "document": F}, _MEDIA_OPTIONS),
    "copyMessage": ({"chat_id": J, "from_chat_id": J, "message_id": J},
                    {"message_thread_id": J, "caption": S, "parse_mode": S, "reply_markup": J,
                     "disable_notification": J, "protect_content": J, "reply_parameters": J}),
    "setMessageReaction": ({"chat_id": J, "message_id": J}, {"reaction": J, "is_big": J}),
    "reopenForumTopic": ({"chat_id": J, "message_thread_id": J}, {}),
    "deleteForumTopic": ({"chat_id": J, "message_thread_id": J}, {}),
}

_HTML_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler", "a", "tg-emoji",
              "code", "pre", "blockquote"}
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z-]*)(\s[^<>]*)?>")
_ENTITY = re.compile(r"&(lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);")
_COMMAND = re.compile(r"^[a-z0-9_]{1,32}$")
MAX_TEXT_UTF16 = 4096
MAX_CAPTION_UTF16 = 1024
MAX_CALLBACK_ANSWER_CHARS = 200
WEBHOOK_PORTS = (443, 80, 88, 8443)
# What Telegram recognises as a photo: JPEG, PNG, GIF, WEBP (by their first bytes).
_IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"RIFF")
# Emoji a bot may react with (Bot API ReactionTypeEmoji).
REACTION_EMOJI = frozenset(
    "👍 👎 ❤ 🔥 🥰 👏 😁 🤔 🤯 😱 🤬 😢 🎉 🤩 🤮 💩 🙏 👌 🕊 🤡 🥱 🥴 😍 🐳 ❤‍🔥 🌚 🌭 💯 🤣 ⚡ 🍌 🏆 💔 🤨 😐 🍓 🍾 💋 🖕 "
    "😈 😴 😭 🤓 👻 👨‍💻 👀 🎃 🙈 😇 😨 🤝 ✍ 🤗 🫡 🎅 🎄 ☃ 💅 🤪 🗿 🆒 💘 🙉 🦄 😘 💊 🙊 😎 👾 🤷‍♂ 🤷 🤷‍♀ 😡".split())
MAX_CALLBACK_BYTES = 64


class BadRequest(Exception):
    """Answered as 400 ``Bad Request: <description>`` (a Telegram refusal, not a test-setup error)."""


@dataclass
class RecordedCall:
    method: str
    params: dict[str, Any]
    at: float  # time.monotonic() when the request arrived
    status: int = 200
    files: dict[str, bytes] = field(default_factory=dict)


@dataclass
class SentMessage:
    """A message the fake accepted: ``text`` is what the user would see (markup parsed, entities decoded)."""

    message_id: int
    chat_id: int
    text: str
    raw_text: str
    parse_mode: str | None
    reply_markup: dict | None
    thread_id: int | None
    at: float


@dataclass
class _Fault:
    method: str
    remaining: int
    status: int = 0
    description: str = ""
    parameters: dict[str, Any] | None = None
    drop: bool = False


def parse_telegram_html(text: str) -> str:
    """The visible text of an HTML parse-mode message; ValueError where Telegram would refuse it."""
    out: list[str] = []
    stack: list[str] = []
    pos = 0
    while pos < len(text):
        ch = text[pos]
        if ch == "<":
            m = _TAG.match(text, pos)
            name = m.group(2).lower() if m else ""
            if m is None or name not in _HTML_TAGS:
                raise ValueError(f"Unsupported start tag \"{name or text[pos + 1:pos + 8]}\" at byte offset {pos}")
            if m.group(1):
                if not stack or stack[-1] != name:
                    expected = stack[-1] if stack else ""
                    raise ValueError(f"Unmatched end tag at byte offset {pos}, expected \"</{expected}>\"")
                stack.pop()
            else:
                stack.append(name)
            pos = m.end()
        elif ch == "&":
            m = _ENTITY.match(text, pos)
            if m is None:
                raise ValueError(f"Character '&' is reserved and must be escaped at byte offset {pos}")
            out.append(html.unescape(m.group(0)))
            pos = m.end()
        elif ch == ">":
            raise ValueError(f"Character '>' is reserved and must be escaped at byte offset {pos}")
        else:
            out.append(ch)
            pos += 1
    if stack:
        raise ValueError(f"Can't find end tag corresponding to start tag \"{stack[-1]}\"")
    return "".join(out)


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


class FakeTelegramAPI:
    """``async with FakeTelegramAPI() as fake:`` binds 127.0.0.1 on a free port; ``fake.url`` is its base."""

    def __init__(self, token: str = TEST_TOKEN) -> None:
        self.token = token
        self.calls: list[RecordedCall] = []
        self.errors: list[str] = []
        self.sent: list[SentMessage] = []
        self.webhook: dict[str, Any] | None = None
        self.commands: dict[str | None, list[dict]] = {}  # language_code -> commands
        self.answered_callbacks: list[str] = []
        self.callback_answers: list[tuple[str, str | None]] = []  # (callback_query_id, text shown)
        self.reactions: list[dict[str, Any]] = []  # accepted setMessageReaction calls
        self.copies: list[dict[str, Any]] = []  # accepted copyMessage calls, with the new message id
        self.url = ""
        self._faults: list[_Fault] = []
        self._blocked: set[int] = set()
        self._migrated: dict[int, int] = {}  # old group id -> the supergroup it became
        self._topics: dict[tuple[int, int], dict[str, Any]] = {}
        self._not_forums: set[int] = set()
        self._files: dict[str, tuple[str, bytes]] = {}  # file_id -> (file_path, content)
        self._updates: list[dict] = []
        self._updates_changed = asyncio.Event()
        self._message_ids = itertools.count(1)
        self._thread_ids = itertools.count(1001)
        self._runner: web.AppRunner | None = None
        self._closing = False

    # ------------------------------------------------------------ lifecycle
    async def start(self) -> str:
        app = web.Application(client_max_size=60 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def close(self) -> None:
        self._closing = True
        self._updates_changed.set()  # release pending long polls
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> FakeTelegramAPI:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------ scripting
    def fail_next(self, method: str, *, status: int, description: str, count: int = 1,
                  retry_after: int | None = None, parameters: dict[str, Any] | None = None) -> None:
        """The next ``count`` calls of ``method`` get this error envelope."""
        params = dict(parameters or {})
        if retry_after is not None:
            params["retry_after"] = retry_after
        self._faults.append(_Fault(method, count, status, description, params or None))

    def rate_limit_next(self, method: str = "sendMessage", *, retry_after: int, count: int = 1) -> None:
        self.fail_next(method, status=429, description=f"Too Many Requests: retry after {retry_after}",
                       retry_after=retry_after, count=count)

    def drop_next(self, method: str, count: int = 1) -> None:
        """The next ``count`` calls of ``method`` have their connection closed without any response."""
        self._faults.append(_Fault(method, count, drop=True))

    def migrate_chat(self, old_chat_id: int, new_chat_id: int) -> None:
        """The group became a supergroup (turning on Topics does this): calls to the old id are refused."""
        self._migrated[old_chat_id] = new_chat_id
        for (chat, thread), topic in list(self._topics.items()):
            if chat == old_chat_id:  # a group's topics live on in the supergroup
                self._topics[(new_chat_id, thread)] = self._topics.pop((chat, thread))

    def block_chat(self, chat_id: int) -> None:
        """The user blocked the bot: every send to ``chat_id`` is 403."""
        self._blocked.add(chat_id)

    def add_topic(self, chat_id: int, thread_id: int, name: str = "topic") -> None:
        self._topics[(chat_id, thread_id)] = {"name": name, "closed": False}

    def delete_topic(self, chat_id: int, thread_id: int) -> None:
        """Staff deleted the forum topic: sends into it are 400 "message thread not found"."""
        self._topics.pop((chat_id, thread_id), None)

    def disable_topics(self, chat_id: int) -> None:
        """The group is not a forum: createForumTopic is refused."""
        self._not_forums.add(chat_id)

    def close_topic(self, chat_id: int, thread_id: int) -> None:
        """Staff closed the topic: sends into it are 400 TOPIC_CLOSED until it is reopened."""
        self._topics[(chat_id, thread_id)]["closed"] = True

    def topic(self, chat_id: int, thread_id: int) -> dict[str, Any] | None:
        return self._topics.get((chat_id, thread_id))

    def add_file(self, file_id: str, content: bytes, file_path: str | None = None) -> None:
        self._files[file_id] = (file_path or f"documents/{file_id}", content)

    def queue_updates(self, *updates: dict) -> None:
        self._updates.extend(updates)
        self._updates.sort(key=lambda u: u["update_id"])
        self._updates_changed.set()

    # ------------------------------------------------------------ inspection
    def calls_to(self, method: str) -> list[RecordedCall]:
        return [c for c in self.calls if c.method == method]

    def sent_to(self, chat_id: int) -> list[SentMessage]:
        return [m for m in self.sent if m.chat_id == chat_id]

    @property
    def pending_updates(self) -> list[dict]:
        return list(self._updates)

    # ------------------------------------------------------------ HTTP
    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        at = time.monotonic()
        path = request.path
        prefix = f"/bot{self.token}/"
        file_prefix = f"/file/bot{self.token}/"
        if request.method == "GET" and path.startswith(file_prefix):
            return self._serve_file(path[len(file_prefix):])
        if not path.startswith(prefix):
            return self._unexpected(f"{request.method} {path}: wrong token or path", status=404)
        method = path[len(prefix):]
        if method not in METHODS:
            return self._unexpected(f"unknown Bot API method {method!r}", status=404)
        if request.method != "POST":
            return self._unexpected(f"{request.method} {method}: PTB always POSTs", status=405)
        try:
            params, files = await self._read_params(request, method)
        except ValueError as exc:
            return self._unexpected(f"{method}: {exc}", status=400)
        call = RecordedCall(method, params, at, files=files)
        self.calls.append(call)
        fault = self._take_fault(method)
        if fault is not None and fault.drop:
            call.status = 0
            return await self._drop(request)
        if fault is not None:
            call.status = fault.status
            return self._error(fault.status, fault.description, fault.parameters)
        for key in ("chat_id", "from_chat_id"):
            if params.get(key) in self._migrated:
                call.status = 400
                return self._error(400, "Bad Request: group chat was upgraded to a supergroup chat",
                                   {"migrate_to_chat_id": self._migrated[params[key]]})
        try:
            result = await getattr(self, f"_m_{method}")(params, files)
        except BadRequest as exc:
            call.status = 400
            return self._error(400, f"Bad Request: {exc}")
        except _Forbidden as exc:
            call.status = 403
            return self._error(403, f"Forbidden: {exc}")
        except _ConflictError as exc:
            call.status = 409
            return self._error(409, f"Conflict: {exc}")
        return web.json_response({"ok": True, "result": result})

    def _unexpected(self, what: str, *, status: int) -> web.Response:
        self.errors.append(what)
        return self._error(status, f"Not Found: {what}" if status == 404 else f"Bad Request: {what}")

    @staticmethod
    def _error(status: int, description: str, parameters: dict[str, Any] | None = None) -> web.Response:
        body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
        if parameters:
            body["parameters"] = parameters
        return web.json_response(body, status=status)

    @staticmethod
    async def _drop(request: web.Request) -> web.StreamResponse:
        transport = request.transport
        if transport is not None:
            transport.abort()
        raise asyncio.CancelledError  # aiohttp treats this as "client went away": nothing is written

    def _take_fault(self, method: str) -> _Fault | None:
        for fault in self._faults:
            if fault.method == method and fault.remaining > 0:
                fault.remaining -= 1
                return fault
        return None

    async def _read_params(self, request: web.Request, method: str) -> tuple[dict[str, Any], dict[str, bytes]]:
        required, optional = METHODS[method]
        schema = {**required, **optional}
        raw: dict[str, Any] = {}
        files: dict[str, bytes] = {}
        if request.content_type == "application/json":
            body = await request.json()
            if not isinstance(body, dict):
                raise ValueError("JSON body must be an object")
            decoded = dict(body)
        else:
            if request.can_read_body and request.content_type not in (
                "application/x-www-form-urlencoded", "multipart/form-data"):
                raise ValueError(f"unexpected content type {request.content_type!r}")
            form = await request.post() if request.can_read_body else {}
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    files[key] = value.file.read()
                else:
                    raw[key] = value
            decoded = {}
            for key, value in raw.items():
                if key in files:
                    continue
                kind = schema.get(key)
                if kind == J:
                    try:
                        decoded[key] = json.loads(value)
                    except json.JSONDecodeError:
                        if key not in ("chat_id", "from_chat_id"):  # "@channelname" is a plain string
                            raise ValueError(f"parameter {key!r} is not JSON: {value[:40]!r}") from None
                        decoded[key] = value
                else:
                    decoded[key] = value
        unknown = set(decoded) - set(schema) - set(files)
        if unknown:
            raise ValueError(f"unexpected parameters {sorted(unknown)}")
        missing = set(required) - set(decoded) - set(files)  # a file may come as the multipart part itself
        if missing:
            raise ValueError(f"missing required parameters {sorted(missing)}")
        for key, kind in schema.items():
            if kind == F and isinstance(decoded.get(key), str) and decoded[key].startswith("attach://"):
                name = decoded[key][len("attach://"):]
                if name not in files:
                    raise ValueError(f"{key} refers to missing upload {name!r}")
        return decoded, files

    def _serve_file(self, file_path: str) -> web.Response:
        for path, content in self._files.values():
            if path == file_path:
                return web.Response(body=content)
        return self._unexpected(f"GET unknown file {file_path!r}", status=404)

    # ------------------------------------------------------------ method semantics
    def _bot_user(self) -> dict[str, Any]:
        return {"id": BOT_ID, "is_bot": True, "first_name": "Supportlah Test", "username": BOT_USERNAME}

    def _chat(self, chat_id: int) -> dict[str, Any]:
        if chat_id > 0:
            return {"id": chat_id, "type": "private", "first_name": "Customer"}
        return {"id": chat_id, "type": "supergroup", "title": "Staff", "is_forum": True}

    def _check_recipient(self, params: dict[str, Any]) -> tuple[int, int | None]:
        chat_id = params["chat_id"]
        if not isinstance(chat_id, int):
            raise BadRequest("chat not found")
        if chat_id in self._blocked:
            raise _Forbidden("bot was blocked by the user")
        thread_id = params.get("message_thread_id")
        if thread_id is not None and (chat_id, thread_id) not in self._topics:
            raise BadRequest("message thread not found")
        if thread_id is not None and self._topics[(chat_id, thread_id)]["closed"]:
            raise BadRequest("TOPIC_CLOSED")
        return chat_id, thread_id

    def _caption(self, params: dict[str, Any]) -> str | None:
        caption = params.get("caption")
        if not caption:
            return None
        visible = self._visible(caption, params.get("parse_mode"), limit=MAX_CAPTION_UTF16,
                                too_long="message caption is too long")
        return visible

    def _visible(self, text: str, parse_mode: str | None, *, limit: int = MAX_TEXT_UTF16,
                 too_long: str = "message is too long") -> str:
        if parse_mode is None:
            visible = text
        elif parse_mode == "HTML":
            try:
                visible = parse_telegram_html(text)
            except ValueError as exc:
                raise BadRequest(f"can't parse entities: {exc}") from exc
        else:
            raise BadRequest(f"unsupported parse_mode {parse_mode!r} in this fake")
        if not visible.strip():
            raise BadRequest("message text is empty")
        if _utf16_len(visible) > limit:
            raise BadRequest(too_long)
        return visible

    @staticmethod
    def _check_markup(markup: Any) -> None:
        if markup is None:
            return
        rows = markup.get("inline_keyboard") if isinstance(markup, dict) else None
        if not isinstance(rows, list):
            raise BadRequest("can't parse reply keyboard markup JSON object")
        for row in rows:
            for button in row:
                if not button.get("text"):
                    raise BadRequest("BUTTON_TEXT_EMPTY")
                data = button.get("callback_data")
                if data is not None and not 1 <= len(data.encode("utf-8")) <= MAX_CALLBACK_BYTES:
                    raise BadRequest("BUTTON_DATA_INVALID")

    def _message(self, chat_id: int, thread_id: int | None, **content: Any) -> dict[str, Any]:
        message: dict[str, Any] = {"message_id": next(self._message_ids), "date": int(time.time()),
                                   "chat": self._chat(chat_id), "from": self._bot_user(), **content}
        if thread_id is not None:
            message["message_thread_id"] = thread_id
            message["is_topic_message"] = True
        return message

    async def _m_getMe(self, params: dict, files: dict) -> dict:
        return {**self._bot_user(), "can_join_groups": True, "can_read_all_group_messages": False,
                "supports_inline_queries": False}

    async def _m_sendMessage(self, params: dict, files: dict) -> dict:
        chat_id, thread_id = self._check_recipient(params)
        visible = self._visible(params["text"], params.get("parse_mode"))
        self._check_markup(params.get("reply_markup"))
        message = self._message(chat_id, thread_id, text=visible)
        if params.get("reply_markup"):
            message["reply_markup"] = params["reply_markup"]
        self.sent.append(SentMessage(message["message_id"], chat_id, visible, params["text"],
                                     params.get("parse_mode"), params.get("reply_markup"), thread_id,
                                     time.monotonic()))
        return message

    async def _m_sendChatAction(self, params: dict, files: dict) -> bool:
        self._check_recipient(params)
        if params["action"] not in ("typing", "upload_photo", "record_video", "upload_video", "record_voice",
                                    "upload_voice", "upload_document", "choose_sticker", "find_location"):
            raise BadRequest("wrong parameter action in request")
        return True

    async def _m_answerCallbackQuery(self, params: dict, files: dict) -> bool:
        if params["callback_query_id"] in self.answered_callbacks:
            raise BadRequest("query is too old and response timeout expired or query ID is invalid")
        if len(params.get("text") or "") > MAX_CALLBACK_ANSWER_CHARS:
            raise BadRequest("MESSAGE_TOO_LONG")
        self.answered_callbacks.append(params["callback_query_id"])
        self.callback_answers.append((params["callback_query_id"], params.get("text")))
        return True

    async def _m_setMyCommands(self, params: dict, files: dict) -> bool:
        commands = params["commands"]
        if not isinstance(commands, list) or len(commands) > 100:
            raise BadRequest("commands must be a list of at most 100 BotCommand")
        for command in commands:
            if not _COMMAND.fullmatch(command.get("command", "")):
                raise BadRequest("BOT_COMMAND_INVALID")
            if not 1 <= len(command.get("description", "")) <= 256:
                raise BadRequest("BOT_COMMAND_DESCRIPTION_INVALID")
        self.commands[params.get("language_code")] = commands
        return True

    async def _m_setWebhook(self, params: dict, files: dict) -> bool:
        if not params["url"].startswith("https://"):
            raise BadRequest("bad webhook: An HTTPS URL must be provided for webhook")
        try:
            port = urlsplit(params["url"]).port or 443
        except ValueError:
            port = -1
        if port not in WEBHOOK_PORTS:
            raise BadRequest("bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443")
        self.webhook = params
        return True

    async def _m_deleteWebhook(self, params: dict, files: dict) -> bool:
        self.webhook = None
        return True

    async def _m_getUpdates(self, params: dict, files: dict) -> list[dict]:
        if self.webhook is not None:
            raise _ConflictError("can't use getUpdates method while webhook is active; "
                                 "use deleteWebhook to delete the webhook first")
        offset = params.get("offset")
        limit = params.get("limit") or 100
        deadline = time.monotonic() + float(params.get("timeout") or 0)
        if offset is not None:  # asking with an offset confirms every update below it
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        while True:
            ready = [u for u in self._updates if offset is None or u["update_id"] >= offset]
            if ready or self._closing or time.monotonic() >= deadline:
                return ready[:limit]
            self._updates_changed.clear()
            try:
                await asyncio.wait_for(self._updates_changed.wait(), timeout=deadline - time.monotonic())
            except TimeoutError:
                return []

    async def _m_getFile(self, params: dict, files: dict) -> dict:
        file_id = params["file_id"]
        if file_id not in self._files:
            raise BadRequest("invalid file_id")
        path, content = self._files[file_id]
        return {"file_id": file_id, "file_unique_id": f"u{file_id}", "file_size": len(content), "file_path": path}

    async def _m_editMessageText(self, params: dict, files: dict) -> dict | bool:
        visible = self._visible(params["text"], params.get("parse_mode"))
        self._check_markup(params.get("reply_markup"))
        if "inline_message_id" in params:
            return True
        if "chat_id" not in params or "message_id" not in params:
            raise BadRequest("message identifier is not specified")
        for sent in self.sent:
            if sent.chat_id == params["chat_id"] and sent.message_id == params["message_id"]:
                if (visible, params.get("reply_markup")) == (sent.text, sent.reply_markup):
                    raise BadRequest("message is not modified: specified new message content and reply markup "
                                     "are exactly the same as a content and reply markup of the current message")
                sent.text, sent.raw_text = visible, params["text"]
                sent.reply_markup = params.get("reply_markup")  # an edit without one removes the keyboard
                message = self._message(sent.chat_id, sent.thread_id, text=visible)
                message["message_id"] = sent.message_id
                message["edit_date"] = int(time.time())
                return message
        raise BadRequest("message to edit not found")

    async def _m_createForumTopic(self, params: dict, files: dict) -> dict:
        chat_id = params["chat_id"]
        if not isinstance(chat_id, int) or chat_id > 0 or chat_id in self._not_forums:
            raise BadRequest("the chat is not a forum")
        if not 1 <= len(params["name"]) <= 128:
            raise BadRequest("TOPIC_TITLE_EMPTY" if not params["name"] else "topic name is too long")
        thread_id = next(self._thread_ids)
        self.add_topic(chat_id, thread_id, params["name"])
        return {"message_thread_id": thread_id, "name": params["name"], "icon_color": params.get("icon_color", 7322096)}

    async def _m_editForumTopic(self, params: dict, files: dict) -> bool:
        key = (params["chat_id"], params["message_thread_id"])
        if key not in self._topics:
            raise BadRequest("message thread not found")
        if "name" in params:
            if params["name"] == self._topics[key]["name"]:
                raise BadRequest("TOPIC_NOT_MODIFIED")
            self._topics[key]["name"] = params["name"]
        return True

    async def _m_closeForumTopic(self, params: dict, files: dict) -> bool:
        key = (params["chat_id"], params["message_thread_id"])
        if key not in self._topics:
            raise BadRequest("message thread not found")
        if self._topics[key]["closed"]:
            raise BadRequest("TOPIC_NOT_MODIFIED")
        self._topics[key]["closed"] = True
        return True

    async def _m_sendPhoto(self, params: dict, files: dict) -> dict:
        chat_id, thread_id = self._check_recipient(params)
        caption = self._caption(params)
        reference = params.get("photo")
        attached = reference[len("attach://"):] if isinstance(reference, str) and reference.startswith("attach://") else None
        upload = files.get(attached) if attached else files.get("photo")
        if upload is not None and not upload.startswith(_IMAGE_MAGIC):
            raise BadRequest("IMAGE_PROCESS_FAILED")
        if upload is not None and len(upload) > 10 * 1024 * 1024:
            raise BadRequest("PHOTO_INVALID_DIMENSIONS")
        content: dict[str, Any] = {"photo": [{"file_id": f"photo{len(self.calls)}", "file_unique_id": "p",
                                              "width": 640, "height": 480}]}
        if caption:
            content["caption"] = caption
        return self._message(chat_id, thread_id, **content)

    async def _m_sendDocument(self, params: dict, files: dict) -> dict:
        chat_id, thread_id = self._check_recipient(params)
        caption = self._caption(params)
        content: dict[str, Any] = {"document": {"file_id": f"doc{len(self.calls)}", "file_unique_id": "d"}}
        if caption:
            content["caption"] = caption
        return self._message(chat_id, thread_id, **content)

    async def _m_copyMessage(self, params: dict, files: dict) -> dict:
        chat_id, thread_id = self._check_recipient(params)
        if not isinstance(params["message_id"], int) or not isinstance(params["from_chat_id"], int):
            raise BadRequest("message to copy not found")
        message_id = next(self._message_ids)
        self.copies.append({"chat_id": chat_id, "from_chat_id": params["from_chat_id"],
                            "message_id": params["message_id"], "thread_id": thread_id,
                            "reply_parameters": params.get("reply_parameters"), "new_message_id": message_id})
        return {"message_id": message_id}

    async def _m_setMessageReaction(self, params: dict, files: dict) -> bool:
        reaction = params.get("reaction") or []
        if not isinstance(reaction, list):
            raise BadRequest("REACTION_INVALID")
        for item in reaction:
            if not isinstance(item, dict) or item.get("type") != "emoji" or item.get("emoji") not in REACTION_EMOJI:
                raise BadRequest("REACTION_INVALID")
        self.reactions.append({"chat_id": params["chat_id"], "message_id": params["message_id"],
                               "emoji": [item["emoji"] for item in reaction]})
        return True

    async def _m_reopenForumTopic(self, params: dict, files: dict) -> bool:
        key = (params["chat_id"], params["message_thread_id"])
        if key not in self._topics:
            raise BadRequest("message thread not found")
        if not self._topics[key]["closed"]:
            raise BadRequest("TOPIC_NOT_MODIFIED")
        self._topics[key]["closed"] = False
        return True

    async def _m_deleteForumTopic(self, params: dict, files: dict) -> bool:
        key = (params["chat_id"], params["message_thread_id"])
        if key not in self._topics:
            raise BadRequest("message thread not found")
        del self._topics[key]
        return True


class _Forbidden(Exception):
    pass


class _ConflictError(Exception):
    pass


class UpdateFactory:
    """Update payloads as Telegram sends them, with increasing update and message ids."""

    def __init__(self, first_update_id: int = 500_000) -> None:
        self._update_ids = itertools.count(first_update_id)
        self._message_ids = itertools.count(1)
        self.now = 1_750_000_000

    @staticmethod
    def user(user_id: int, first_name: str = "Mei Ling", last_name: str | None = "Tan",
             language_code: str | None = "en") -> dict[str, Any]:
        user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
        if last_name:
            user["last_name"] = last_name
        if language_code:
            user["language_code"] = language_code
        return user

    @staticmethod
    def chat(chat_id: int) -> dict[str, Any]:
        if chat_id > 0:
            return {"id": chat_id, "type": "private", "first_name": "Mei Ling", "last_name": "Tan"}
        return {"id": chat_id, "type": "supergroup", "title": "Staff", "is_forum": True}

    def message_payload(self, chat_id: int, *, user_id: int | None = None, language_code: str | None = "en",
                        chat: dict[str, Any] | None = None, thread_id: int | None = None,
                        **content: Any) -> dict[str, Any]:
        message: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "date": self.now,
            "chat": chat or self.chat(chat_id),
            "from": self.user(user_id if user_id is not None else abs(chat_id), language_code=language_code),
            **content,
        }
        if thread_id is not None:
            message["message_thread_id"] = thread_id
            message["is_topic_message"] = True
        return message

    def message(self, chat_id: int, **kwargs: Any) -> dict[str, Any]:
        return {"update_id": next(self._update_ids), "message": self.message_payload(chat_id, **kwargs)}

    def text(self, chat_id: int, text: str, **kwargs: Any) -> dict[str, Any]:
        entities = [{"type": "bot_command", "offset": 0, "length": len(text.split(" ", 1)[0])}] \
            if text.startswith("/") else None
        extra = {"entities": entities} if entities else {}
        return self.message(chat_id, text=text, **extra, **kwargs)

    def photo(self, chat_id: int, caption: str | None = None, **kwargs: Any) -> dict[str, Any]:
        sizes = [
            {"file_id": "photo-small", "file_unique_id": "ps", "width": 90, "height": 67, "file_size": 1_200},
            {"file_id": "photo-large", "file_unique_id": "pl", "width": 1280, "height": 960, "file_size": 98_000},
            {"file_id": "photo-medium", "file_unique_id": "pm", "width": 320, "height": 240, "file_size": 15_000},
        ]
        extra = {"caption": caption} if caption else {}
        return self.message(chat_id, photo=sizes, **extra, **kwargs)

    def document(self, chat_id: int, file_name: str = "invoice.pdf", mime_type: str = "application/pdf",
                 size: int = 52_000, **kwargs: Any) -> dict[str, Any]:
        doc = {"file_id": f"doc-{file_name}", "file_unique_id": "du", "file_name": file_name,
               "mime_type": mime_type, "file_size": size}
        return self.message(chat_id, document=doc, **kwargs)

    def voice(self, chat_id: int, **kwargs: Any) -> dict[str, Any]:
        voice = {"file_id": "voice-1", "file_unique_id": "vu", "duration": 4, "mime_type": "audio/ogg",
                 "file_size": 9_000}
        return self.message(chat_id, voice=voice, **kwargs)

    def audio(self, chat_id: int, **kwargs: Any) -> dict[str, Any]:
        audio = {"file_id": "audio-1", "file_unique_id": "au", "duration": 30, "mime_type": "audio/mpeg",
                 "file_name": "noise.mp3", "file_size": 480_000}
        return self.message(chat_id, audio=audio, **kwargs)

    def location(self, chat_id: int, latitude: float, longitude: float, **kwargs: Any) -> dict[str, Any]:
        return self.message(chat_id, location={"latitude": latitude, "longitude": longitude}, **kwargs)

    def contact(self, chat_id: int, phone_number: str, first_name: str, last_name: str | None = None,
                **kwargs: Any) -> dict[str, Any]:
        contact: dict[str, Any] = {"phone_number": phone_number, "first_name": first_name}
        if last_name:
            contact["last_name"] = last_name
        return self.message(chat_id, contact=contact, **kwargs)

    def sticker(self, chat_id: int, **kwargs: Any) -> dict[str, Any]:
        sticker = {"file_id": "sticker-1", "file_unique_id": "su", "type": "regular", "width": 512,
                   "height": 512, "is_animated": False, "is_video": False}
        return self.message(chat_id, sticker=sticker, **kwargs)

    def edited(self, chat_id: int, message_id: int, text: str, **kwargs: Any) -> dict[str, Any]:
        payload = self.message_payload(chat_id, text=text, edit_date=self.now + 30, **kwargs)
        payload["message_id"] = message_id
        return {"update_id": next(self._update_ids), "edited_message": payload}

    def callback(self, chat_id: int, data: str, *, message_id: int = 1, language_code: str | None = "en",
                 query_id: str | None = None, user_id: int | None = None,
                 first_name: str = "Mei Ling") -> dict[str, Any]:
        update_id = next(self._update_ids)
        bot_message = {"message_id": message_id, "date": self.now, "chat": self.chat(chat_id),
                       "from": {"id": BOT_ID, "is_bot": True, "first_name": "Supportlah Test",
                                "username": BOT_USERNAME},
                       "text": "Our opening hours are 9am to 6pm."}
        return {"update_id": update_id, "callback_query": {
            "id": query_id or f"cbq-{update_id}",
            "from": self.user(user_id if user_id is not None else abs(chat_id), first_name,
                              language_code=language_code),
            "chat_instance": "ci-1", "message": bot_message, "data": data}}

    def group_text(self, chat_id: int, text: str, *, user_id: int = 777, **kwargs: Any) -> dict[str, Any]:
        chat = {"id": chat_id, "type": "supergroup", "title": "Some group"}
        return self.message(chat_id, text=text, user_id=user_id, chat=chat, **kwargs)
