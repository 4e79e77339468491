"""All runtime settings, read once by the composition root.

Every external base URL and credential is a setting so tests can point the real
SDKs at local fakes. Env prefix ``SUPPORTLAH_``; a ``.env`` file is honoured.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


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
    redis_url: str | None = Field(default=None, description="Unset: in-process queue. Set: Redis + arq workers.")
    redis_prefix: str = Field(default="supportlah", description="Key prefix for everything we keep in Redis.")

    # --- HTTP server --------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    public_url: str | None = Field(default=None, description="The URL the internet reaches us at (webhook signatures).")
    max_message_chars: int = Field(default=4000, ge=1)

    # --- business profile ---------------------------------------------------
    business_name: str = "ChillPro Aircon & Home Services"
    business_timezone: str = "Asia/Singapore"

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
    max_jobs: int = Field(default=10, ge=1)
    job_max_tries: int = Field(default=5, ge=1)
    recovery_after_seconds: int = Field(default=120, ge=1, description="Re-enqueue messages unanswered this long.")
    job_timeout_seconds: int = Field(default=120, ge=1, description="A job running longer is cancelled and retried.")
    conversation_lock_seconds: float = Field(default=30.0, gt=0, description="Lock TTL; a dead holder frees it after this.")
    send_guard_seconds: int = Field(default=30, ge=1, description="In-flight guard TTL around one provider send.")
    worker_health_seconds: int = Field(default=15, ge=1, description="How often a worker reports in; /readyz allows 3x.")
    shutdown_grace_seconds: int = Field(default=30, ge=0, description="Running jobs may finish this long on shutdown.")

    # --- channels -----------------------------------------------------------
    web_allowed_origins: list[str] = Field(default_factory=list)
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

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_json: bool = True

    @field_validator("chunk_overlap")
    @classmethod
    def _overlap_below_chunk(cls, v: int, info):  # noqa: ANN001
        size = info.data.get("chunk_tokens", 512)
        if v >= size:
            raise ValueError(f"must be smaller than SUPPORTLAH_CHUNK_TOKENS ({size})")
        return v

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'supportlah.db').resolve()}"

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


class SettingsError(Exception):
    """A setting has a bad value; the message names the variable."""


def load_settings(**overrides: object) -> Settings:
    from pydantic import ValidationError

    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]) or "?"
            problems.append(f"SUPPORTLAH_{field.upper()}: {err['msg']}")
        raise SettingsError("invalid settings:\n  " + "\n  ".join(problems)) from exc
