"""What the bot says about privacy, in en/zh/ms/ta, and the words customers use to ask.

The notice can be replaced per language (``SUPPORTLAH_PDPA_NOTICE_TEXTS``); the rest
is fixed wording kept here so it can be reviewed in one place.
"""
from __future__ import annotations

import re
import unicodedata


NOTICE = {
    "en": ("Privacy notice: {business} keeps the messages you send here to answer you and to improve our service, "
           "for up to {days} days. Send \"my data\" for a copy or \"delete my data\" to erase it. {policy}"),
    "zh": ("隐私说明：{business}会保存您在这里发送的消息，用于回复您和改进服务，最长保存{days}天。"
           "发送“我的资料”可获取副本，发送“删除我的资料”可要求删除。{policy}"),
    "ms": ("Notis privasi: {business} menyimpan mesej yang anda hantar di sini untuk membalas anda dan memperbaik "
           "perkhidmatan kami, sehingga {days} hari. Hantar \"data saya\" untuk salinan atau \"padam data saya\" "
           "untuk memadamkannya. {policy}"),
    "ta": ("தனியுரிமை அறிவிப்பு: உங்களுக்குப் பதிலளிக்கவும் சேவையை மேம்படுத்தவும் நீங்கள் அனுப்பும் செய்திகளை "
           "{business} அதிகபட்சம் {days} நாட்கள் வைத்திருக்கும். நகல் பெற \"என் தரவு\" என்றும், அழிக்க "
           "\"என் தரவை அழி\" என்றும் அனுப்புங்கள். {policy}"),
}
POLICY_LINK = {"en": "Policy: {url}", "zh": "隐私政策：{url}", "ms": "Dasar: {url}", "ta": "கொள்கை: {url}"}

_TEXTS: dict[str, dict[str, str]] = {
    "opt_in_ask": {
        "en": "Before I can help, please reply AGREE to let us process your messages (or NO to decline).",
        "zh": "在我为您服务之前，请回复“同意”以允许我们处理您的消息（或回复“不同意”）。",
        "ms": "Sebelum saya boleh membantu, sila balas SETUJU untuk membenarkan kami memproses mesej anda (atau TIDAK).",
        "ta": "உதவுவதற்கு முன், உங்கள் செய்திகளைச் செயலாக்க \"ஒப்புக்கொள்கிறேன்\" என்று பதிலளியுங்கள் (அல்லது \"இல்லை\").",
    },
    "agreed": {
        "en": "Thank you. How can I help you today?",
        "zh": "谢谢！请问有什么可以帮您？",
        "ms": "Terima kasih. Apa yang boleh saya bantu hari ini?",
        "ta": "நன்றி. இன்று உங்களுக்கு எப்படி உதவலாம்?",
    },
    "declined": {
        "en": "Understood. We won't process your messages. If you change your mind, reply AGREE.",
        "zh": "明白了，我们不会处理您的消息。如果您改变主意，请回复“同意”。",
        "ms": "Baik. Kami tidak akan memproses mesej anda. Jika anda berubah fikiran, balas SETUJU.",
        "ta": "புரிந்தது. உங்கள் செய்திகளைச் செயலாக்க மாட்டோம். மனம் மாறினால் \"ஒப்புக்கொள்கிறேன்\" என்று பதிலளியுங்கள்.",
    },
    "button_agree": {"en": "I agree", "zh": "同意", "ms": "Setuju", "ta": "ஒப்புக்கொள்கிறேன்"},
    "button_decline": {"en": "No", "zh": "不同意", "ms": "Tidak", "ta": "இல்லை"},
    "access": {
        "en": "Here is what we hold about you: {messages} of your messages and {replies} of our replies since "
              "{since}; privacy notice: {consent}.",
        "zh": "我们保存的您的资料：自 {since} 起您的 {messages} 条消息和我们的 {replies} 条回复；隐私说明：{consent}。",
        "ms": "Ini data yang kami simpan tentang anda: {messages} mesej anda dan {replies} balasan kami sejak "
              "{since}; notis privasi: {consent}.",
        "ta": "உங்களைப் பற்றி நாங்கள் வைத்திருப்பது: {since} முதல் உங்கள் {messages} செய்திகளும் எங்கள் {replies} "
              "பதில்களும்; தனியுரிமை அறிவிப்பு: {consent}.",
    },
    "access_messages": {
        "en": "Your latest messages:",
        "zh": "您最近的消息：",
        "ms": "Mesej terkini anda:",
        "ta": "உங்கள் சமீபத்திய செய்திகள்:",
    },
    "access_end": {
        "en": "On the web chat, \"My data\" downloads a full copy. Send \"delete my data\" to erase it.",
        "zh": "在网页聊天中点“我的资料”可下载完整副本。发送“删除我的资料”可要求删除。",
        "ms": "Di sembang web, \"Data saya\" memuat turun salinan penuh. Hantar \"padam data saya\" untuk memadamkannya.",
        "ta": "இணைய அரட்டையில் \"என் தரவு\" முழு நகலைப் பதிவிறக்கும். அழிக்க \"என் தரவை அழி\" என்று அனுப்புங்கள்.",
    },
    "access_none": {
        "en": "We hold no data about you beyond this request.",
        "zh": "除了这次请求，我们没有保存您的任何资料。",
        "ms": "Kami tidak menyimpan sebarang data tentang anda selain permintaan ini.",
        "ta": "இந்தக் கோரிக்கையைத் தவிர உங்களைப் பற்றி எந்தத் தரவும் எங்களிடம் இல்லை.",
    },
    "erase_confirm": {
        "en": ("This permanently deletes your messages, our notes about you and any open requests, and cannot be "
               "undone. Reply YES DELETE to confirm, or NO to keep your data."),
        "zh": "这将永久删除您的消息、我们关于您的记录和未完成的请求，且无法恢复。回复“确认删除”以确认，或回复“取消”保留资料。",
        "ms": ("Ini akan memadam mesej anda, catatan kami tentang anda dan permintaan terbuka secara kekal, dan tidak "
               "boleh dibatalkan. Balas YA PADAM untuk mengesahkan, atau BATAL untuk menyimpan data anda."),
        "ta": ("இது உங்கள் செய்திகள், உங்களைப் பற்றிய குறிப்புகள் மற்றும் திறந்த கோரிக்கைகளை நிரந்தரமாக அழிக்கும்; "
               "மீட்க முடியாது. உறுதிப்படுத்த \"ஆம் அழி\" என்றும், வைத்திருக்க \"இல்லை\" என்றும் பதிலளியுங்கள்."),
    },
    "button_erase": {"en": "Yes, delete", "zh": "确认删除", "ms": "Ya, padam", "ta": "ஆம், அழி"},
    "button_keep": {"en": "No, keep it", "zh": "取消", "ms": "Batal", "ta": "வேண்டாம்"},
    "erasing": {
        "en": "Done: your data is being deleted now, including this conversation. You can message us again anytime.",
        "zh": "好的：您的资料（包括本次对话）正在删除。您随时可以再联系我们。",
        "ms": "Selesai: data anda, termasuk perbualan ini, sedang dipadam sekarang. Anda boleh menghubungi kami bila-bila masa.",
        "ta": "முடிந்தது: இந்த உரையாடல் உட்பட உங்கள் தரவு இப்போது அழிக்கப்படுகிறது. எப்போது வேண்டுமானாலும் மீண்டும் எழுதலாம்.",
    },
    "erase_cancelled": {
        "en": "Okay, nothing was deleted.",
        "zh": "好的，没有删除任何资料。",
        "ms": "Baik, tiada apa-apa dipadam.",
        "ta": "சரி, எதுவும் அழிக்கப்படவில்லை.",
    },
}


def text(key: str, language: str, **fields: object) -> str:
    table = _TEXTS[key]
    return table.get(language, table["en"]).format(**fields)


def notice(language: str, *, business: str, days: int, policy_url: str | None,
           overrides: dict[str, str] | None = None) -> str:
    template = (overrides or {}).get(language) or NOTICE.get(language) or NOTICE["en"]
    policy = POLICY_LINK.get(language, POLICY_LINK["en"]).format(url=policy_url) if policy_url else ""
    return template.replace("{business}", business).replace("{days}", str(days)).replace("{policy}", policy).strip()


# --- what customers say ----------------------------------------------------------
ERASE_PHRASES = (
    "delete my data", "erase my data", "remove my data", "delete my information", "delete my personal data",
    "delete all my data", "forget me", "删除我的资料", "删除我的数据", "删除我的个人资料", "删除我的信息", "删除资料",
    "padam data saya", "padamkan data saya", "hapus data saya", "hapuskan data saya", "padam maklumat saya",
    "என் தரவை அழி", "எனது தரவை அழி", "என் தரவை நீக்கு", "எனது தரவை நீக்கு",
)
ACCESS_EXACT = {"my data", "my personal data", "我的资料", "我的数据", "我的个人资料", "data saya", "maklumat saya",
                "என் தரவு", "எனது தரவு"}
ACCESS_PHRASES = (
    "what data do you have", "what data do you keep", "what data do you hold", "copy of my data", "send me my data",
    "show me my data", "access my data", "查看我的资料", "我的资料副本", "salinan data saya", "lihat data saya",
    "என் தரவின் நகல்",
)
# Erasure cannot be undone, so a bare "yes" does not confirm it: the words asked for (or the button) do.
CONFIRM_ERASE = {"yes delete", "yes, delete", "confirm delete", "确认删除", "ya padam", "sahkan padam", "ஆம் அழி"}
CANCEL_ERASE = {"no", "cancel", "keep", "取消", "不", "不要", "batal", "tidak", "இல்லை", "வேண்டாம்"}
AGREE = {"agree", "i agree", "yes", "ok", "okay", "同意", "我同意", "好", "好的", "是", "setuju", "saya setuju", "ya",
         "ஒப்புக்கொள்கிறேன்", "சம்மதம்", "ஆம்"}
DECLINE = {"no", "decline", "disagree", "i do not agree", "不同意", "拒绝", "tidak", "tidak setuju", "மறுக்கிறேன்",
           "இல்லை"}

CALLBACK_AGREE = "pdpa:agree"
CALLBACK_DECLINE = "pdpa:decline"
CALLBACK_ERASE = "pdpa:erase"
CALLBACK_KEEP = "pdpa:keep"

_MAX_REQUEST_CHARS = 120  # a long message that mentions "my data" is a question, not a request


def normalize(message: str) -> str:
    """Lowercase, NFKC, punctuation folded to single spaces (Tamil vowel signs are kept)."""
    folded = unicodedata.normalize("NFKC", message).casefold()
    return " ".join(part for part in re.split(r"[^\w\u0b80-\u0bff]+", folded) if part)


def says(message: str, phrases: tuple[str, ...]) -> bool:
    """A short message containing one of ``phrases`` (as whole words where words exist)."""
    if len(message) > _MAX_REQUEST_CHARS:
        return False
    text_ = f" {normalize(message)} "
    for phrase in phrases:
        wanted = normalize(phrase)
        if not wanted:
            continue
        if wanted.isascii() and f" {wanted} " in text_:
            return True
        if not wanted.isascii() and wanted in text_:
            return True
    return False


def is_one_of(message: str, answers: set[str]) -> bool:
    return normalize(message) in {normalize(a) for a in answers}
