"""The official `openai` Python SDK against Tandem: chat completions, responses, tools and error shapes.

Each conversation test runs once per upstream kind (`tk/scripted` is an OpenAI-kind upstream, `tka/scripted` an
Anthropic-kind one), so both translations are exercised through the same client code.
"""

from __future__ import annotations

import json

import openai
import pytest

import harness
from harness import HELLO, WEATHER_ARGS, WEATHER_PROMPT, WEATHER_RESULT, WEATHER_SCHEMA

CHAT_WEATHER_TOOL = {
    "type": "function",
    "function": {"name": "get_weather", "description": "Current weather for a city.", "parameters": WEATHER_SCHEMA},
}
RESPONSES_WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather for a city.",
    "parameters": WEATHER_SCHEMA,
}
PATCH = "*** Begin Patch\n*** Add File: hello.txt\n+hello from tandem\n*** End Patch\n"
# The freeform tool Codex uses for patches, reduced to its shape: a custom tool whose input is raw text.
RESPONSES_PATCH_TOOL = {
    "type": "custom",
    "name": "apply_patch",
    "description": "Apply a patch. This is a FREEFORM tool, so do not wrap the patch in JSON.",
    "format": {"type": "text"},
}


# --- chat completions -------------------------------------------------------------------------------------


def test_chat_non_stream(openai_client: openai.OpenAI, testkit: harness.Testkit, model: str, kind: str):
    before = testkit.stats()
    completion = openai_client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Say hello."}]
    )
    choice = completion.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == HELLO
    assert choice.finish_reason == "stop"
    usage = completion.usage
    assert usage is not None
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.completion_tokens == 3, "`hello from testkit` is three tokens"
    testkit.assert_usage(kind, before, usage.prompt_tokens, usage.completion_tokens)


def test_chat_via_alias(openai_client: openai.OpenAI, testkit: harness.Testkit):
    """`tandem-live` is a configured alias for provider `tk`, upstream model `scripted`."""
    completion = openai_client.chat.completions.create(
        model="tandem-live", messages=[{"role": "user", "content": "Say hello."}]
    )
    assert completion.choices[0].message.content == HELLO
    assert testkit.last_request_body()["model"] == "scripted"


def test_chat_stream_with_usage(openai_client: openai.OpenAI, testkit: harness.Testkit, model: str, kind: str):
    before = testkit.stats()
    stream = openai_client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "Say hello."}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks, "empty stream"
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == HELLO
    finish_reasons = [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices]
    assert finish_reasons[-1] == "stop"
    final = chunks[-1]
    assert final.choices == [], "with include_usage the last chunk carries usage and no choices"
    assert final.usage is not None
    assert all(chunk.usage is None for chunk in chunks[:-1])
    testkit.assert_usage(kind, before, final.usage.prompt_tokens, final.usage.completion_tokens)


def test_chat_tool_round_trip(openai_client: openai.OpenAI, model: str):
    messages: list = [{"role": "user", "content": WEATHER_PROMPT}]
    first = openai_client.chat.completions.create(model=model, messages=messages, tools=[CHAT_WEATHER_TOOL])
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls
    assert calls is not None and len(calls) == 1
    call = calls[0]
    assert call.type == "function"
    assert call.id
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == WEATHER_ARGS

    # As in the SDK's documentation: send the assistant message back as is, then the tool result.
    messages.append(choice.message)
    messages.append({"role": "tool", "tool_call_id": call.id, "content": WEATHER_RESULT})
    second = openai_client.chat.completions.create(model=model, messages=messages, tools=[CHAT_WEATHER_TOOL])
    assert second.choices[0].message.content == f"done: {WEATHER_RESULT}"
    assert second.choices[0].finish_reason == "stop"


def test_chat_tool_call_stream(openai_client: openai.OpenAI, model: str):
    stream = openai_client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": WEATHER_PROMPT}],
        tools=[CHAT_WEATHER_TOOL],
        stream=True,
    )
    calls: dict[int, dict] = {}
    finish_reason = None
    for chunk in stream:
        if not chunk.choices:
            continue
        choice = chunk.choices[0]
        finish_reason = choice.finish_reason or finish_reason
        for delta in choice.delta.tool_calls or []:
            call = calls.setdefault(delta.index, {"id": None, "name": "", "arguments": ""})
            call["id"] = delta.id or call["id"]
            if delta.function is not None:
                call["name"] += delta.function.name or ""
                call["arguments"] += delta.function.arguments or ""
    assert finish_reason == "tool_calls"
    assert list(calls) == [0]
    assert calls[0]["id"]
    assert calls[0]["name"] == "get_weather"
    assert json.loads(calls[0]["arguments"]) == WEATHER_ARGS


# --- responses --------------------------------------------------------------------------------------------


def test_responses_non_stream(openai_client: openai.OpenAI, testkit: harness.Testkit, model: str, kind: str):
    before = testkit.stats()
    response = openai_client.responses.create(model=model, input="Say hello.")
    assert response.status == "completed"
    assert response.output_text == HELLO
    assert [item.type for item in response.output] == ["message"]
    usage = response.usage
    assert usage is not None
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    testkit.assert_usage(kind, before, usage.input_tokens, usage.output_tokens)


def test_responses_stream_helper(openai_client: openai.OpenAI, testkit: harness.Testkit, model: str, kind: str):
    """`client.responses.stream` accumulates a snapshot, so it also checks event order and indices."""
    before = testkit.stats()
    with openai_client.responses.stream(model=model, input="Say hello.") as stream:
        events = list(stream)
        final = stream.get_final_response()
    types = [event.type for event in events]
    assert types[0] == "response.created"
    assert types[-1] == "response.completed"
    assert "response.output_text.delta" in types
    deltas = "".join(event.delta for event in events if event.type == "response.output_text.delta")
    assert deltas == HELLO
    assert final.output_text == HELLO
    assert final.status == "completed"
    assert final.usage is not None
    testkit.assert_usage(kind, before, final.usage.input_tokens, final.usage.output_tokens)


def test_responses_stream_raw(openai_client: openai.OpenAI, model: str):
    """`stream=True` without the helper: plain SSE events, ending in `response.completed`."""
    events = list(openai_client.responses.create(model=model, input="Say hello.", stream=True))
    types = [event.type for event in events]
    assert types[0] == "response.created"
    assert types[-1] == "response.completed"
    for expected in ("response.output_item.added", "response.output_text.delta", "response.output_item.done"):
        assert expected in types, types
    sequence = [getattr(event, "sequence_number", None) for event in events]
    assert None not in sequence, f"every event carries a sequence_number: {sequence}"
    assert sequence == sorted(sequence) and len(set(sequence)) == len(sequence), sequence
    completed = events[-1].response
    assert completed.status == "completed"
    assert completed.output_text == HELLO
    assert completed.usage is not None and completed.usage.output_tokens > 0


def test_responses_function_tool_round_trip(openai_client: openai.OpenAI, model: str):
    inputs: list = [{"role": "user", "content": WEATHER_PROMPT}]
    first = openai_client.responses.create(model=model, input=inputs, tools=[RESPONSES_WEATHER_TOOL])
    calls = [item for item in first.output if item.type == "function_call"]
    assert len(calls) == 1, first.output
    call = calls[0]
    assert call.name == "get_weather"
    assert call.call_id
    assert json.loads(call.arguments) == WEATHER_ARGS

    # Stateless round trip, as in the SDK's documentation: replay the output items, add the tool output.
    inputs += first.output
    inputs.append({"type": "function_call_output", "call_id": call.call_id, "output": WEATHER_RESULT})
    second = openai_client.responses.create(model=model, input=inputs, tools=[RESPONSES_WEATHER_TOOL])
    assert second.output_text == f"done: {WEATHER_RESULT}"


def test_responses_custom_tool_round_trip(openai_client: openai.OpenAI, model: str):
    """A freeform (custom) tool call carries raw text, the way Codex's `apply_patch` does."""
    prompt = "Create hello.txt.\ntestkit-tool: apply_patch " + json.dumps({"input": PATCH})
    inputs: list = [{"role": "user", "content": prompt}]
    first = openai_client.responses.create(model=model, input=inputs, tools=[RESPONSES_PATCH_TOOL])
    calls = [item for item in first.output if item.type == "custom_tool_call"]
    assert len(calls) == 1, first.output
    call = calls[0]
    assert call.name == "apply_patch"
    assert call.input == PATCH

    inputs += first.output
    inputs.append({"type": "custom_tool_call_output", "call_id": call.call_id, "output": "Success. Updated hello.txt"})
    second = openai_client.responses.create(model=model, input=inputs, tools=[RESPONSES_PATCH_TOOL])
    assert second.output_text == "done: Success. Updated hello.txt"


# --- error shapes -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ["chat.completions", "responses"])
def test_unknown_top_level_field_is_rejected(openai_client: openai.OpenAI, endpoint: str):
    with pytest.raises(openai.BadRequestError) as raised:
        if endpoint == "chat.completions":
            openai_client.chat.completions.create(
                model="tk/scripted",
                messages=[{"role": "user", "content": "Say hello."}],
                extra_body={"tandem_no_such_field": True},
            )
        else:
            openai_client.responses.create(
                model="tk/scripted", input="Say hello.", extra_body={"tandem_no_such_field": True}
            )
    error = raised.value
    assert error.status_code == 400
    assert "tandem_no_such_field" in error.message
    # OpenAI-shaped body: {"error": {"message": ..., "type": ...}}; the SDK exposes the inner object.
    assert isinstance(error.body, dict) and "tandem_no_such_field" in error.body.get("message", ""), error.body


def test_body_over_limit_is_413(small_gateway: harness.Gateway):
    client = openai.OpenAI(base_url=f"{small_gateway.url}/v1", api_key="tandem-test-key", max_retries=0, timeout=30.0)
    big = "x" * (4 * 64 * 1024)
    with pytest.raises(openai.APIStatusError) as raised:
        client.chat.completions.create(model="tk/scripted", messages=[{"role": "user", "content": big}])
    assert raised.value.status_code == 413


def test_body_under_limit_passes(small_gateway: harness.Gateway):
    client = openai.OpenAI(base_url=f"{small_gateway.url}/v1", api_key="tandem-test-key", max_retries=0, timeout=30.0)
    completion = client.chat.completions.create(
        model="tk/scripted", messages=[{"role": "user", "content": "y" * (16 * 1024)}]
    )
    assert completion.choices[0].message.content == HELLO
