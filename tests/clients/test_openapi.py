"""Schemathesis against a real `tandem serve`: the OpenAPI document it serves at `/openapi.json` must be true.

A gateway of its own requires credentials (`[auth] anonymous = false`) and has an admin token; the test creates
an API key through the admin API, loads the document from the running server, and has schemathesis generate
requests for every operation, valid ones and (where the operation takes input) invalid ones, `MAX_EXAMPLES` of
each. Every answer must not be a server error, must have a documented status code, content type, headers and
body (each event of a stream too), invalid requests must be refused with a 4xx, and an operation that declares
authentication must refuse a request without credentials or with wrong ones.

Each operation runs as a Hypothesis test over `APIOperation.as_strategy`, one pytest case per operation and
mode; `schemathesis.pytest.from_fixture` does not work with pytest 9 (it sets `Node._nodeid`). Hooks steer the
generated bodies (see `flatmap_body`), and a generated policy upload is undone after each call.
Requests time out after `REQUEST_TIMEOUT_S`; with 40 examples the file runs in about a minute and a half on two cores.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import hypothesis
import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

import harness

ADMIN_TOKEN = "openapi-admin-token"
ADMIN_TOKEN_ENV = "TANDEM_OPENAPI_ADMIN_TOKEN"
# The policy the gateway starts with (`tandem_policy::DEFAULT_POLICY`); put back after each generated policy upload.
ALLOW_ALL = '@id("default-allow-all")\npermit(principal, action, resource);\n'
# Examples per operation and mode; more locally with TANDEM_OPENAPI_EXAMPLES=500.
MAX_EXAMPLES = int(os.environ.get("TANDEM_OPENAPI_EXAMPLES", "40"))
MAX_BODY_BYTES = 1024 * 1024
REQUEST_TIMEOUT_S = 20.0
DOCUMENT = Path(__file__).resolve().parents[2] / "crates" / "tandem-gateway" / "openapi.json"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,
    ignored_auth,
]
# Models the test upstream serves, through both provider kinds: text, the user's own text back, a tool call.
UPSTREAM_MODELS = [
    model + option
    for model in harness.MODELS
    for option in ("", "?echo", "?tool=get_weather&args=%7B%22city%22%3A%22Paris%22%7D")
]
# Streams that fail after their first events: the answer is a 200 whose stream ends with the API's error event.
FAILING_STREAM_MODELS = ["tk/scripted?malformed_after=3", "tka/scripted?truncate_after=3"]
EXCHANGES = {"/v1/chat/completions", "/v1/responses", "/v1/messages"}


@pytest.fixture(scope="module")
def openapi_gateway(tandem_bin: str, testkit: harness.Testkit, run_dir: Path):
    """A gateway that requires an API key, with the admin API on, and a key for the client APIs."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv(ADMIN_TOKEN_ENV, ADMIN_TOKEN)
        gw = harness.start_gateway(
            tandem_bin,
            testkit,
            run_dir / "openapi-gateway",
            name="tandem serve (openapi)",
            max_body_bytes=MAX_BODY_BYTES,
            extra_config=f'\n[auth]\nanonymous = false\nadmin_token_env = "{ADMIN_TOKEN_ENV}"\n',
        )
    try:
        response = httpx.post(
            f"{gw.url}/admin/keys",
            json={"user": "schemathesis"},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            timeout=10.0,
            trust_env=False,
        )
        assert response.status_code == 201, response.text
        gw.extra["api_key"] = response.json()["key"]
        yield gw
    finally:
        gw.process.stop()


@pytest.fixture(scope="module")
def openapi_schema(openapi_gateway: harness.Gateway) -> schemathesis.BaseSchema:
    """The document as the running gateway serves it, with the credentials of each security scheme."""
    api_key = openapi_gateway.extra["api_key"]
    config = schemathesis.Config.from_dict(
        {
            "base-url": openapi_gateway.url,
            "request-timeout": REQUEST_TIMEOUT_S,
            # Validate every event of a stream, not only the first 20.
            "max-stream-events": 100_000,
            # Credentials come from `auth` below; generated ones would only be refused.
            "generation": {"with-security-parameters": False},
            "auth": {
                "openapi": {
                    "bearer": {"bearer": api_key},
                    "apiKey": {"api_key": api_key},
                    "adminToken": {"bearer": ADMIN_TOKEN},
                }
            },
        }
    )
    schema = schemathesis.openapi.from_url(f"{openapi_gateway.url}/openapi.json", config=config)

    @schema.hook
    def flatmap_body(context: schemathesis.HookContext, body: object) -> st.SearchStrategy:
        """Steer generated bodies to where the bugs would be, never making an invalid body valid.

        Integral floats (`5.0`, a JSON Schema integer that Tandem refuses like OpenAI does) become integers.
        Most exchanges that name a model name one the test upstream serves (`UPSTREAM_MODELS`, and for streams
        `FAILING_STREAM_MODELS`), and half stream: generated bodies rarely carry the optional `stream`.
        """
        body = integral(body)
        if context.operation.path not in EXCHANGES or not isinstance(body, dict):
            return st.just(body)
        if not isinstance(body.get("model"), str) or not body["model"]:
            return st.just(body)
        if body.get("stream") not in (None, False, True):
            return st.just(body)

        # A stream that fails before its first token is a 502 by design, so the failing models need an answer
        # longer than the fault's 3 chunks.
        limits = [body[name] for name in ("max_tokens", "max_completion_tokens", "max_output_tokens") if name in body]
        long_answer = all(isinstance(limit, int) and limit >= 16 for limit in limits)

        def with_model(stream: bool) -> st.SearchStrategy:
            models = [body["model"], *UPSTREAM_MODELS, *(FAILING_STREAM_MODELS if stream and long_answer else [])]
            return st.sampled_from(models).map(lambda model: {**body, "model": model, "stream": stream})

        return st.booleans().flatmap(with_model)

    @schema.hook
    def flatmap_headers(context: schemathesis.HookContext, headers: dict | None) -> st.SearchStrategy:
        """Keep a generated `x-tandem-pace` (an unknown tier: 404) in a quarter of the exchanges only."""
        if context.operation.path not in EXCHANGES or not headers or "x-tandem-pace" not in headers:
            return st.just(headers)
        without = {name: value for name, value in headers.items() if name != "x-tandem-pace"}
        return st.sampled_from([headers, without, without, without])

    return schema


def integral(value: object) -> object:
    """`value` with every float that has no fraction written as an integer."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return int(value)
    if isinstance(value, list):
        return [integral(item) for item in value]
    if isinstance(value, dict):
        return {key: integral(item) for key, item in value.items()}
    return value


def operations() -> list[tuple[str, str]]:
    """(method, path) of every operation in the document in the repository."""
    document = json.loads(DOCUMENT.read_text())
    return [(method.upper(), path) for path, item in document["paths"].items() for method in item]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
@pytest.mark.parametrize(("method", "path"), operations())
def test_operation(
    openapi_schema: schemathesis.BaseSchema, openapi_gateway: harness.Gateway, method: str, path: str, mode: GenerationMode
) -> None:
    """Generated requests for one operation, valid or invalid ones, pass every check."""
    operation = openapi_schema[path][method]
    if mode == GenerationMode.NEGATIVE and not has_input(operation):
        pytest.skip("no input of this operation can be made invalid")

    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    @hypothesis.settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(hypothesis.HealthCheck),
        phases=[hypothesis.Phase.generate, hypothesis.Phase.shrink],
    )
    def check(case: schemathesis.Case) -> None:
        try:
            case.call_and_validate(checks=CHECKS)
        finally:
            if path == "/admin/policy" and method == "PUT":
                restore_policy(openapi_gateway)

    try:
        check()
    except hypothesis.errors.Unsatisfiable:
        if mode != GenerationMode.NEGATIVE:
            raise
        pytest.skip("no input of this operation can be made invalid")


def has_input(operation: schemathesis.APIOperation) -> bool:
    definition = operation.definition.raw
    return bool(definition.get("parameters") or definition.get("requestBody"))


def restore_policy(gateway: harness.Gateway) -> None:
    """Put the allow-all policy back after a generated upload that may have replaced it."""
    response = httpx.put(
        f"{gateway.url}/admin/policy",
        content=ALLOW_ALL,
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=10.0,
        trust_env=False,
    )
    assert response.status_code == 200, response.text


def test_document_is_served(openapi_gateway: harness.Gateway) -> None:
    """`/openapi.json` is public, JSON, and the document in the repository, byte for byte."""
    response = httpx.get(f"{openapi_gateway.url}/openapi.json", timeout=10.0, trust_env=False)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.content == DOCUMENT.read_bytes(), "the binary serves another document: rebuild `tandem`"
