"""The official `anthropic` Python SDK against Tandem's `/v1/messages`, over both upstream kinds."""

from __future__ import annotations

import anthropic

import harness
from harness import HELLO, WEATHER_ARGS, WEATHER_PROMPT, WEATHER_RESULT, WEATHER_SCHEMA

WEATHER_TOOL = {"name": "get_weather", "description": "Current weather for a city.", "input_schema": WEATHER_SCHEMA}
MAX_TOKENS = 256


def test_messages_non_stream(anthropic_client: anthropic.Anthropic, testkit: harness.Testkit, model: str, kind: str):
    before = testkit.stats()
    message = anthropic_client.messages.create(
        model=model, max_tokens=MAX_TOKENS, messages=[{"role": "user", "content": "Say hello."}]
    )
    assert message.type == "message"
    assert message.role == "assistant"
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text == HELLO
    assert message.stop_reason == "end_turn"
    assert message.usage.output_tokens == 3, "`hello from testkit` is three tokens"
    testkit.assert_usage(kind, before, message.usage.input_tokens, message.usage.output_tokens)


def test_messages_with_system_prompt(anthropic_client: anthropic.Anthropic, testkit: harness.Testkit, model: str):
    """A top-level `system` reaches the upstream (as a system message or as Anthropic's `system`)."""
    message = anthropic_client.messages.create(
        model=model,
        max_tokens=MAX_TOKENS,
        system="You are terse.",
        messages=[{"role": "user", "content": "Say hello."}],
    )
    assert message.content[0].text == HELLO
    assert "You are terse." in str(testkit.last_request_body())


def test_messages_stream(anthropic_client: anthropic.Anthropic, testkit: harness.Testkit, model: str, kind: str):
    before = testkit.stats()
    with anthropic_client.messages.stream(
        model=model, max_tokens=MAX_TOKENS, messages=[{"role": "user", "content": "Say hello."}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == HELLO
    assert [block.type for block in final.content] == ["text"]
    assert final.content[0].text == HELLO
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 3, "`hello from testkit` is three tokens"
    testkit.assert_usage(kind, before, final.usage.input_tokens, final.usage.output_tokens)


def test_tool_use_round_trip(anthropic_client: anthropic.Anthropic, model: str):
    messages: list = [{"role": "user", "content": WEATHER_PROMPT}]
    first = anthropic_client.messages.create(model=model, max_tokens=MAX_TOKENS, tools=[WEATHER_TOOL], messages=messages)
    assert first.stop_reason == "tool_use"
    uses = [block for block in first.content if block.type == "tool_use"]
    assert len(uses) == 1, first.content
    use = uses[0]
    assert use.name == "get_weather"
    assert use.id
    assert use.input == WEATHER_ARGS

    # As in the SDK's documentation: the assistant turn goes back as is, then a user turn with the tool_result.
    messages.append({"role": "assistant", "content": first.content})
    messages.append(
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": WEATHER_RESULT}]}
    )
    second = anthropic_client.messages.create(model=model, max_tokens=MAX_TOKENS, tools=[WEATHER_TOOL], messages=messages)
    assert second.stop_reason == "end_turn"
    assert [block.type for block in second.content] == ["text"]
    assert second.content[0].text == f"done: {WEATHER_RESULT}"


def test_tool_use_stream(anthropic_client: anthropic.Anthropic, model: str):
    """Streaming `input_json_delta` events accumulate to the tool input."""
    with anthropic_client.messages.stream(
        model=model,
        max_tokens=MAX_TOKENS,
        tools=[WEATHER_TOOL],
        messages=[{"role": "user", "content": WEATHER_PROMPT}],
    ) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    uses = [block for block in final.content if block.type == "tool_use"]
    assert len(uses) == 1, final.content
    assert uses[0].name == "get_weather"
    assert uses[0].input == WEATHER_ARGS
