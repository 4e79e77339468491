"""Canned texts the agent sends, in every language we answer in.

These are the only words the agent says on its own (everything else is quoted
from the business's documents), so they are written carefully per language
rather than machine-translated at run time. ``{placeholders}`` must be the same
in every language; a test holds us to it.
"""
from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Protocol

from config.languages import DEFAULT_LANGUAGE


class TextCatalog(Protocol):
    """What the agent needs from a text catalogue (lets a business override wording)."""

    def __call__(self, key: str, lang: str, /, **fmt: object) -> str: ...


_TEXTS: dict[str, dict[str, str]] = {
    # Low confidence: we do not guess, a person takes the question.
    "handoff": {
        "en": "I'm not certain about this one, so I'm passing your question to our team; a person will reply here soon.",
        "zh": "这个问题我不太确定，已经转给我们的团队处理，稍后会有工作人员在这里回复您。",
        "ms": "Saya kurang pasti tentang perkara ini, jadi soalan anda telah saya serahkan kepada pasukan kami; seorang kakitangan akan membalas di sini sebentar lagi.",
        "ta": "இதைப் பற்றி எனக்கு உறுதியாகத் தெரியவில்லை, எனவே உங்கள் கேள்வியை எங்கள் குழுவிடம் அனுப்பியுள்ளேன்; விரைவில் ஒருவர் இங்கே பதிலளிப்பார்.",
    },
    # The customer asked for a person.
    "handoff_requested": {
        "en": "Sure, I'm connecting you with a person from our team; they will reply here soon.",
        "zh": "好的，正在为您转接我们的工作人员，他们会尽快在这里回复您。",
        "ms": "Baiklah, saya sedang menghubungkan anda dengan kakitangan kami; mereka akan membalas di sini sebentar lagi.",
        "ta": "சரி, உங்களை எங்கள் குழுவைச் சேர்ந்த ஒருவருடன் இணைக்கிறேன்; அவர் விரைவில் இங்கே பதிலளிப்பார்.",
    },
    # Appended to an answer on a sensitive topic: answered, but staff are told too.
    "team_notified": {
        "en": "I've also passed this on to our team, and a person will follow up here.",
        "zh": "我也已将此事转告我们的团队，稍后会有工作人员在这里跟进。",
        "ms": "Saya juga telah memaklumkan perkara ini kepada pasukan kami, dan seorang kakitangan akan menyusul di sini.",
        "ta": "இதை எங்கள் குழுவுக்கும் தெரிவித்துள்ளேன்; ஒருவர் இங்கே தொடர்ந்து உதவுவார்.",
    },
    "greeting": {
        "en": "Hi! I'm the virtual assistant for {business}. Ask me about our services, prices or bookings, and I'll answer from our official information.",
        "zh": "您好！我是{business}的智能助理。欢迎询问我们的服务、价格或预约事宜，我会根据我们的官方资料为您解答。",
        "ms": "Hai! Saya pembantu maya {business}. Tanyalah tentang perkhidmatan, harga atau tempahan kami, dan saya akan menjawab berdasarkan maklumat rasmi kami.",
        "ta": "வணக்கம்! நான் {business} நிறுவனத்தின் மெய்நிகர் உதவியாளர். எங்கள் சேவைகள், விலைகள் அல்லது முன்பதிவுகள் பற்றிக் கேளுங்கள்; எங்கள் அதிகாரப்பூர்வத் தகவல்களின் அடிப்படையில் பதிலளிப்பேன்.",
    },
    "error": {
        "en": "Sorry, something went wrong on our side; a person from our team will follow up.",
        "zh": "抱歉，我们这边出了点问题；我们的工作人员会尽快跟进。",
        "ms": "Maaf, berlaku masalah di pihak kami; seorang kakitangan kami akan menghubungi anda semula.",
        "ta": "மன்னிக்கவும், எங்கள் பக்கத்தில் ஏதோ தவறு நேர்ந்துவிட்டது; எங்கள் குழுவைச் சேர்ந்த ஒருவர் உங்களைத் தொடர்புகொள்வார்.",
    },
    # A voice note we cannot transcribe.
    "voice_note": {
        "en": "Sorry, I can't listen to voice messages yet. Could you type your question instead?",
        "zh": "抱歉，我暂时无法收听语音消息。能否请您用文字输入您的问题？",
        "ms": "Maaf, saya belum dapat mendengar mesej suara. Boleh anda taipkan soalan anda?",
        "ta": "மன்னிக்கவும், குரல் செய்திகளை என்னால் இன்னும் கேட்க முடியாது. உங்கள் கேள்வியைத் தட்டச்சு செய்து அனுப்ப முடியுமா?",
    },
    # A voice note longer than we transcribe (SUPPORTLAH_STT_MAX_SECONDS).
    "voice_note_too_long": {
        "en": "Sorry, your voice message is too long for me to listen to ({seconds} seconds; I can take up to {limit}). Could you send a shorter one, or type your question?",
        "zh": "抱歉，您的语音消息太长了（{seconds} 秒；我最多能听 {limit} 秒）。能否发一条短一点的语音，或者用文字输入您的问题？",
        "ms": "Maaf, mesej suara anda terlalu panjang untuk saya dengar ({seconds} saat; had saya {limit} saat). Boleh anda hantar yang lebih pendek, atau taipkan soalan anda?",
        "ta": "மன்னிக்கவும், உங்கள் குரல் செய்தி மிக நீளமாக உள்ளது ({seconds} வினாடிகள்; நான் {limit} வினாடிகள் வரை மட்டுமே கேட்க முடியும்). சுருக்கமான ஒன்றை அனுப்ப முடியுமா, அல்லது உங்கள் கேள்வியைத் தட்டச்சு செய்ய முடியுமா?",
    },
    # A voice note we listened to but could not make out (no speech, or speech the model could not place).
    "voice_note_unclear": {
        "en": "Sorry, I couldn't make out your voice message. Could you type your question, or send it again?",
        "zh": "抱歉，我没能听清您的语音消息。能否用文字输入您的问题，或者再发一次？",
        "ms": "Maaf, saya tidak dapat menangkap mesej suara anda. Boleh anda taipkan soalan anda, atau hantar sekali lagi?",
        "ta": "மன்னிக்கவும், உங்கள் குரல் செய்தி எனக்குத் தெளிவாகப் புரியவில்லை. உங்கள் கேள்வியைத் தட்டச்சு செய்ய முடியுமா, அல்லது மீண்டும் அனுப்ப முடியுமா?",
    },
    # Above the answer to a voice note: what we heard, so a mis-hearing is visible.
    "you_asked": {
        "en": "You asked: “{question}”",
        "zh": "您问的是：“{question}”",
        "ms": "Anda bertanya: “{question}”",
        "ta": "நீங்கள் கேட்டது: “{question}”",
    },
    "out_of_hours": {
        "en": "Thanks for your message. Our team is away right now and will be back {when}. I can still answer general questions in the meantime.",
        "zh": "感谢您的留言。我们的团队目前不在线，将于{when}回来。在此期间，我仍可以为您解答一般问题。",
        "ms": "Terima kasih atas mesej anda. Pasukan kami tiada sekarang dan akan kembali {when}. Sementara itu, saya masih boleh menjawab soalan umum.",
        "ta": "உங்கள் செய்திக்கு நன்றி. எங்கள் குழுவினர் இப்போது பணியில் இல்லை; அவர்கள் {when} திரும்புவார்கள். அதுவரை பொதுவான கேள்விகளுக்கு நான் பதிலளிக்கிறேன்.",
    },
    # Staff took the conversation over from the bot.
    "human_takeover": {
        "en": "A person from our team is taking over this conversation now.",
        "zh": "现在由我们的工作人员接手为您服务。",
        "ms": "Seorang kakitangan kami akan mengambil alih perbualan ini sekarang.",
        "ta": "எங்கள் குழுவைச் சேர்ந்த ஒருவர் இப்போது இந்த உரையாடலைத் தொடர்வார்.",
    },
    # Reply to a bare "thanks" / "ok".
    "welcome": {
        "en": "You're welcome! Just message me here if there's anything else I can help with.",
        "zh": "不客气！如果还有其他需要，随时在这里留言给我。",
        "ms": "Sama-sama! Hantar sahaja mesej di sini jika ada apa-apa lagi yang boleh saya bantu.",
        "ta": "மகிழ்ச்சி! வேறு ஏதேனும் உதவி தேவைப்பட்டால் இங்கே செய்தி அனுப்புங்கள்.",
    },
    "sources_label": {
        "en": "Sources:",
        "zh": "来源：",
        "ms": "Sumber:",
        "ta": "ஆதாரங்கள்:",
    },
    "empty_prompt": {
        "en": "Hi! How can I help you today? Please type your question.",
        "zh": "您好！请问有什么可以帮您？请输入您的问题。",
        "ms": "Hai! Apa yang boleh saya bantu hari ini? Sila taip soalan anda.",
        "ta": "வணக்கம்! இன்று உங்களுக்கு எப்படி உதவலாம்? உங்கள் கேள்வியைத் தட்டச்சு செய்யுங்கள்.",
    },
    # Before quoting a document written in another language than the customer's.
    "documents_say": {
        "en": "Here is what our documents say:",
        "zh": "以下是我们资料中的相关内容：",
        "ms": "Berikut ialah maklumat daripada dokumen kami:",
        "ta": "எங்கள் ஆவணங்களில் உள்ளவை இதோ:",
    },
}

TEXTS: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {key: MappingProxyType(by_lang) for key, by_lang in _TEXTS.items()}
)


def text(key: str, lang: str, /, **fmt: object) -> str:
    """The canned text ``key`` in ``lang`` (English if missing), formatted with ``fmt``.

    An unknown key is a programming error and raises ``KeyError``.
    """
    by_lang = TEXTS[key]
    template = by_lang.get(lang) or by_lang[DEFAULT_LANGUAGE]
    return template.format(**fmt)
