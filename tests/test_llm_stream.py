"""Streaming the answer field: decoding JSON fragments and forwarding only what may be shown."""
from __future__ import annotations

import json

from agent.llm_stream import AnswerFieldDecoder, DeltaRelay, StreamState
from agent.safety import PIIMasker

TRICKY = 'Line one\nA "quoted" word, a back\\slash, 你好 and an emoji 😀 — done.'


def test_decoder_survives_every_split_point():
    raw = json.dumps({"answer": TRICKY, "citations": [1], "confidence": 0.9}, ensure_ascii=True)
    for cut in range(1, len(raw)):
        decoder = AnswerFieldDecoder()
        text = decoder.feed(raw[:cut]) + decoder.feed(raw[cut:])
        assert text == TRICKY, cut
        assert decoder.done


def test_decoder_character_by_character_and_unescaped_unicode():
    raw = json.dumps({"answer": TRICKY, "needs_human": False}, ensure_ascii=False)
    decoder = AnswerFieldDecoder()
    assert "".join(decoder.feed(ch) for ch in raw) == TRICKY


def test_decoder_finds_the_answer_after_other_keys_and_ignores_the_rest():
    decoder = AnswerFieldDecoder()
    out = decoder.feed('{"citations": [2], "answer": "ok') + decoder.feed('ay", "confidence": 1, "x": "answer"}')
    assert out == "okay"


async def relay_run(pieces: list[str], *, acceptable=lambda shown: True, session=None):
    sent: list[str] = []

    async def on_delta(piece: str) -> None:
        sent.append(piece)

    session = session or PIIMasker().session()
    state = StreamState()
    relay = DeltaRelay(on_delta, render=session.unmask, acceptable=acceptable, state=state)
    for piece in pieces:
        await relay.feed(piece)
    return sent, state


def split(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


async def test_relay_forwards_whole_words_and_ends_with_everything():
    raw = json.dumps({"answer": "A general service is $25 per unit.", "citations": [2]})
    sent, state = await relay_run(split(raw, 3))
    assert "".join(sent) == "A general service is $25 per unit."
    assert all(piece.endswith(" ") for piece in sent[:-1])  # never a cut word or number
    assert state.streamed


async def test_relay_restores_placeholders_only_when_complete():
    session = PIIMasker().session()
    session.mask("call 6123 4567")
    raw = json.dumps({"answer": "Please call [PHONE_1] today."})
    sent, _ = await relay_run(split(raw, 2), session=session)
    assert "".join(sent) == "Please call 6123 4567 today."
    assert not any("[" in piece for piece in sent)


async def test_relay_goes_quiet_when_the_provisional_check_fails():
    raw = json.dumps({"answer": "Service is $25. Today you also get 50% off, book now!"})
    sent, state = await relay_run(split(raw, 4), acceptable=lambda shown: "50%" not in shown)
    shown = "".join(sent)
    assert shown.startswith("Service is $25.") and "50%" not in shown and "book" not in shown
    assert state.stopped


async def test_chinese_streams_between_characters_but_not_inside_numbers():
    raw = json.dumps({"answer": "组屋的普通保养每台80新元。"}, ensure_ascii=False)
    seen: list[str] = []
    sent, _ = await relay_run(split(raw, 2), acceptable=lambda shown: seen.append(shown) or True)
    assert "".join(sent) == "组屋的普通保养每台80新元。"
    assert not any(s.endswith("8") for s in seen)  # "80" is only ever checked whole
