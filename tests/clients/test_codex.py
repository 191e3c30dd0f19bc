"""OpenAI's Codex CLI (`codex exec`) as a real client of Tandem's `/v1/responses`, fully offline.

Codex talks to a custom provider `tandem` (see shared/reference/codex-client.md §1). The testkit scripts the
model: a `testkit-tool:` line in the prompt becomes a tool call, and a tool result gets `done: <first line>`.
So each scenario is one real tool execution by Codex, in its sandbox, with the output sent back through Tandem.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

import harness

CODEX_TIMEOUT_S = 180
API_KEY_ENV = "TANDEM_CODEX_API_KEY"
PATCH = "*** Begin Patch\n*** Add File: hello.txt\n+hello from tandem\n*** End Patch\n"


def catalog_entry(slug: str) -> dict:
    """Model metadata (codex-client.md §1.5): removes the fallback warning and selects the freeform apply_patch."""
    return {
        "slug": slug,
        "display_name": f"Tandem {slug}",
        "description": "Scripted testkit upstream behind the Tandem gateway",
        "base_instructions": "You are a coding agent running in the Codex CLI. Be precise, safe and helpful.",
        "context_window": 128000,
        "default_reasoning_level": "low",
        "supported_reasoning_levels": [{"effort": "low", "description": "fast"}],
        "shell_type": "unified_exec",
        "apply_patch_tool_type": "freeform",
        "visibility": "list",
        "supported_in_api": True,
        "priority": 1,
        "support_verbosity": False,
        "truncation_policy": {"mode": "tokens", "limit": 10000},
        "experimental_supported_tools": [],
    }


def codex_config(base_url: str) -> str:
    return f"""\
model = "{harness.MODELS[0]}"
model_provider = "tandem"
model_catalog_json = "models.json"
web_search = "disabled"

[model_providers.tandem]
name = "Tandem"
base_url = "{base_url}"
env_key = "{API_KEY_ENV}"
wire_api = "responses"
# Fail fast: a broken gateway should fail the test, not be retried with backoff.
request_max_retries = 0
stream_max_retries = 0

[analytics]
enabled = false

[features]
plugins = false
"""


@dataclass
class Codex:
    binary: str
    home: Path
    scratch: Path
    sandbox_args: list[str]

    def env(self) -> dict[str, str]:
        env = harness.child_env()
        env["CODEX_HOME"] = str(self.home)
        env[API_KEY_ENV] = "tandem-test-key"
        env.pop("RUST_LOG", None)
        return env

    def exec(self, workdir: Path, model: str, prompt: str) -> subprocess.CompletedProcess:
        argv = [
            self.binary, "exec", "--json", "--skip-git-repo-check", "--ephemeral",
            *self.sandbox_args, "-C", str(workdir), "-m", model, prompt,
        ]  # fmt: skip
        return subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=self.env(),
            timeout=CODEX_TIMEOUT_S,
        )


def probe_sandbox(binary: str, home: Path, scratch: Path) -> list[str]:
    """`-s workspace-write` when Codex's bubblewrap sandbox can run here, else no sandbox at all."""
    probe_dir = scratch / "sandbox-probe"
    probe_dir.mkdir()
    env = harness.child_env()
    env["CODEX_HOME"] = str(home)
    result = subprocess.run(
        [binary, "sandbox", "-c", 'sandbox_mode="workspace-write"', "--", "sh", "-c", "echo ok > probe.txt"],
        cwd=probe_dir,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    if result.returncode == 0 and (probe_dir / "probe.txt").is_file():
        return ["-s", "workspace-write"]
    print(f"codex sandbox unusable here (exit {result.returncode}): {result.stderr[-2000:]}; running unsandboxed")
    return ["--dangerously-bypass-approvals-and-sandbox"]


@pytest.fixture(scope="session")
def codex(gateway: harness.Gateway, scratch: Path) -> Codex:
    binary = os.environ.get("CODEX_BIN", "")
    if not binary or not Path(binary).is_file():
        pytest.fail(f"CODEX_BIN={binary!r} is not a file; run through `cargo xtask ci`", pytrace=False)
    home = scratch / "codex-home"
    home.mkdir()
    (home / "config.toml").write_text(codex_config(f"{gateway.url}/v1"))
    (home / "models.json").write_text(json.dumps({"models": [catalog_entry(slug) for slug in harness.MODELS]}))
    return Codex(binary=binary, home=home, scratch=scratch, sandbox_args=probe_sandbox(binary, home, scratch))


@pytest.fixture
def workdir(codex: Codex, request: pytest.FixtureRequest) -> Path:
    path = codex.scratch / "work" / request.node.name.replace("/", "_").replace("[", "-").replace("]", "")
    path.mkdir(parents=True)
    return path


def events_of(result: subprocess.CompletedProcess) -> list[dict]:
    events = []
    for line in result.stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            events.append(json.loads(line))
    return events


def completed_items(events: list[dict], item_type: str) -> list[dict]:
    return [e["item"] for e in events if e.get("type") == "item.completed" and e["item"].get("type") == item_type]


def describe(result: subprocess.CompletedProcess) -> str:
    return f"exit {result.returncode}\n--- stdout ---\n{result.stdout[-6000:]}\n--- stderr ---\n{result.stderr[-6000:]}"


def test_codex_shell_tool(codex: Codex, workdir: Path, model: str):
    prompt = 'Run a command.\ntestkit-tool: exec_command {"cmd":"echo hello-from-tool"}'
    result = codex.exec(workdir, model, prompt)
    assert result.returncode == 0, describe(result)
    events = events_of(result)
    commands = completed_items(events, "command_execution")
    assert len(commands) == 1, describe(result)
    assert "hello-from-tool" in commands[0]["aggregated_output"], describe(result)
    assert commands[0]["exit_code"] == 0, describe(result)
    messages = completed_items(events, "agent_message")
    assert messages and messages[-1]["text"].startswith("done: "), describe(result)
    assert events[-1]["type"] == "turn.completed", describe(result)


def test_codex_apply_patch(codex: Codex, workdir: Path, model: str):
    prompt = "Create hello.txt.\ntestkit-tool: apply_patch " + json.dumps({"input": PATCH})
    result = codex.exec(workdir, model, prompt)
    assert result.returncode == 0, describe(result)
    assert (workdir / "hello.txt").read_text() == "hello from tandem\n", describe(result)
    events = events_of(result)
    changes = completed_items(events, "file_change")
    assert len(changes) == 1 and changes[0]["status"] == "completed", describe(result)
    messages = completed_items(events, "agent_message")
    assert messages and messages[-1]["text"].startswith("done: "), describe(result)
    assert events[-1]["type"] == "turn.completed", describe(result)
