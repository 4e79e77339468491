"""A local fake of an OpenAI-compatible speech-to-text endpoint (``POST /v1/audio/transcriptions``)."""
from __future__ import annotations

from aiohttp import web

from tests.fakes.loopback import serve_on_loopback


class FakeTranscriptionAPI:
    def __init__(self, transcript: str, *, api_key: str = "stt-key") -> None:
        self.transcript = transcript
        self.api_key = api_key
        self.requests: list[dict] = []
        self.errors: list[str] = []
        self.fail_with: int | None = None
        self.base_url = ""
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> FakeTranscriptionAPI:
        app = web.Application()
        app.router.add_post("/v1/audio/transcriptions", self._transcribe)
        app.router.add_route("*", "/{tail:.*}", self._unexpected)
        self._runner, address = await serve_on_loopback(app)
        self.base_url = address + "/v1"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _transcribe(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            self.errors.append("bad or missing bearer token")
            return web.json_response({"error": {"message": "Incorrect API key", "type": "invalid_request_error"}},
                                     status=401)
        form = await request.post()
        upload = form.get("file")
        if form.get("model") is None or upload is None or not hasattr(upload, "file"):
            self.errors.append(f"expected multipart model + file, got {sorted(form)}")
            return web.json_response({"error": {"message": "bad request", "type": "invalid_request_error"}},
                                     status=400)
        self.requests.append({"model": form["model"], "filename": upload.filename, "size": len(upload.file.read())})
        if self.fail_with is not None:
            return web.json_response({"error": {"message": "upstream error", "type": "server_error"}},
                                     status=self.fail_with)
        return web.json_response({"text": self.transcript})

    async def _unexpected(self, request: web.Request) -> web.Response:
        self.errors.append(f"unexpected {request.method} {request.path}")
        return web.json_response({"error": {"message": "not found"}}, status=404)
