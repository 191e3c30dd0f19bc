"""Processes and helpers shared by the client tests: a real `tandem testkit` upstream and `tandem serve` gateways.

Everything binds to 127.0.0.1 only. The fixtures in conftest.py own the lifetimes; this module only knows how
to start, probe and stop the processes, and how to ask the testkit what it saw.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

# Upstream model names, one per provider kind in the gateway config: "tk" speaks OpenAI chat completions
# upstream, "tka" speaks Anthropic messages upstream. Client tests are parametrized over both.
MODELS = ["tk/scripted", "tka/scripted"]
KIND_OF_MODEL = {"tk/scripted": "openai", "tka/scripted": "anthropic"}

# A prompt line the testkit turns into a tool call (see the testkit's scripted default).
WEATHER_PROMPT = 'What is the weather in Paris?\ntestkit-tool: get_weather {"city":"Paris"}'
WEATHER_ARGS = {"city": "Paris"}
WEATHER_RESULT = "sunny, 21 C"
WEATHER_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string", "description": "City name"}},
    "required": ["city"],
}
HELLO = "hello from testkit"

STARTUP_TIMEOUT_S = 60.0
LOG_TAIL_LINES = 200

# Every process started by this module, so a failing test can show their logs.
PROCESSES: list[Process] = []


def free_port() -> int:
    """A loopback port that was free a moment ago (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Process:
    """A child process whose stdout and stderr go to one log file."""

    name: str
    argv: list[str]
    log_path: Path
    popen: subprocess.Popen | None = None
    # Variables set for this process on top of `child_env()`.
    env: dict[str, str] = field(default_factory=dict)

    def start(self) -> None:
        log = self.log_path.open("wb")
        try:
            self.popen = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=child_env() | self.env
            )
        finally:
            log.close()
        PROCESSES.append(self)

    def exited(self) -> int | None:
        return None if self.popen is None else self.popen.poll()

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as err:
            return f"(cannot read {self.log_path}: {err})"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        self.popen.terminate()
        try:
            self.popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=10)


def child_env() -> dict[str, str]:
    """The environment for child processes: ours, with loopback never sent through a proxy."""
    env = dict(os.environ)
    no_proxy = ",".join(filter(None, ["127.0.0.1", "localhost", env.get("NO_PROXY", "")]))
    env["NO_PROXY"] = env["no_proxy"] = no_proxy
    env.setdefault("RUST_LOG", "info")
    return env


def wait_until_ready(process: Process, url: str, timeout_s: float = STARTUP_TIMEOUT_S) -> None:
    """Polls `url` until it answers 200, failing early when the process dies."""
    deadline = time.monotonic() + timeout_s
    last_error = "no attempt yet"
    while time.monotonic() < deadline:
        code = process.exited()
        if code is not None:
            raise RuntimeError(
                f"{process.name} exited with {code} before {url} was ready\n"
                f"command: {' '.join(process.argv)}\n--- log ---\n{process.log_tail()}"
            )
        try:
            response = httpx.get(url, timeout=2.0, trust_env=False)
            if response.status_code == 200:
                return
            last_error = f"HTTP {response.status_code}: {response.text[:200]}"
        except httpx.HTTPError as err:
            last_error = repr(err)
        time.sleep(0.1)
    raise RuntimeError(
        f"{process.name} was not ready at {url} after {timeout_s}s (last: {last_error})\n"
        f"command: {' '.join(process.argv)}\n--- log ---\n{process.log_tail()}"
    )


@dataclass
class Testkit:
    """The scripted upstream (`tandem testkit`)."""

    __test__ = False  # not a pytest test class despite the name

    process: Process
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stats(self) -> dict:
        response = httpx.get(f"{self.url}/testkit/stats", timeout=10.0, trust_env=False)
        response.raise_for_status()
        return response.json()

    def requests(self) -> list:
        response = httpx.get(f"{self.url}/testkit/requests", timeout=10.0, trust_env=False)
        response.raise_for_status()
        body = response.json()
        if isinstance(body, dict):
            for key in ("requests", "data", "items"):
                if isinstance(body.get(key), list):
                    return body[key]
        assert isinstance(body, list), f"unexpected /testkit/requests shape: {json.dumps(body)[:500]}"
        return body

    def last_request_body(self) -> dict:
        captured = self.requests()
        assert captured, "the testkit captured no request"
        entry = captured[-1]
        if isinstance(entry, dict) and isinstance(entry.get("body"), dict):
            return entry["body"]
        assert isinstance(entry, dict), f"unexpected captured request: {json.dumps(entry)[:500]}"
        return entry

    def assert_usage(self, kind: str, before: dict, prompt: int, completion: int) -> None:
        """The gateway made exactly one upstream request and reports exactly the tokens the testkit counted for it."""
        after = self.stats()
        assert after["requests"] - before["requests"] == 1, f"expected one upstream request: {before} -> {after}"
        assert (prompt, completion) == self.replay_usage(kind), "usage differs from the testkit's own count"

    def replay_usage(self, kind: str) -> tuple[int, int]:
        """(prompt, completion) tokens the testkit reports for the last upstream request, asked directly.

        The last captured body is what the gateway sent upstream; replaying it non-streaming straight to
        the testkit gives the testkit's own usage numbers, which the gateway must pass through unchanged.
        """
        body = dict(self.last_request_body())
        body["stream"] = False
        body.pop("stream_options", None)
        path = "/v1/chat/completions" if kind == "openai" else "/v1/messages"
        response = httpx.post(f"{self.url}{path}", json=body, timeout=30.0, trust_env=False)
        assert response.status_code == 200, f"replay to the testkit failed: {response.status_code} {response.text}"
        usage = response.json()["usage"]
        if kind == "openai":
            return usage["prompt_tokens"], usage["completion_tokens"]
        return usage["input_tokens"], usage["output_tokens"]


@dataclass
class Gateway:
    """A `tandem serve` process and its config."""

    process: Process
    port: int
    config_path: Path
    extra: dict = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def start_testkit(tandem_bin: str, log_dir: Path) -> Testkit:
    port = free_port()
    process = Process(
        name="tandem testkit",
        argv=[tandem_bin, "testkit", "--listen", f"127.0.0.1:{port}"],
        log_path=log_dir / "testkit.log",
    )
    process.start()
    testkit = Testkit(process=process, port=port)
    try:
        wait_until_ready(process, f"{testkit.url}/testkit/stats")
    except BaseException:
        process.stop()
        raise
    return testkit


def gateway_config(*, listen_port: int, testkit_port: int, state_dir: Path, max_body_bytes: int, extra: str = "") -> str:
    """The gateway config: providers `tk` (OpenAI kind) and `tka` (Anthropic kind) on the testkit, one alias.

    `extra` is appended as is (more tables, such as `[auth]`).
    """
    upstream = f"http://127.0.0.1:{testkit_port}/v1"
    return f"""\
[server]
listen = "127.0.0.1:{listen_port}"
max_body_bytes = {max_body_bytes}
state_dir = {json.dumps(str(state_dir))}

[[providers]]
name = "tk"
kind = "openai"
base_url = "{upstream}"

[[providers]]
name = "tka"
kind = "anthropic"
base_url = "{upstream}"

[[models]]
name = "tandem-live"
provider = "tk"
model = "scripted"
""" + extra


def start_gateway(
    tandem_bin: str, testkit: Testkit, work_dir: Path, *, name: str, max_body_bytes: int, extra_config: str = ""
) -> Gateway:
    work_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config_path = work_dir / "tandem.toml"
    config_path.write_text(
        gateway_config(
            listen_port=port,
            testkit_port=testkit.port,
            state_dir=work_dir / "state",
            max_body_bytes=max_body_bytes,
            extra=extra_config,
        )
    )
    process = Process(
        name=name,
        argv=[tandem_bin, "serve", "--config", str(config_path)],
        log_path=work_dir / "serve.log",
    )
    process.start()
    gateway = Gateway(process=process, port=port, config_path=config_path)
    try:
        wait_until_ready(process, f"{gateway.url}/healthz")
    except BaseException:
        process.stop()
        raise
    return gateway
