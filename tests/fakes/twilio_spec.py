"""Check the fake Twilio API's traffic against Twilio's own OpenAPI description.

``tests/fixtures/twilio_oai/`` holds the Messages (create, list, fetch) and Content (fetch)
fragments of ``twilio/twilio-oai`` (MIT). The fake calls :func:`request_problems` on every
Messages create or list it receives and :func:`resource_problems` on every body it answers,
so neither our requests nor the fake's answers can drift from the real contract unnoticed.
Only the keywords those fragments use are understood: ``type``, ``nullable``, ``enum``,
``pattern``, ``minLength``/``maxLength``, ``items``, ``properties``, ``required`` and ``$ref``.
"""
from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "twilio_oai"
MESSAGES_PATH = "/2010-04-01/Accounts/{AccountSid}/Messages.json"
MESSAGE_PATH = "/2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json"
CONTENT_PATH = "/v1/Content/{Sid}"


@cache
def _spec(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def _resolve(schema: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _problems(value: Any, schema: dict[str, Any], spec: dict[str, Any], where: str, *,
              exact_keys: bool) -> list[str]:
    schema = _resolve(schema, spec)
    if value is None:
        return [] if schema.get("nullable") else [f"{where} is null"]
    kind = schema.get("type")
    checks = {"string": str, "integer": int, "number": (int, float), "boolean": bool, "object": dict, "array": list}
    if kind in checks and not isinstance(value, checks[kind]):
        return [f"{where} should be {kind}, got {type(value).__name__}"]
    problems: list[str] = []
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{where}={value!r} is not one of {schema['enum']}")
    if isinstance(value, str):
        if "pattern" in schema and not re.search(schema["pattern"], value):
            problems.append(f"{where}={value!r} does not match {schema['pattern']}")
        if len(value) < schema.get("minLength", 0) or len(value) > schema.get("maxLength", len(value)):
            problems.append(f"{where} has length {len(value)} outside the allowed range")
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            problems += _problems(item, schema["items"], spec, f"{where}[{index}]", exact_keys=exact_keys)
    if isinstance(value, dict) and "properties" in schema:
        properties = schema["properties"]
        unknown = set(value) - set(properties)
        if unknown:
            problems.append(f"{where} has properties the spec does not define: {sorted(unknown)}")
        absent = (set(properties) if exact_keys else set(schema.get("required", []))) - set(value)
        if absent:
            problems.append(f"{where} lacks {sorted(absent)}")
        for key in set(value) & set(properties):
            problems += _problems(value[key], properties[key], spec, f"{where}.{key}", exact_keys=exact_keys)
    return problems


def _coerce(raw: str, schema: dict[str, Any], spec: dict[str, Any]) -> Any:
    """Form fields arrive as text; read them as the type the spec declares before checking."""
    kind = _resolve(schema, spec).get("type")
    try:
        if kind == "integer":
            return int(raw)
        if kind == "number":
            return float(raw)
    except ValueError:
        return raw
    if kind == "boolean":
        return {"true": True, "false": False}.get(raw.lower(), raw)
    return raw


def request_problems(path: str, method: str, fields: list[tuple[str, str]]) -> list[str]:
    """What Twilio would refuse in a Messages request: unknown or missing parameters, bad values."""
    spec = _spec("messages")
    operation = spec["paths"][path][method]
    if method == "post":
        schema = operation["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
        properties, required = schema["properties"], set(schema.get("required", []))
    else:
        parameters = [p for p in operation.get("parameters", []) if p["in"] == "query"]
        properties = {p["name"]: p["schema"] for p in parameters}
        required = {p["name"] for p in parameters if p.get("required")}
    names = [name for name, _ in fields]
    problems = [f"{method.upper()} {path}: unknown parameter {name!r}" for name in names if name not in properties]
    problems += [f"{method.upper()} {path}: missing {name!r}" for name in sorted(required - set(names))]
    for name, raw in fields:
        if name in properties:
            schema = _resolve(properties[name], spec)
            if schema.get("type") == "array":  # repeated form fields (MediaUrl=...&MediaUrl=...)
                schema = schema["items"]
            problems += _problems(_coerce(raw, schema, spec), schema, spec, name, exact_keys=False)
    return problems


def resource_problems(kind: str, body: dict[str, Any]) -> list[str]:
    """What differs from the documented shape of a ``message``, a message ``list`` or a ``content``."""
    if kind == "content":
        spec = _spec("content")
        return _problems(body, {"$ref": "#/components/schemas/content.v1.content"}, spec, "content", exact_keys=True)
    spec = _spec("messages")
    if kind == "message":
        return _problems(body, {"$ref": "#/components/schemas/api.v2010.account.message"}, spec, "message",
                         exact_keys=True)
    schema = spec["paths"][MESSAGES_PATH]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    return _problems(body, schema, spec, "list", exact_keys=True)
