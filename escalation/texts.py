"""What the hand-off says to customers, in the four languages we serve (en, zh, ms, ta).

Staff-facing wording (the card, topic notices) is English on purpose: it is the
team's working language and keeps the card compact. ``{placeholders}`` are the same
in every language; a test holds us to it.
"""
from __future__ import annotations

from datetime import datetime

from config.languages import DEFAULT_LANGUAGE, LANGUAGE_CODES


_TEXTS: dict[str, dict[str, str]] = {
    "out_of_hours": {
        "en": "Our team is away right now; you can expect a reply {when}. You can keep writing here in the meantime.",
        "zh": "我们的团队目前不在线，预计将于{when}回复您。在此期间您可以继续在这里留言。",
        "ms": "Pasukan kami tiada sekarang; anda boleh menjangkakan balasan {when}. "
              "Anda boleh terus menulis di sini sementara itu.",
        "ta": "எங்கள் குழுவினர் இப்போது பணியில் இல்லை; {when} பதில் எதிர்பார்க்கலாம். "
              "அதுவரை நீங்கள் இங்கே தொடர்ந்து எழுதலாம்.",
    },
    "resolved": {
        "en": "Our team has marked your request as resolved. If you need anything else, just write here: "
              "I'm back to help, and you can ask for a person any time.",
        "zh": "我们的团队已将您的问题标记为已解决。如还有其他需要，请直接在这里留言：我会继续为您服务，您也可以随时要求转接真人客服。",
        "ms": "Pasukan kami telah menandakan permintaan anda sebagai selesai. Jika anda memerlukan apa-apa lagi, "
              "tulis sahaja di sini: saya kembali membantu, dan anda boleh meminta kakitangan bila-bila masa.",
        "ta": "உங்கள் கோரிக்கை தீர்க்கப்பட்டதாக எங்கள் குழு குறித்துள்ளது. வேறு ஏதேனும் தேவைப்பட்டால் இங்கே "
              "எழுதுங்கள்: நான் மீண்டும் உதவுவேன்; எப்போது வேண்டுமானாலும் ஊழியருடன் பேசக் கேட்கலாம்.",
    },
    "back_to_bot": {
        "en": "You're chatting with our virtual assistant again. Ask for a person any time if you need our team.",
        "zh": "现在由智能助理继续为您服务。如需我们的工作人员，随时可以要求转接真人客服。",
        "ms": "Anda kini berbual semula dengan pembantu maya kami. Minta untuk bercakap dengan kakitangan "
              "bila-bila masa jika anda memerlukan pasukan kami.",
        "ta": "நீங்கள் மீண்டும் எங்கள் மெய்நிகர் உதவியாளருடன் உரையாடுகிறீர்கள். எங்கள் குழு தேவைப்பட்டால் "
              "எப்போது வேண்டுமானாலும் ஊழியருடன் பேசக் கேளுங்கள்.",
    },
    "unsatisfied": {
        "en": "Sorry my answers haven't helped. I'm passing your question to our team; a person will reply here soon.",
        "zh": "抱歉，我的回答没能帮到您。我已将您的问题转给我们的团队，工作人员会尽快在这里回复您。",
        "ms": "Maaf, jawapan saya tidak membantu. Saya telah menyerahkan soalan anda kepada pasukan kami; "
              "seorang kakitangan akan membalas di sini sebentar lagi.",
        "ta": "மன்னிக்கவும், என் பதில்கள் உதவவில்லை. உங்கள் கேள்வியை எங்கள் குழுவிடம் அனுப்பியுள்ளேன்; "
              "விரைவில் ஒருவர் இங்கே பதிலளிப்பார்.",
    },
    "asap": {"en": "as soon as possible", "zh": "尽快", "ms": "secepat mungkin", "ta": "விரைவில்"},
}

_WEEKDAYS = {
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    "zh": ("星期一", "星期二", "星期三", "星期四", "星期五", "星期六", "星期日"),
    "ms": ("Isnin", "Selasa", "Rabu", "Khamis", "Jumaat", "Sabtu", "Ahad"),
    "ta": ("திங்கள்", "செவ்வாய்", "புதன்", "வியாழன்", "வெள்ளி", "சனி", "ஞாயிறு"),
}
_MONTHS = {
    "en": ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
    "ms": ("Jan", "Feb", "Mac", "Apr", "Mei", "Jun", "Jul", "Ogo", "Sep", "Okt", "Nov", "Dis"),
    "ta": ("ஜன.", "பிப்.", "மார்.", "ஏப்.", "மே", "ஜூன்", "ஜூலை", "ஆக.", "செப்.", "அக்.", "நவ.", "டிச."),
}


def language_of(code: str | None) -> str:
    primary = (code or "en").strip().lower().replace("_", "-").split("-", 1)[0]
    return primary if primary in LANGUAGE_CODES else DEFAULT_LANGUAGE


def text(key: str, language: str | None, **fields: str) -> str:
    return _TEXTS[key][language_of(language)].format(**fields)


def expected_reply(opens_at: datetime | None, now: datetime, language: str | None) -> str:
    """The out-of-hours notice; both datetimes in the business's local time."""
    when = format_when(opens_at, now, language) if opens_at is not None else text("asap", language)
    return text("out_of_hours", language, when=when)


def format_when(at: datetime, now: datetime, language: str | None) -> str:
    """"tomorrow at 9:00 am", "明天上午9:00", "esok pukul 9:00 pagi", "நாளை காலை 9:00 மணிக்கு"."""
    lang = language_of(language)
    days = (at.date() - now.date()).days
    clock = _clock(at, lang)
    if lang == "en":
        day = "today" if days == 0 else "tomorrow" if days == 1 else \
            f"on {_WEEKDAYS['en'][at.weekday()]}, {at.day} {_MONTHS['en'][at.month - 1]}"
        return f"{day} at {clock}"
    if lang == "zh":
        day = "今天" if days == 0 else "明天" if days == 1 else f"{at.month}月{at.day}日（{_WEEKDAYS['zh'][at.weekday()]}）"
        return f"{day}{clock}"
    if lang == "ms":
        day = "hari ini" if days == 0 else "esok" if days == 1 else \
            f"pada hari {_WEEKDAYS['ms'][at.weekday()]}, {at.day} {_MONTHS['ms'][at.month - 1]}"
        return f"{day} pukul {clock}"
    day = "இன்று" if days == 0 else "நாளை" if days == 1 else \
        f"{_WEEKDAYS['ta'][at.weekday()]}, {at.day} {_MONTHS['ta'][at.month - 1]}"
    return f"{day} {clock} மணிக்கு"


def _clock(at: datetime, lang: str) -> str:
    hour12 = at.hour % 12 or 12
    hm = f"{hour12}:{at.minute:02d}"
    if lang == "en":
        return f"{hm} {'am' if at.hour < 12 else 'pm'}"
    if lang == "zh":
        period = "上午" if at.hour < 12 else "中午" if at.hour < 13 else "下午" if at.hour < 18 else "晚上"
        return f"{period}{hm}"
    if lang == "ms":
        period = "pagi" if at.hour < 12 else "tengah hari" if at.hour < 14 else "petang" if at.hour < 19 else "malam"
        return f"{hm} {period}"
    period = "காலை" if at.hour < 12 else "மதியம்" if at.hour < 16 else "மாலை" if at.hour < 19 else "இரவு"
    return f"{period} {hm}"
