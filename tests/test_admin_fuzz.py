"""The admin API fuzzed against its own OpenAPI spec with schemathesis: no 5xx, and every response
has a status, content type and body the spec allows. Derandomized and bounded, so it is repeatable
and takes well under a minute."""
from __future__ import annotations

import asyncio
import time

import pytest
import schemathesis
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from config.settings import load_settings
from supportlah.app import create_app
from tests.harness import drain, running_container, web_message

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = {GenerationMode.POSITIVE: 12, GenerationMode.NEGATIVE: 6}
KB = b"# Gas top-up\n\nA gas top-up for an R32 unit costs $60.\n"


def fuzz(spec: dict, base_url: str, token: str) -> list[str]:
    """Run every operation in both generation modes; return the operations exercised."""
    schema = schemathesis.openapi.from_dict(spec)
    exercised = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode, examples in EXAMPLES.items():

            @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                      suppress_health_check=list(HealthCheck), print_blob=False)
            @given(case=operation.as_strategy(generation_mode=mode))
            def exercise(case) -> None:  # noqa: ANN001
                case.call_and_validate(base_url=base_url, headers={"Authorization": f"Bearer {token}"},
                                       checks=CHECKS, timeout=30)

            exercise()
        exercised.append(f"{operation.method.upper()} {operation.path}")
    return exercised


@pytest.mark.timeout(180)
async def test_admin_api_survives_fuzzing_against_its_spec(tmp_path):
    cfg = load_settings(_env_file=None, data_dir=tmp_path / "data", rate_limit_ip_per_minute=100_000,
                        admin_upload_max_bytes=100_000)
    async with running_container(cfg, start_queue=False) as container:
        kb = tmp_path / "prices.md"
        kb.write_bytes(KB)
        await container.ingestor.ingest([kb])
        await container.ingress.accept(web_message("visitor-fuzz-0001", "I want to talk to a person"))
        await drain(container)
        key = await container.privacy.keys.create("fuzz", frozenset(
            {"kb:read", "kb:write", "tickets:read", "tickets:write", "contacts:read", "contacts:erase",
             "analytics:read"}))
        server = TestServer(create_app(container))
        await server.start_server()
        try:
            spec = await (await _get(server, "/api/openapi.json")).json()
            started = time.monotonic()
            exercised = await asyncio.to_thread(fuzz, spec, str(server.make_url("")).rstrip("/"), key.token)
            elapsed = time.monotonic() - started
        finally:
            await server.close()
    assert len(exercised) == sum(len(methods) for methods in spec["paths"].values())
    assert elapsed < 60, f"fuzzing took {elapsed:.0f} s"


async def _get(server: TestServer, path: str):  # noqa: ANN202
    import aiohttp

    session = aiohttp.ClientSession()
    try:
        response = await session.get(server.make_url(path))
        await response.read()
        return response
    finally:
        await session.close()
