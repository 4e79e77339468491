"""A zero-latency LLM for the pipeline benchmark: the strict fake OpenAI chat API
(``tests.fakes.openai_api``) in its own process, answering every request at once.

The answer is what a well-behaved model returns: the first sentence of the first
source, verbatim, citing it, in the structured JSON the agent asks for (or a
hand-off when the prompt holds no source). It streams in small pieces like a real
model, so the agent's streaming, parsing and output checks all run.

Prints ``{"base_url": …}`` once listening; on SIGTERM prints ``{"requests": N, "errors": […]}``.

    python -m bench.fake_llm
"""
from __future__ import annotations

import asyncio
import json
import re
import signal

SOURCE = re.compile(r'<source id="(\d+)" document="([^"]*)"[^>]*>\n(.*?)\n</source>', re.DOTALL)
SENTENCE = re.compile(r"(?<=[.!?。！？])\s*")
REPLY_LANGUAGE = re.compile(r"Reply in .* \[(\w+)\]\.$")
SCRIPTS = {"zh": re.compile(r"[\u3400-\u9fff]"), "ta": re.compile(r"[\u0b80-\u0bff]")}
# When no source is written in the reply's script, a model would translate; this stand-in says
# "the details are in the cited document" instead (no numbers, so the output guard has nothing to check).
IN_OTHER_SCRIPT = {"zh": "详情请见所引用的资料。", "ta": "விவரங்கள் குறிப்பிடப்பட்ட ஆவணத்தில் உள்ளன."}
API_KEY = "bench-llm-key"


def respond(body: dict):  # noqa: ANN201 - a tests.fakes.openai_api.Completion
    from tests.fakes.openai_api import Completion, json_content

    sources = []
    for message in body["messages"]:
        sources += SOURCE.findall(message.get("content") or "")
    documents = [(int(n), text) for n, document, text in sources if document != "business-profile"]
    if not documents:
        return Completion(content=json_content(answer="Let me pass this to our team.", citations=[], confidence=0.0,
                                               needs_human=True, handoff_reason="no sources"), piece=16)
    found = REPLY_LANGUAGE.search(body["messages"][-1]["content"] or "")
    script = SCRIPTS.get(found.group(1)) if found else None
    in_script = [(n, t) for n, t in documents if script is None or script.search(t)]
    number, text = (in_script or documents)[0]
    lines = [line for line in text.splitlines() if line.strip()]
    body_text = " ".join(lines[1:] if len(lines) > 1 else lines)  # skip the heading-path line
    answer = next((s.strip() for s in SENTENCE.split(body_text) if s.strip()), body_text)[:300]
    if not in_script:
        answer = IN_OTHER_SCRIPT[found.group(1)]
    return Completion(content=json_content(answer=answer, citations=[number], confidence=0.9, needs_human=False,
                                           handoff_reason=None), piece=16)


async def serve() -> None:
    from tests.fakes.openai_api import FakeChatAPI

    async with FakeChatAPI(api_key=API_KEY) as fake:
        fake.default(respond)
        print(json.dumps({"base_url": fake.base_url}), flush=True)
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        print(json.dumps({"requests": len(fake.requests), "errors": fake.errors[:20]}), flush=True)


if __name__ == "__main__":
    asyncio.run(serve())
