"""PII never reaches the logs: a full WhatsApp conversation (signed webhook, worker, agent, notice, Twilio
send, delivery callback, a data request) logged at DEBUG through the app's JSON formatter contains no phone
number, NRIC, email or card number, while the message id links the lines of one message."""
from __future__ import annotations

import io
import json
import logging
import sys

import pytest
from aiohttp.test_utils import TestClient, TestServer

from channels.messages import Channel
from supportlah import migrate
from supportlah.app import create_app
from supportlah.container import build
from supportlah.logs import configure_logging, mask_pii
from tests.fakes.twilio_api import FakeTwilioApi, twilio_signature
from tests.harness import drain

pytestmark = pytest.mark.filterwarnings("ignore:The 'auth' parameter is deprecated:DeprecationWarning")

ACCOUNT_SID = "AC" + "7" * 32
AUTH_TOKEN = "logs-auth-token"
PUBLIC_URL = "https://support.example.com"
BUSINESS = "whatsapp:+6560001111"
CUSTOMER = "whatsapp:+6591234567"
SECRETS = ["91234567", "9123 4567", "6591234567", "S1234567D", "s1234567d", "mei.ling@example.com",
           "4111 1111 1111 1111", "4111111111111111", "Tan Mei Ling"]


def form(sid: str, body: str) -> dict[str, str]:
    return {"MessageSid": sid, "AccountSid": ACCOUNT_SID, "From": CUSTOMER, "To": BUSINESS, "Body": body,
            "NumMedia": "0", "ProfileName": "Tan Mei Ling", "WaId": "6591234567"}


async def post(client: TestClient, path: str, params: dict[str, str]):  # noqa: ANN201
    signature = twilio_signature(AUTH_TOKEN, PUBLIC_URL + path, params)
    return await client.post(path, data=params, headers={"X-Twilio-Signature": signature})


@pytest.fixture
def captured(monkeypatch):
    """Logging configured exactly as ``supportlah serve -v`` configures it (JSON, DEBUG), into a buffer."""
    buffer = io.StringIO()
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    saved_levels = {name: logging.getLogger(name).level for name in logging.root.manager.loggerDict}
    monkeypatch.setattr(sys, "stderr", buffer)
    configure_logging("DEBUG", json_output=True)
    try:
        yield buffer
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        for name, level in saved_levels.items():
            logging.getLogger(name).setLevel(level)


async def test_a_full_conversation_logs_no_personal_data(backend, captured):
    twilio = FakeTwilioApi(ACCOUNT_SID, AUTH_TOKEN)
    await twilio.start()
    settings = backend.settings(pdpa_consent_mode="notice", public_url=PUBLIC_URL, twilio_account_sid=ACCOUNT_SID,
                                twilio_auth_token=AUTH_TOKEN,
                                twilio_whatsapp_from=BUSINESS, twilio_api_base_url=twilio.base_url)
    if settings.database_url:
        await migrate.upgrade(settings.sqlalchemy_url)
    container = await build(settings, start_queue=False)
    try:
        async with TestClient(TestServer(create_app(container))) as client:
            said = [
                "Hi, I'm Tan Mei Ling, my NRIC is S1234567D, call me on 9123 4567 or mei.ling@example.com",
                "My card 4111 1111 1111 1111 was charged twice, I want to talk to a person",
                "my data",
            ]
            for index, body in enumerate(said):
                assert (await post(client, "/webhooks/twilio/whatsapp", form(f"SM{index:032d}", body))).status == 200
                await drain(container)
            for sent in twilio.messages:
                callback = {"MessageSid": sent.sid, "MessageStatus": "delivered", "AccountSid": ACCOUNT_SID,
                            "To": CUSTOMER}
                assert (await post(client, "/webhooks/twilio/status", callback)).status == 204
            conversation_id = await container.store.conversation_for(Channel.WHATSAPP, CUSTOMER)
            message_ids = [t["message_id"] for t in await container.store.transcript(conversation_id)
                           if t["role"] == "user"]
    finally:
        await container.close()
        await twilio.stop()

    assert len(twilio.messages) >= 4 and twilio.errors == []  # notice + answers + the data copy went out
    output = captured.getvalue()
    lines = [json.loads(line) for line in output.splitlines()]
    assert len(lines) > 20
    for secret in SECRETS:
        assert secret not in output, f"{secret!r} leaked into the logs"
    for message_id in message_ids:  # the correlation id survives masking and links each message's lines
        events = {line["event"] for line in lines if line.get("message_id") == message_id}
        assert {"message accepted", "reply recorded"} <= events


def test_masking_covers_singapore_formats_and_keeps_ids_and_dates():
    assert mask_pii("call 91234567 or +65 8123-4567") == "call [phone] or [phone]"
    assert mask_pii("FIN G1234567X / nric s7654321d") == "FIN [nric] / nric [nric]"
    assert mask_pii("card 4111-1111-1111-1111") == "card [card]"
    assert mask_pii("mail a.b+c@example.com.sg") == "mail [email]"
    assert mask_pii("whatsapp:+6591234567") == "[phone]"
    kept = ["message 3f2a123456789abc0123456789abcdef", "at 2025-01-31T10:00:00+00:00", "127.0.0.1:8000",
            "took 0.25 s", "chunk 9f3e2b1c:12"]
    assert [mask_pii(text) for text in kept] == kept


def test_a_terminal_gets_readable_lines_and_anything_else_json():
    """Same fields and the same masking either way; JSON unless stderr is a terminal or it is asked for."""
    from supportlah.logs import ConsoleFormatter, JsonFormatter, wants_json

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert wants_json(None, io.StringIO()) is True and wants_json(None, Terminal()) is False
    assert wants_json(True, Terminal()) is True and wants_json(False, io.StringIO()) is False
    record = logging.makeLogRecord({"name": "supportlah.test", "levelname": "INFO", "levelno": logging.INFO,
                                    "msg": "reply sent to 91234567", "message_id": "ab12cd34"})
    line = ConsoleFormatter().format(record)
    assert "INFO  supportlah.test  reply sent to [phone]" in line and 'message_id="ab12cd34"' in line
    assert not line.startswith("{")
    payload = json.loads(JsonFormatter().format(record))
    assert payload["event"] == "reply sent to [phone]" and payload["message_id"] == "ab12cd34"
