"""Fixed Telegram-facing wording in the four languages we serve (en, zh, ms, ta).

Kept apart from the logic so staff can review the translations in one place.
Unknown or regional language codes fall back by their primary subtag, then to English.
"""
from __future__ import annotations

from config.languages import DEFAULT_LANGUAGE, LANGUAGE_CODES, LANGUAGES

LANGUAGE_NAMES: dict[str, str] = {entry.code: entry.native for entry in LANGUAGES}  # as the customer reads it

# The bot's commands in menu order. Telegram requires lowercase names of at most 32 characters.
COMMANDS: tuple[str, ...] = ("start", "help", "human", "language", "reset", "my_data", "delete_my_data")

_ALIASES = {"malay": "ms", "bahasa": "ms", "tamil": "ta", "chinese": "zh", "english": "en", "cn": "zh", "my": "ms"}


def normalize_language(code: str | None) -> str:
    """Map ``zh-hans``, ``ms_MY``, ``Tamil`` … to one of :data:`config.languages.LANGUAGE_CODES`."""
    if not code:
        return DEFAULT_LANGUAGE
    primary = code.strip().lower().replace("_", "-").split("-", 1)[0]
    primary = _ALIASES.get(primary, primary)
    return primary if primary in LANGUAGE_CODES else DEFAULT_LANGUAGE


def parse_language(code: str | None) -> str | None:
    """Like :func:`normalize_language` but None for a code we do not serve (no silent fallback)."""
    if not code or not code.strip():
        return None
    primary = code.strip().lower().replace("_", "-").split("-", 1)[0]
    primary = _ALIASES.get(primary, primary)
    return primary if primary in LANGUAGE_CODES else None


def text(key: str, language: str | None, **fields: str) -> str:
    """The wording for ``key`` in ``language`` (normalized), with ``fields`` filled in."""
    return _CATALOG[key][normalize_language(language)].format(**fields)


def command_descriptions(language: str) -> list[tuple[str, str]]:
    """(command, description) pairs for Telegram's command menu, in menu order."""
    descriptions = _COMMAND_DESCRIPTIONS[normalize_language(language)]
    return [(command, descriptions[command]) for command in COMMANDS]


_COMMAND_DESCRIPTIONS: dict[str, dict[str, str]] = {
    "en": {
        "start": "Start and privacy notice",
        "help": "What I can do",
        "human": "Talk to a person",
        "language": "Change language",
        "reset": "Start a new conversation",
        "my_data": "What data we keep about you",
        "delete_my_data": "Ask us to delete your data",
    },
    "zh": {
        "start": "开始及隐私说明",
        "help": "使用帮助",
        "human": "联系真人客服",
        "language": "更换语言",
        "reset": "重新开始对话",
        "my_data": "我们保存的您的资料",
        "delete_my_data": "要求删除您的资料",
    },
    "ms": {
        "start": "Mula dan notis privasi",
        "help": "Bantuan",
        "human": "Bercakap dengan kakitangan",
        "language": "Tukar bahasa",
        "reset": "Mulakan perbualan baharu",
        "my_data": "Data yang kami simpan tentang anda",
        "delete_my_data": "Minta data anda dipadam",
    },
    "ta": {
        "start": "தொடக்கம் மற்றும் தனியுரிமை அறிவிப்பு",
        "help": "உதவி",
        "human": "ஊழியருடன் பேசு",
        "language": "மொழியை மாற்று",
        "reset": "புதிய உரையாடல்",
        "my_data": "உங்களைப் பற்றி நாங்கள் வைத்திருக்கும் தரவு",
        "delete_my_data": "உங்கள் தரவை அழிக்கக் கோருக",
    },
}

_CATALOG: dict[str, dict[str, str]] = {
    "start": {
        "en": (
            "Hi! I'm the virtual assistant of {business}. Ask me anything about our services: I answer from "
            "our own documents, and a member of our team can step in at any time (/human).\n\n"
            "Privacy: we store your messages so that we can answer you. Send /delete_my_data to have them "
            "erased, or /my_data to ask what we keep."
        ),
        "zh": (
            "您好！我是{business}的智能助理。有关我们服务的任何问题都可以问我：我会根据我们自己的资料回答，"
            "也随时可以转接真人客服（/human）。\n\n"
            "隐私说明：为了回复您，我们会保存您的消息。发送 /delete_my_data 可要求删除，"
            "发送 /my_data 可了解我们保存了哪些资料。"
        ),
        "ms": (
            "Hai! Saya pembantu maya {business}. Tanya apa sahaja tentang perkhidmatan kami: saya menjawab "
            "berdasarkan dokumen kami sendiri, dan kakitangan kami boleh membantu bila-bila masa (/human).\n\n"
            "Privasi: kami menyimpan mesej anda supaya kami dapat membalasnya. Hantar /delete_my_data untuk "
            "memadamkannya, atau /my_data untuk bertanya data yang kami simpan."
        ),
        "ta": (
            "வணக்கம்! நான் {business} நிறுவனத்தின் மெய்நிகர் உதவியாளர். எங்கள் சேவைகள் பற்றி எதையும் "
            "கேளுங்கள்: எங்கள் ஆவணங்களின் அடிப்படையில் பதிலளிப்பேன்; எப்போது வேண்டுமானாலும் எங்கள் "
            "ஊழியர் உதவுவார் (/human).\n\n"
            "தனியுரிமை: உங்களுக்குப் பதிலளிக்க உங்கள் செய்திகளைச் சேமிக்கிறோம். அவற்றை அழிக்க "
            "/delete_my_data அனுப்புங்கள்; நாங்கள் வைத்திருக்கும் தரவை அறிய /my_data அனுப்புங்கள்."
        ),
    },
    "help": {
        "en": (
            "I answer questions about {business}. Just type your question, or use:\n"
            "/human – talk to a person\n/language – change language\n/reset – start a new conversation\n"
            "/my_data – what data we keep\n/delete_my_data – ask us to delete your data"
        ),
        "zh": (
            "我可以回答有关{business}的问题。直接输入您的问题，或使用：\n"
            "/human – 联系真人客服\n/language – 更换语言\n/reset – 重新开始对话\n"
            "/my_data – 我们保存的资料\n/delete_my_data – 要求删除您的资料"
        ),
        "ms": (
            "Saya menjawab soalan tentang {business}. Taip sahaja soalan anda, atau gunakan:\n"
            "/human – bercakap dengan kakitangan\n/language – tukar bahasa\n/reset – mulakan perbualan baharu\n"
            "/my_data – data yang kami simpan\n/delete_my_data – minta data anda dipadam"
        ),
        "ta": (
            "{business} பற்றிய கேள்விகளுக்கு நான் பதிலளிக்கிறேன். உங்கள் கேள்வியைத் தட்டச்சு செய்யுங்கள், "
            "அல்லது இவற்றைப் பயன்படுத்துங்கள்:\n"
            "/human – ஊழியருடன் பேசு\n/language – மொழியை மாற்று\n/reset – புதிய உரையாடல்\n"
            "/my_data – நாங்கள் வைத்திருக்கும் தரவு\n/delete_my_data – உங்கள் தரவை அழிக்கக் கோருக"
        ),
    },
    "human": {
        "en": "I've asked our team to join. A staff member will reply here; you can keep writing in the meantime.",
        "zh": "我已通知我们的团队，工作人员会在这里回复您。在此期间您可以继续留言。",
        "ms": (
            "Saya telah memaklumkan pasukan kami. Seorang kakitangan akan membalas di sini; "
            "anda boleh terus menulis sementara itu."
        ),
        "ta": "எங்கள் குழுவிற்குத் தெரிவித்துள்ளேன். ஒரு ஊழியர் இங்கே பதிலளிப்பார்; அதுவரை நீங்கள் தொடர்ந்து எழுதலாம்.",
    },
    "language_current": {
        "en": "Your language is {name}. Choose another:",
        "zh": "您目前的语言是{name}。请选择：",
        "ms": "Bahasa anda sekarang: {name}. Pilih bahasa lain:",
        "ta": "உங்கள் தற்போதைய மொழி: {name}. வேறு மொழியைத் தேர்ந்தெடுக்கவும்:",
    },
    "language_set": {
        "en": "Okay, I'll reply in {name} from now on.",
        "zh": "好的，之后我会用{name}回复您。",
        "ms": "Baik, saya akan membalas dalam {name} mulai sekarang.",
        "ta": "சரி, இனி {name} மொழியில் பதிலளிப்பேன்.",
    },
    "language_unknown": {
        "en": "I can't reply in that language yet. Please choose one of these:",
        "zh": "暂不支持该语言。请从以下选项中选择：",
        "ms": "Saya belum boleh membalas dalam bahasa itu. Sila pilih salah satu:",
        "ta": "அந்த மொழியில் இன்னும் பதிலளிக்க இயலாது. இவற்றில் ஒன்றைத் தேர்ந்தெடுக்கவும்:",
    },
    "reset": {
        "en": "Done: I've started a fresh conversation. Earlier messages won't be used for my answers.",
        "zh": "好的，已开始新的对话。之前的消息不会再用于回答。",
        "ms": "Selesai: perbualan baharu telah dimulakan. Mesej terdahulu tidak akan digunakan untuk jawapan saya.",
        "ta": "முடிந்தது: புதிய உரையாடல் தொடங்கப்பட்டது. முந்தைய செய்திகள் என் பதில்களுக்குப் பயன்படுத்தப்படாது.",
    },
    "delete_my_data": {
        "en": (
            "Your request to delete your data has been recorded. Our staff will process it within 30 days and "
            "confirm here. Until then, your messages remain stored."
        ),
        "zh": "您的资料删除请求已记录。我们的工作人员会在30天内处理，并在这里确认。在此之前，您的消息仍会保存。",
        "ms": (
            "Permintaan anda untuk memadam data telah direkodkan. Kakitangan kami akan memprosesnya dalam masa "
            "30 hari dan mengesahkannya di sini. Sehingga itu, mesej anda masih disimpan."
        ),
        "ta": (
            "உங்கள் தரவை அழிக்கும் கோரிக்கை பதிவு செய்யப்பட்டது. எங்கள் ஊழியர்கள் 30 நாட்களுக்குள் அதைச் "
            "செயல்படுத்தி இங்கே உறுதிப்படுத்துவார்கள். அதுவரை உங்கள் செய்திகள் சேமிக்கப்பட்டிருக்கும்."
        ),
    },
    "my_data": {
        "en": (
            "Your request for a copy of your data has been recorded. Our staff will send it here within 30 days. "
            "We keep your Telegram name, your chat id and the messages exchanged in this chat."
        ),
        "zh": (
            "您索取个人资料副本的请求已记录。我们的工作人员会在30天内在这里发送给您。"
            "我们保存的资料包括您的Telegram名称、聊天编号以及本对话中的消息。"
        ),
        "ms": (
            "Permintaan anda untuk salinan data telah direkodkan. Kakitangan kami akan menghantarnya di sini dalam "
            "masa 30 hari. Kami menyimpan nama Telegram anda, ID sembang anda dan mesej dalam sembang ini."
        ),
        "ta": (
            "உங்கள் தரவின் நகலுக்கான கோரிக்கை பதிவு செய்யப்பட்டது. எங்கள் ஊழியர்கள் 30 நாட்களுக்குள் அதை "
            "இங்கே அனுப்புவார்கள். உங்கள் Telegram பெயர், அரட்டை அடையாள எண் மற்றும் இந்த அரட்டையில் "
            "பரிமாறப்பட்ட செய்திகளை நாங்கள் வைத்திருக்கிறோம்."
        ),
    },
    "button_human": {
        "en": "Talk to a person",
        "zh": "联系真人客服",
        "ms": "Bercakap dengan kakitangan",
        "ta": "ஊழியருடன் பேசு",
    },
}
