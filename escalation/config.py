"""The escalation feature's settings, read once from :class:`~config.settings.Settings`."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from config.settings import Settings
from escalation.models import Priority


@dataclass(frozen=True)
class EscalationConfig:
    staff_chat_id: int | None  # None: no staff group; tickets are still recorded, the AI keeps answering
    use_topics: bool
    staff_user_ids: frozenset[int]  # empty: every member of the staff group may act
    sla_minutes: dict[str, int]
    reminder_repeat: timedelta
    reopen_window: timedelta
    repeat_contact_window: timedelta
    urgent_terms: tuple[str, ...]
    vip_contacts: frozenset[str]
    ai_suggestions: bool
    public_url: str | None

    @classmethod
    def from_settings(cls, settings: Settings, *, staff_group: bool) -> EscalationConfig:
        """``staff_group``: whether a staff group can actually be reached (Telegram is configured)."""
        return cls(
            staff_chat_id=settings.staff_chat_id if staff_group else None,
            use_topics=settings.staff_use_topics,
            staff_user_ids=frozenset(settings.staff_user_ids),
            sla_minutes={Priority.NORMAL: settings.escalation_sla_minutes,
                         Priority.HIGH: settings.escalation_sla_high_minutes,
                         Priority.URGENT: settings.escalation_sla_urgent_minutes},
            reminder_repeat=timedelta(minutes=settings.escalation_reminder_repeat_minutes),
            reopen_window=timedelta(days=settings.escalation_reopen_days),
            repeat_contact_window=timedelta(days=settings.escalation_repeat_contact_days),
            urgent_terms=tuple(settings.escalation_urgent_terms),
            vip_contacts=frozenset(settings.escalation_vip_contacts),
            ai_suggestions=settings.escalation_ai_suggestions,
            public_url=settings.public_url.rstrip("/") if settings.public_url else None,
        )

    def may_act(self, user_id: str | None) -> bool:
        """Only members of the staff group reach us as staff; the allow-list narrows that further."""
        if not self.staff_user_ids:
            return True
        return user_id is not None and user_id.lstrip("-").isdigit() and int(user_id) in self.staff_user_ids
