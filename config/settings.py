"""All runtime settings, read once by the composition root.

Every external base URL and credential is a setting so tests can point the real
SDKs at local fakes. Env prefix ``SUPPORTLAH_``; a ``.env`` file is honoured.
"""
from __future__ import annotations

from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from config.paths import PROFILE_FILE


class SpeechModel(StrEnum):
    """The Whisper models the ``voice`` extra ships (see ``agent/local_transcription.py``)."""

    BASE = "base"  # multilingual: English, Chinese, Malay, Tamil
    TINY_EN = "tiny.en"  # English only, smaller and faster


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SUPPORTLAH_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
    )

    # --- state and storage -------------------------------------------------
    data_dir: Path = Field(default=Path(".supportlah"), description="All embedded-mode state lives here.")
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy async URL. Unset: SQLite under data_dir. Production: postgresql+asyncpg://…",
    )
    database_pre_ping: bool = Field(
        default=False,
        description="Test every pooled connection before use (three extra round trips per transaction). Off: a "
                    "dropped connection is found on first use, the pool is renewed and the ingress retries once.",
    )
    redis_url: str | None = Field(default=None, description="Unset: in-process queue. Set: Redis + arq workers.")
    redis_prefix: str = Field(default="supportlah", description="Key prefix for everything we keep in Redis.")

    # --- HTTP server --------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    public_url: str | None = Field(default=None, description="The URL the internet reaches us at (webhook signatures).")
    max_message_chars: int = Field(default=4000, ge=1)

    # --- business profile ---------------------------------------------------
    business_name: str = Field(default="our team", min_length=1,
                               description="Shown in the chat and greetings; `supportlah init` writes it to the data dir.")
    business_timezone: str = "Asia/Singapore"
    vocabulary_file: Path | None = Field(
        default=None, description="The business's own words (config/vocabulary.py). Unset: data_dir/vocabulary.json.")

    # --- retrieval ----------------------------------------------------------
    chunk_tokens: int = Field(default=512, ge=32)
    chunk_overlap: int = Field(default=100, ge=0)
    retrieval_candidates: int = Field(default=50, ge=1)
    retrieval_top_k: int = Field(default=5, ge=1)
    embed_threads: int = Field(default=2, ge=1)
    qdrant_url: str | None = None
    qdrant_api_key: SecretStr | None = None
    qdrant_collection: str = "supportlah_chunks"

    # --- answering ----------------------------------------------------------
    confidence_threshold: float = Field(default=0.7, ge=0.0, le=1.0)
    llm_base_url: str | None = None
    llm_api_key: SecretStr | None = None
    llm_model: str = "gpt-4o-mini"
    llm_timeout_seconds: float = Field(default=30.0, gt=0)
    cohere_api_key: SecretStr | None = None
    cohere_base_url: str | None = None
    rerank_model: str = "rerank-multilingual-v3.0"

    # --- workers ------------------------------------------------------------
    max_jobs: int = Field(default=20, ge=1, description="Jobs one worker process runs at once (LLM calls mostly wait).")
    worker_poll_seconds: float = Field(default=0.02, gt=0, le=5,
                                       description="How often an idle worker looks for new jobs (queue latency).")
    job_max_tries: int = Field(default=5, ge=1)
    recovery_after_seconds: int = Field(default=120, ge=1, description="Re-enqueue messages unanswered this long.")
    job_timeout_seconds: int = Field(default=120, ge=1, description="A job running longer is cancelled and retried.")
    conversation_lock_seconds: float = Field(default=30.0, gt=0, description="Lock TTL; a dead holder frees it after this.")
    conversation_busy_retry_seconds: float = Field(
        default=30.0, gt=0,
        description="A job that finds its conversation held comes back after this. The holder answers that "
                    "message meanwhile, so the retry only matters when the holder died.")
    send_guard_seconds: int = Field(default=30, ge=1, description="In-flight guard TTL around one provider send.")
    worker_health_seconds: int = Field(default=15, ge=1, description="How often a worker reports in; /readyz allows 3x.")
    shutdown_grace_seconds: int = Field(default=30, ge=0, description="Running jobs may finish this long on shutdown.")

    # --- channels -----------------------------------------------------------
    web_allowed_origins: list[str] = Field(
        default_factory=list,
        description="Origins (scheme://host[:port]) allowed to open the chat: the page's WebSocket and the "
        "embeddable widget's calls. Empty: any.")
    web_greeting: str | None = Field(default=None, description="The chat's first words; unset: a greeting with the "
                                                                "business name.")
    web_example_questions: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Questions the chat offers when it opens (a JSON list, or separated by |); empty: drawn from "
        "the knowledge base's headings.")
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_whatsapp_from: str | None = None
    twilio_api_base_url: str | None = None
    telegram_bot_token: SecretStr | None = None
    telegram_webhook_secret: SecretStr | None = None
    telegram_api_base_url: str | None = None
    telegram_mode: Literal["webhook", "polling"] = "webhook"
    staff_chat_id: int | None = None

    # --- twilio (WhatsApp/SMS) channel: channels/twilio/ ----------------------
    twilio_sms_from: str | None = Field(default=None, description="Plain +E.164 number SMS replies are sent from.")
    twilio_template_content_sid: str | None = Field(
        default=None,
        description="Approved WhatsApp template (HX…) sent when the 24-hour window is closed; {{1}} gets the text.",
    )
    twilio_status_callback_url: str | None = Field(
        default=None, description="Unset: public_url + /webhooks/twilio/status when public_url is set."
    )
    twilio_webhook_shared_keys: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="Webhook SharedKeys as JSON {key id: secret}: requests naming one in "
                    "X-Twilio-Webhooks-Signature-Settings are checked with it (HMAC-SHA256).",
    )
    twilio_delivery_poll_after_seconds: float = Field(
        default=600.0, gt=0, description="Ask Twilio about a sent part with no status callback after this long.")
    twilio_media_max_bytes: int = Field(default=16 * 1024 * 1024, ge=1, description="Largest inbound media we keep.")
    twilio_media_dir: Path | None = Field(default=None, description="Unset: data_dir/media.")
    twilio_send_timeout_seconds: float = Field(default=15.0, gt=0)

    # --- telegram channel: channels/telegram/ -----------------------------------
    telegram_poll_timeout_seconds: int = Field(default=30, ge=0, le=50, description="Long-poll wait per getUpdates.")
    telegram_request_timeout_seconds: float = Field(default=15.0, gt=0, description="Bot API read/write timeout.")
    telegram_private_chat_per_second: float = Field(default=1.0, gt=0, description="Sends per private chat per second.")
    telegram_group_chat_per_minute: float = Field(default=20.0, gt=0, description="Sends per group chat per minute.")
    telegram_overall_per_second: float = Field(default=30.0, gt=0, description="Sends per second for the whole bot.")
    telegram_offset_file: Path | None = Field(default=None, description="Polling offset. Unset: data_dir/telegram_offset.")

    # --- privacy (PDPA), admin API and hardening: memory/pdpa.py, supportlah/admin/ ----------
    pdpa_consent_mode: Literal["notice", "opt-in", "off"] = Field(
        default="notice",
        description="notice: a PDPA notice before the first answer (continuing implies consent); "
        "opt-in: nothing is processed until the customer agrees; off: no notice (not for production).",
    )
    pdpa_notice_version: str = Field(default="1", min_length=1, max_length=32,
                                     description="Bump when the notice changes: everyone sees the new one once.")
    pdpa_policy_url: str | None = Field(default=None, description="Link to the privacy policy shown in the notice.")
    pdpa_notice_texts: dict[str, str] = Field(
        default_factory=dict,
        description='Notice wording per language (en, zh, ms, ta) replacing ours; "{business}" and "{policy}" are filled in.',
    )
    retention_days: int = Field(default=30, ge=1, description="Messages, attachments and memory older are purged.")
    retention_interval_seconds: int = Field(default=3600, ge=10, description="How often the purge runs (embedded).")
    erasure_lock_wait_seconds: float = Field(default=60.0, gt=0, description="Erasure waits this long for a busy conversation.")
    admin_upload_max_bytes: int = Field(default=20 * 1024 * 1024, ge=1024, description="Largest knowledge-base upload.")
    upload_max_pdf_pages: int = Field(default=500, ge=1, description="PDFs with more pages are refused.")
    upload_max_unpacked_bytes: int = Field(default=100 * 1024 * 1024, ge=1024,
                                           description="DOCX (zip) content larger than this once unpacked is refused.")
    upload_max_compression_ratio: float = Field(default=100.0, ge=2, description="Zip members packed tighter are refused.")
    kb_upload_dir: Path | None = Field(default=None, description="Where uploaded documents are kept. Unset: data_dir/kb.")
    # The owner's console (/console): accounts are made with `supportlah console add-user`.
    console_enabled: bool = Field(default=True, description="Serve /console; hand-offs wait there for staff.")
    console_session_hours: int = Field(default=12, ge=1, le=24 * 30, description="A console sign-in lasts this long.")
    console_login_per_minute: int = Field(default=5, ge=1, description="Sign-in attempts per address and per account.")
    console_poll_seconds: int = Field(default=3, ge=1, le=60, description="How often the inbox refreshes itself.")
    console_website_check_seconds: int = Field(default=600, ge=10, description="How often due website re-syncs run.")
    crawl_max_pages: int = Field(default=200, ge=1, le=10_000, description="Pages one website crawl fetches at most.")
    crawl_max_seconds: float = Field(default=300.0, gt=0, description="One website crawl stops after this long.")
    rate_limit_contact_per_minute: int = Field(default=20, ge=1, description="Messages one customer may send per minute.")
    rate_limit_ip_per_minute: int = Field(default=120, ge=1, description="Requests one address may make per minute.")
    trusted_proxy_hops: int = Field(default=0, ge=0, le=5,
                                    description="Reverse proxies in front of us whose X-Forwarded-For we believe.")
    metrics_require_key: bool = Field(default=True, description="/metrics needs an API key with analytics:read.")

    # --- escalation: staff hand-off in the Telegram staff group (escalation/) --------------------
    staff_use_topics: bool = Field(
        default=True,
        description="One forum topic per customer conversation in the staff group. Off, or a group without "
        "topics: replies thread under the ticket card instead.",
    )
    staff_user_ids: Annotated[list[int], NoDecode] = Field(
        default_factory=list,
        description="Telegram user ids allowed to act on tickets (comma-separated). Empty: every member of the "
        "staff group.",
    )
    business_hours: str = Field(
        default="mon-fri 09:00-18:00, sat 09:00-13:00",
        description="When staff answer, in business_timezone: day or day range, then HH:MM-HH:MM spans.",
    )
    public_holidays: Annotated[list[date], NoDecode] = Field(
        default_factory=list, description="Days the team is away all day (YYYY-MM-DD, comma-separated)."
    )
    escalation_sla_minutes: int = Field(default=60, ge=1, description="Business minutes to answer a normal ticket.")
    escalation_sla_high_minutes: int = Field(default=30, ge=1, description="… a high-priority ticket.")
    escalation_sla_urgent_minutes: int = Field(default=15, ge=1, description="… an urgent ticket.")
    escalation_reminder_repeat_minutes: int = Field(
        default=60, ge=1, description="A ticket still waiting past its SLA is pinged again this often."
    )
    escalation_reminder_interval_seconds: int = Field(
        default=60, ge=5, description="How often the SLA check runs (embedded loop and arq cron)."
    )
    escalation_reopen_days: float = Field(
        default=3.0, ge=0, description="A new escalation this soon after a ticket was resolved reopens it."
    )
    escalation_repeat_contact_days: int = Field(
        default=7, ge=0, description="A customer with another ticket this recent gets high priority."
    )
    escalation_urgent_terms: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["urgent", "emergency", "asap", "immediately", "leaking", "flooding", "sparks",
                                 "burning smell", "segera", "kecemasan", "紧急", "急事", "马上", "漏水", "அவசர"],
        description="Words that make a ticket urgent (comma-separated; replaces the default list).",
    )
    escalation_vip_contacts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Customers whose tickets get high priority: WhatsApp numbers (whatsapp:+65…), Telegram chat "
        "ids or web visitor ids, comma-separated.",
    )
    escalation_sensitive_terms: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Extra words (beyond the built-in complaint/refund/legal/safety list) that always bring staff in.",
    )
    escalation_ai_suggestions: bool = Field(
        default=True, description="While staff handle a conversation, post the AI's suggested answer in the topic."
    )

    @field_validator("staff_user_ids", "public_holidays", "escalation_urgent_terms", "escalation_vip_contacts",
                     "escalation_sensitive_terms", mode="before")
    @classmethod
    def _comma_separated(cls, v: object) -> object:
        """Env values are "a, b, c" (a JSON list also works)."""
        return _listed(v, ",")

    # --- voice notes (speech to text, OpenAI-compatible audio API) ------------
    stt_base_url: str | None = Field(default=None, description="e.g. https://api.openai.com/v1; unset: ask to type")
    stt_api_key: SecretStr | None = None
    stt_model: str = "whisper-1"
    # Local speech to text (the optional `voice` extra: faster-whisper + the packaged Whisper model), used when
    # the extra is installed and no stt_base_url is set. Off: customers are asked to type, as without the extra.
    stt_local: bool = Field(default=True,
                            description="transcribe voice notes on this machine when the extra is installed")
    stt_local_model: SpeechModel = Field(default=SpeechModel.BASE,
                                         description="base: multilingual (en, zh, ms, ta); tiny.en: English only")
    stt_model_dir: Path | None = Field(default=None,
                                       description="where the model is assembled; default <data dir>/models")
    stt_max_seconds: float = Field(default=60.0, gt=0, description="longer voice notes are politely declined")
    stt_workers: int = Field(default=1, ge=1, description="voice notes transcribed at once per process")
    stt_cpu_threads: int = Field(default=2, ge=1, description="CPU threads per transcription")
    telegram_media_max_bytes: int = Field(default=20 * 1024 * 1024, ge=1, description="Bot API download limit")

    # --- conversation memory: memory/ (short-term turns, summaries, profiles, follow-ups) ---------
    memory_ttl_seconds: float = Field(default=1800.0, gt=0,
                                      description="Short-term memory expires this long after the last message.")
    memory_summary_after_messages: int = Field(default=20, ge=4,
                                               description="Messages held before the older ones are summarized.")
    memory_keep_recent_messages: int = Field(default=6, ge=2, description="Messages kept verbatim when summarizing.")
    memory_rewrite_followups: bool = Field(default=True,
                                           description="Rewrite follow-ups (\"and for a condo?\") before retrieval.")
    memory_remember_facts: bool = Field(default=True,
                                        description="Keep facts customers state about themselves (with consent).")
    memory_summary_max_tokens: int = Field(default=300, ge=50, description="Size of the extractive summary.")
    memory_budget_instructions: int = Field(default=600, ge=0, description="Prompt tokens for instructions.")
    memory_budget_profile: int = Field(default=150, ge=0, description="Prompt tokens for the customer profile.")
    memory_budget_summary: int = Field(default=300, ge=0, description="Prompt tokens for the rolling summary.")
    memory_budget_turns: int = Field(default=1200, ge=0, description="Prompt tokens for recent turns.")
    memory_budget_chunks: int = Field(default=2000, ge=0, description="Prompt tokens for retrieved chunks.")
    memory_budget_question: int = Field(default=400, ge=1, description="Prompt tokens for the question itself.")

    # --- LLM answering, Cohere rerank, Qdrant server: agent/llm*.py, rag/cohere_rerank.py, rag/qdrant_server.py ---
    business_description: str = Field(default="", description="A sentence or two on what the business does (LLM prompt).")
    business_tone: str = Field(default="friendly, concise and professional", description="How the assistant writes.")
    business_languages: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["English", "Chinese", "Malay", "Tamil"],
        description="Languages the business serves customers in (comma-separated; shown to the model).",
    )
    llm_context_tokens: int = Field(default=8192, ge=2048, description="The model's context window; prompts never exceed it.")
    llm_max_output_tokens: int = Field(default=800, ge=64, description="Most tokens one answer may take.")
    llm_temperature: float = Field(default=0.1, ge=0.0, le=2.0)
    llm_structured_output: Literal["json_schema", "json_object"] = Field(
        default="json_schema", description="json_object for servers without JSON-schema output (older Ollama/vLLM)."
    )
    llm_tools: bool = Field(default=True, description="Let the model call tools (search again, hours, escalate, tickets).")
    llm_max_tool_rounds: int = Field(default=3, ge=0, le=8, description="Tool-call rounds before an answer is required.")
    llm_confidence_threshold: float = Field(default=0.5, ge=0.0, le=1.0,
                                            description="Model-reported confidence below this hands off.")
    llm_input_cost_per_mtok: float = Field(default=0.15, ge=0, description="USD per million prompt tokens (cost log).")
    llm_output_cost_per_mtok: float = Field(default=0.60, ge=0, description="USD per million completion tokens.")
    rerank_timeout_seconds: float = Field(default=5.0, gt=0, description="Past this, the local order is used.")
    rerank_max_tokens_per_doc: int = Field(default=1024, ge=16)
    qdrant_timeout_seconds: float = Field(default=10.0, gt=0)

    @field_validator("web_example_questions", mode="before")
    @classmethod
    def _questions(cls, v: object) -> object:
        """Questions hold commas, so a plain value is split on "|"; a JSON list also works."""
        return _listed(v, "|")

    @field_validator("business_languages", mode="before")
    @classmethod
    def _business_languages(cls, v: object) -> object:
        if isinstance(v, str):
            return [item.strip() for item in v.split(",") if item.strip()]
        return v

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_json: bool | None = Field(default=None, description="JSON log lines; unset: JSON unless stderr is a terminal.")

    @field_validator("chunk_overlap")
    @classmethod
    def _overlap_below_chunk(cls, v: int, info):  # noqa: ANN001
        size = info.data.get("chunk_tokens", 512)
        if v * 2 >= size:
            raise ValueError(f"must be less than half of SUPPORTLAH_CHUNK_TOKENS ({size})")
        return v

    @property
    def vocabulary_path(self) -> Path:
        return self.vocabulary_file or self.data_dir / "vocabulary.json"

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.embedded_database_path.resolve()}"

    @property
    def embedded_database_path(self) -> Path:
        """The SQLite file of embedded mode (used when no database URL is set)."""
        return self.data_dir / "supportlah.db"

    @property
    def is_production_queue(self) -> bool:
        return self.redis_url is not None

    def masked(self) -> dict[str, object]:
        """Effective settings for display: secrets masked, URLs with passwords hidden."""
        shown: dict[str, object] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                value = "********" if value.get_secret_value() else ""
            elif isinstance(value, str) and "://" in value and "@" in value:
                scheme, rest = value.split("://", 1)
                value = f"{scheme}://********@{rest.split('@', 1)[1]}"
            elif isinstance(value, Path):
                value = str(value)
            shown[f"SUPPORTLAH_{name.upper()}"] = value
        return shown


def _listed(v: object, separator: str) -> object:
    """A list setting from an env string: a JSON list, or items between ``separator``s."""
    if isinstance(v, str):
        stripped = v.strip()
        if stripped.startswith("["):
            import json

            return json.loads(stripped)
        return [item.strip() for item in stripped.split(separator) if item.strip()]
    return v


class SettingsError(Exception):
    """A setting has a bad value; the message names the variable."""


def load_settings(**overrides: object) -> Settings:
    from pydantic import ValidationError

    env_file = overrides.pop("_env_file", ".env")
    try:
        settings = Settings(_env_file=env_file, **overrides)  # type: ignore[arg-type]
        profile = settings.data_dir / PROFILE_FILE
        if profile.is_file():
            extra = () if env_file is None else (env_file,) if isinstance(env_file, (str, Path)) else tuple(env_file)
            settings = Settings(_env_file=(profile, *extra), **overrides)  # type: ignore[arg-type]
        return settings
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]) or "?"
            problems.append(f"SUPPORTLAH_{field.upper()}: {err['msg']}")
        raise SettingsError("invalid settings:\n  " + "\n  ".join(problems)) from exc
