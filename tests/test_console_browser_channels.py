"""The console answers Telegram and WhatsApp customers, in real Chromium against a real server.

`supportlah serve` runs with Telegram pointed at the fake Bot API and Twilio at the fake
Twilio API (both served by this test in a background event loop); customers write through
the real webhooks. Staff reply from the console page; the fakes show what the customers got,
including the WhatsApp template used once the 24-hour window has closed.
"""
from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.fakes.telegram_api import TEST_TOKEN, FakeTelegramAPI, UpdateFactory
from tests.fakes.twilio_api import FakeTwilioApi, twilio_signature
from tests.console_server import cli, running_server, server_env
from tests.test_browser import _free_port, browser, playwright  # noqa: F401  (fixtures)
from tests.test_console_browser import PASSWORD, STAFF, _shoot, _sign_in

pytestmark = [pytest.mark.timeout(300),
              pytest.mark.filterwarnings("ignore:The 'auth' parameter is deprecated:DeprecationWarning")]

ACCOUNT_SID = "AC" + "5" * 32
AUTH_TOKEN = "console-browser-auth-token"
BUSINESS_NUMBER = "whatsapp:+6560002222"
WA_CUSTOMER = "whatsapp:+6598765432"
TG_CUSTOMER = 515151
SECRET = "console-browser-webhook-secret"
TEMPLATE = "HX" + "2" * 32


class Fakes:
    """The fake Bot API and the fake Twilio API in an event loop of their own thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.telegram = FakeTelegramAPI()
        self.twilio = FakeTwilioApi(ACCOUNT_SID, AUTH_TOKEN)
        self.twilio.add_content(TEMPLATE, "Hello again from us: {{1}} Reply to continue the chat.")  # approved

    def run(self, coroutine):  # noqa: ANN001, ANN201
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=30)

    def __enter__(self) -> Fakes:
        self.thread.start()
        self.run(self.telegram.start())
        self.run(self.twilio.start())
        return self

    def __exit__(self, *exc: object) -> None:
        self.run(self.telegram.close())
        self.run(self.twilio.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Fakes, Path]]:
    data_dir = tmp_path_factory.mktemp("console-channels")
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    with Fakes() as fakes:
        env = server_env(
            data_dir, port=str(port), public_url=base_url, pdpa_consent_mode="off",
            business_hours="daily 00:00-24:00", telegram_bot_token=TEST_TOKEN,
            telegram_api_base_url=fakes.telegram.url, telegram_webhook_secret=SECRET,
            twilio_account_sid=ACCOUNT_SID, twilio_auth_token=AUTH_TOKEN, twilio_whatsapp_from=BUSINESS_NUMBER,
            twilio_api_base_url=fakes.twilio.base_url, twilio_template_content_sid=TEMPLATE)
        cli(env, "console", "add-user", STAFF, "--role", "staff", "--name", "Mei", stdin=f"{PASSWORD}\n")
        with running_server(env, "serve", base_url=base_url):
            yield base_url, fakes, data_dir


@pytest.fixture
def staff(browser: Browser, rig) -> Iterator[Page]:  # noqa: F811, ANN001
    context: BrowserContext = browser.new_context(base_url=rig[0], viewport={"width": 1200, "height": 900})
    context.set_default_timeout(20_000)
    page = context.new_page()
    _sign_in(page, STAFF)
    yield page
    context.close()


def _post(url: str, body: bytes, headers: dict[str, str]) -> None:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def _wait_for(check, what: str, seconds: float = 30.0):  # noqa: ANN001, ANN202
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _open_conversation(staff: Page, channel: str) -> None:
    staff.goto("/console/inbox")
    staff.get_by_label("Channel").select_option(channel)
    row = staff.locator("#inbox-rows tbody tr").filter(has_text="waiting for staff").first
    expect(row).to_be_visible()
    row.get_by_role("link").click()
    expect(staff.get_by_role("heading", name="Transcript")).to_be_visible()


def _reply(staff: Page, text: str) -> None:
    staff.get_by_label("Your reply (goes to the customer on their channel)").fill(text)
    staff.get_by_role("button", name="Send reply").click()
    expect(staff.locator(".entry-staff .text").filter(has_text=text)).to_be_visible(timeout=30_000)


def test_a_telegram_customer_is_answered_from_the_console(staff: Page, rig):  # noqa: ANN001
    base_url, fakes, _data_dir = rig
    update = UpdateFactory().text(TG_CUSTOMER, "I want to talk to a person please")
    _post(f"{base_url}/webhooks/telegram", json.dumps(update).encode(),
          {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": SECRET})
    _wait_for(lambda: fakes.telegram.sent_to(TG_CUSTOMER), "the hand-off message on Telegram")
    _open_conversation(staff, "telegram")
    _reply(staff, "Hi from Mei on Telegram")
    got = _wait_for(lambda: [m for m in fakes.telegram.sent_to(TG_CUSTOMER) if m.text == "Hi from Mei on Telegram"],
                    "the staff reply on Telegram")
    assert len(got) == 1
    _shoot(staff, "conversation-telegram")


def test_a_whatsapp_customer_after_24_hours_gets_the_template(staff: Page, rig):  # noqa: ANN001
    base_url, fakes, data_dir = rig
    path = "/webhooks/twilio/whatsapp"
    form = {"MessageSid": "SM" + "c" * 32, "AccountSid": ACCOUNT_SID, "From": WA_CUSTOMER, "To": BUSINESS_NUMBER,
            "Body": "Can I speak to a human?", "NumMedia": "0", "ProfileName": "Siti", "WaId": WA_CUSTOMER[-10:]}
    _post(base_url + path, urllib.parse.urlencode(form).encode(),
          {"Content-Type": "application/x-www-form-urlencoded",
           "X-Twilio-Signature": twilio_signature(AUTH_TOKEN, base_url + path, form)})
    _wait_for(lambda: [m for m in fakes.twilio.messages if m.to == WA_CUSTOMER], "the hand-off message on WhatsApp")
    _backdate_last_inbound(data_dir, WA_CUSTOMER, hours=25)  # the customer last wrote 25 hours ago
    _open_conversation(staff, "whatsapp")
    expect(staff.get_by_role("heading", name="Conversation with Siti")).to_be_visible()
    _reply(staff, "Sorry for the wait: your part has arrived.")
    sent = _wait_for(lambda: [m for m in fakes.twilio.messages if m.content_sid == TEMPLATE],
                     "the template on WhatsApp")
    assert len(sent) == 1  # Twilio reports a template send with the template rendered as its body
    assert sent[0].body == "Hello again from us: Sorry for the wait: your part has arrived. Reply to continue the chat."
    assert json.loads(sent[0].content_variables) == {"1": "Sorry for the wait: your part has arrived."}
    expect(staff.locator(".entry-staff .delivery").last).to_have_text("sent", timeout=20_000)


def _backdate_last_inbound(data_dir: Path, sender: str, *, hours: int) -> None:
    with sqlite3.connect(data_dir / "supportlah.db", timeout=10) as db:
        [(stored,)] = db.execute("SELECT last_inbound_at FROM contacts WHERE channel_user_id = ?", (sender,))
        earlier = datetime.fromisoformat(stored) - timedelta(hours=hours)
        db.execute("UPDATE contacts SET last_inbound_at = ? WHERE channel_user_id = ?",
                   (earlier.strftime("%Y-%m-%d %H:%M:%S.%f"), sender))
