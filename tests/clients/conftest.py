"""Session fixtures: one `tandem testkit` upstream and `tandem serve` gateways on free loopback ports.

`TANDEM_BIN` names the `tandem` binary (set by `cargo xtask ci`). Both processes are stopped at the end of
the session, and the tail of their logs is attached to the report of every failing test.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import anthropic
import openai
import pytest

import harness

DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024
SMALL_MAX_BODY_BYTES = 64 * 1024

# The SDK clients in this process must reach loopback directly even where a proxy is configured.
os.environ["NO_PROXY"] = os.environ["no_proxy"] = ",".join(filter(None, ["127.0.0.1", "localhost", os.environ.get("NO_PROXY")]))


def required_env(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        pytest.fail(f"{name} is not set; run these tests through `cargo xtask ci` (or `cargo xtask clients`)", pytrace=False)
    if not Path(value).is_file():
        pytest.fail(f"{name}={value} does not exist; build it first", pytrace=False)
    return value


@pytest.fixture(scope="session")
def tandem_bin() -> str:
    return required_env("TANDEM_BIN")


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Configs, state and logs of the processes of this session."""
    return tmp_path_factory.mktemp("tandem")


@pytest.fixture(scope="session")
def scratch(request: pytest.FixtureRequest) -> Path:
    """A scratch dir outside the system temp dir (Codex refuses to set up its sandbox helpers under it)."""
    configured = os.environ.get("TANDEM_TEST_SCRATCH")
    base = Path(configured) if configured else Path(request.config.rootpath) / ".pytest-scratch"
    if Path(tempfile.gettempdir()).resolve() in base.resolve().parents:
        cache = Path(os.environ.get("TANDEM_CI_CACHE") or Path.home() / ".cache" / "tandem-ci")
        base = cache / "pytest-scratch"
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    return base


@pytest.fixture(scope="session")
def testkit(tandem_bin: str, run_dir: Path):
    kit = harness.start_testkit(tandem_bin, run_dir)
    yield kit
    kit.process.stop()


@pytest.fixture(scope="session")
def gateway(tandem_bin: str, testkit: harness.Testkit, run_dir: Path):
    """The main gateway, with the default 32 MiB body limit."""
    gw = harness.start_gateway(
        tandem_bin, testkit, run_dir / "gateway", name="tandem serve", max_body_bytes=DEFAULT_MAX_BODY_BYTES
    )
    yield gw
    gw.process.stop()


@pytest.fixture(scope="session")
def small_gateway(tandem_bin: str, testkit: harness.Testkit, run_dir: Path):
    """A second gateway whose body limit is small, for the 413 test."""
    gw = harness.start_gateway(
        tandem_bin, testkit, run_dir / "small-gateway", name="tandem serve (small limit)", max_body_bytes=SMALL_MAX_BODY_BYTES
    )
    yield gw
    gw.process.stop()


@pytest.fixture(scope="session")
def openai_client(gateway: harness.Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="tandem-test-key", max_retries=0, timeout=30.0)


@pytest.fixture(scope="session")
def anthropic_client(gateway: harness.Gateway) -> anthropic.Anthropic:
    # The SDK appends /v1/messages itself.
    return anthropic.Anthropic(base_url=gateway.url, api_key="tandem-test-key", max_retries=0, timeout=30.0)


@pytest.fixture(params=harness.MODELS)
def model(request: pytest.FixtureRequest) -> str:
    """An upstream model name; the test runs once per upstream provider kind."""
    return request.param


@pytest.fixture
def kind(model: str) -> str:
    return harness.KIND_OF_MODEL[model]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if report.failed:
        for process in harness.PROCESSES:
            status = process.exited()
            state = "running" if status is None else f"exited with {status}"
            report.sections.append(
                (f"{process.name} log ({state}, last {harness.LOG_TAIL_LINES} lines of {process.log_path})", process.log_tail())
            )
    return report


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Stop anything a failed fixture left running."""
    for process in harness.PROCESSES:
        process.stop()
