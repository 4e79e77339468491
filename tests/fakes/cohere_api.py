"""A local fake of Cohere's rerank endpoint (``POST /v2/rerank``).

It speaks the documented v2 wire format: bearer auth, a JSON body with ``model``,
``query``, ``documents`` (strings) and optional ``top_n``/``max_tokens_per_doc``,
answered with ``{"id", "results": [{"index", "relevance_score"}], "meta"}`` best
first. Relevance comes from :attr:`FakeCohereAPI.scorer` (default: share of the
query's words found in the document), so tests can script any order. Every request
is kept in :attr:`requests`; anything malformed is answered 400 *and* recorded in
:attr:`errors`, which tests assert is empty.
"""
from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable

from aiohttp import web

from tests.fakes.loopback import serve_on_loopback

KNOWN_KEYS = frozenset({"model", "query", "documents", "top_n", "max_tokens_per_doc", "priority"})
MAX_DOCUMENTS = 1000
_WORD = re.compile(r"\w+")


def word_overlap(query: str, document: str) -> float:
    terms = set(_WORD.findall(query.lower()))
    if not terms:
        return 0.0
    return len(terms & set(_WORD.findall(document.lower()))) / len(terms)


class FakeCohereAPI:
    def __init__(self, *, api_key: str = "cohere-key") -> None:
        self.api_key = api_key
        self.scorer: Callable[[str, str], float] = word_overlap
        self.requests: list[dict] = []
        self.errors: list[str] = []
        self.base_url = ""
        self._failures: list[int] = []
        self._stalls: list[float] = []
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> FakeCohereAPI:
        app = web.Application()
        app.router.add_post("/v2/rerank", self._rerank)
        app.router.add_route("*", "/{tail:.*}", self._unexpected)
        self._runner, address = await serve_on_loopback(app)
        self.base_url = address
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def fail_next(self, status: int, times: int = 1) -> None:
        self._failures.extend([status] * times)

    def stall_next(self, seconds: float) -> None:
        self._stalls.append(seconds)

    def sent_text(self) -> str:
        return "\n".join([r.get("query", "") for r in self.requests] + [d for r in self.requests for d in r.get("documents", [])])

    async def _rerank(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return self._error("bad or missing bearer token", 401)
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return self._error("request body is not JSON", 400)
        self.requests.append(body)
        problem = _validate(body)
        if problem:
            return self._error(problem, 400)
        if self._stalls:
            await asyncio.sleep(self._stalls.pop(0))
        if self._failures:
            status = self._failures.pop(0)
            return web.json_response({"message": "internal server error"}, status=status)
        scored = [(self.scorer(body["query"], doc), i) for i, doc in enumerate(body["documents"])]
        scored.sort(key=lambda pair: (-pair[0], pair[1]))
        top_n = body.get("top_n") or len(scored)
        results = [{"index": i, "relevance_score": round(float(s), 6)} for s, i in scored[:top_n]]
        return web.json_response({
            "id": f"rerank-{len(self.requests)}",
            "results": results,
            "meta": {"api_version": {"version": "2"}, "billed_units": {"search_units": 1}},
        })

    def _error(self, problem: str, status: int) -> web.Response:
        self.errors.append(problem)
        return web.json_response({"message": problem}, status=status)

    async def _unexpected(self, request: web.Request) -> web.Response:
        return self._error(f"unexpected {request.method} {request.path}", 404)


def _validate(body: dict) -> str | None:
    unknown = set(body) - KNOWN_KEYS
    if unknown:
        return f"unexpected request keys {sorted(unknown)}"
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "model must be a non-empty string"
    if not isinstance(body.get("query"), str) or not body["query"].strip():
        return "query must be a non-empty string"
    documents = body.get("documents")
    if not isinstance(documents, list) or not documents or not all(isinstance(d, str) for d in documents):
        return "documents must be a non-empty list of strings"
    if len(documents) > MAX_DOCUMENTS:
        return f"more than {MAX_DOCUMENTS} documents"
    top_n = body.get("top_n")
    if top_n is not None and (not isinstance(top_n, int) or top_n < 1):
        return "top_n must be a positive integer"
    max_tokens = body.get("max_tokens_per_doc")
    if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
        return "max_tokens_per_doc must be a positive integer"
    return None
