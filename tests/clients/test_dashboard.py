"""The web dashboard at /ui in a real browser: Debian's Chromium driven by Playwright.

`tandem demo --dir <dir> --no-serve` writes a synthetic history (a git repository, a ledger, a
`tandem.toml`); a `tandem serve` of that config with `TANDEM_ADMIN_TOKEN` set serves the dashboard. The
browser signs in (a wrong token first), waits for every panel to render from `/ui/api/dashboard`, for the
ledger's background verification to show as "verified", opens a change's entry (inclusion proof and
provenance), switches the period and signs out. Throughout, the page must log no console error, throw no
exception and request nothing from any origin but the gateway (the CSP is `default-src 'self'`).

A full-page screenshot at 1280×900 goes to `$TANDEM_ARTIFACTS_DIR/dashboard.png` (else the test's tmp dir).
It is checked with Pillow rather than against a baseline, since its dates change every day: its size, that it
is not blank, and that each chart draws its series in the colours `app.js` defines (`PALETTE`).

Chromium is `/usr/bin/chromium` (the `chromium` Debian package, installed by `cargo xtask setup`), or
`$TANDEM_CHROMIUM`; Playwright never downloads a browser here.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import secrets
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from PIL import Image, ImageChops
from playwright.sync_api import Browser, ConsoleMessage, Page, Request, expect, sync_playwright

import harness

CHROMIUM = os.environ.get("TANDEM_CHROMIUM") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
UI_DIR = Path(__file__).resolve().parents[2] / "crates" / "tandem-report" / "ui"
VIEWPORT = {"width": 1280, "height": 900}
DEMO_TIMEOUT_S = 300
VERIFY_TIMEOUT_S = 30
# The gateway computes the report on each dashboard request (git history and blame); unoptimised builds
# take tens of seconds for the demo's history.
API_TIMEOUT_S = 120
RENDER_TIMEOUT_MS = API_TIMEOUT_S * 1000
# The charts and the series each must show, as keys of `PALETTE` in app.js, with the fewest pixels of
# that colour its SVG must contain (a one-pixel bar is 30-odd pixels; legend swatches are outside the SVG).
CHART_COLOURS = {
    "trend": {"merged": 300, "lead": 40},
    "rework": {"rework": 100},
    "routing": {"live": 300, "deep": 100},
    "tiers": {"live": 100, "deep": 100},
}
COLOUR_TOLERANCE = 8


def palette() -> dict[str, tuple[int, int, int]]:
    """The series colours of app.js: the `const PALETTE = { name: '#rrggbb', ... };` block."""
    source = (UI_DIR / "app.js").read_text()
    block = re.search(r"const PALETTE = \{(.*?)\};", source, re.S)
    assert block, "app.js has no `const PALETTE = {...};` block"
    colours = {name: hexa for name, hexa in re.findall(r"(\w+): '#([0-9a-fA-F]{6})'", block.group(1))}
    assert colours, "PALETTE in app.js names no colour"
    return {name: tuple(int(hexa[i : i + 2], 16) for i in (0, 2, 4)) for name, hexa in colours.items()}


@dataclass
class Server:
    """The dashboard's gateway and its admin token."""

    process: harness.Process
    url: str
    token: str


@dataclass
class Watch:
    """What the page did that it must not: console errors, uncaught exceptions, requests elsewhere."""

    origin: str
    problems: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def attach(self, page: Page) -> None:
        page.on("console", self.on_console)
        page.on("pageerror", lambda error: self.problems.append(f"uncaught exception: {error}"))
        page.on("request", self.on_request)

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        # Chromium logs every non-2xx document as a failed resource; the 401 of a wrong token is expected.
        location = message.location.get("url", "") if message.location else ""
        if location.endswith("/ui/login") and "401" in message.text:
            return
        self.problems.append(f"console error: {message.text} (at {location})")

    def on_request(self, request: Request) -> None:
        self.requests.append(f"{request.method} {request.url}")
        parts = urlsplit(request.url)
        if f"{parts.scheme}://{parts.netloc}" != self.origin:
            self.problems.append(f"request to another origin: {request.method} {request.url}")


@pytest.fixture(scope="module")
def demo_dir(tandem_bin: str, run_dir: Path) -> Path:
    """The directory `tandem demo` filled."""
    work = run_dir / "dashboard"
    work.mkdir(parents=True, exist_ok=True)
    demo = work / "demo"
    argv = [tandem_bin, "demo", "--dir", str(demo), "--no-serve"]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=DEMO_TIMEOUT_S, env=harness.child_env())
    assert result.returncode == 0, (
        f"`{' '.join(argv)}` exited with {result.returncode}\n--- stdout ---\n{result.stdout[-4000:]}\n"
        f"--- stderr ---\n{result.stderr[-4000:]}"
    )
    assert result.stdout.strip(), "tandem demo printed no report"
    assert (demo / "tandem.toml").is_file(), f"tandem demo wrote no {demo / 'tandem.toml'}"
    assert (demo / "repo" / ".git").exists(), f"tandem demo made no git repository at {demo / 'repo'}"
    return demo


@pytest.fixture(scope="module")
def server(tandem_bin: str, demo_dir: Path) -> Iterator[Server]:
    token = secrets.token_urlsafe(24)
    port = harness.free_port()
    process = harness.Process(
        name="tandem serve (dashboard)",
        argv=[tandem_bin, "serve", "--config", str(demo_dir / "tandem.toml"), "--listen", f"127.0.0.1:{port}"],
        log_path=demo_dir.parent / "serve.log",
        env={"TANDEM_ADMIN_TOKEN": token},
    )
    process.start()
    url = f"http://127.0.0.1:{port}"
    try:
        harness.wait_until_ready(process, f"{url}/healthz")
    except BaseException:
        process.stop()
        raise
    yield Server(process=process, url=url, token=token)
    process.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} does not exist; install Debian's chromium (`cargo xtask setup` does)", pytrace=False)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    configured = os.environ.get("TANDEM_ARTIFACTS_DIR")
    directory = Path(configured) if configured else tmp_path
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def test_dashboard_api_requires_a_session(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=API_TIMEOUT_S, trust_env=False) as client:
        response = client.get("/ui/api/dashboard", params={"since": "30d"})
        assert response.status_code == 401, response.text
        assert response.headers["content-type"].startswith("application/json"), response.headers
        assert isinstance(response.json(), dict)
        assert client.get("/ui/api/entry/0").status_code == 401

        page = client.get("/ui")
        assert page.status_code == 200, page.text
        assert 'name="token"' in page.text and 'action="/ui/login"' in page.text, "GET /ui without a session is not the login page"

        wrong = client.post("/ui/login", data={"token": "not-" + server.token})
        assert wrong.status_code == 401, wrong.text
        assert 'name="token"' in wrong.text
        assert "set-cookie" not in wrong.headers, "a wrong token got a cookie"

        right = client.post("/ui/login", data={"token": server.token})
        assert right.status_code == 303, right.text
        assert right.headers["location"].endswith("/ui")
        cookie = right.headers.get("set-cookie", "")
        assert "httponly" in cookie.lower(), f"the session cookie is not HttpOnly: {cookie}"
        dashboard = client.get("/ui/api/dashboard", params={"since": "30d"})
        assert dashboard.status_code == 200, dashboard.text
        body = dashboard.json()
        assert {"report", "budgets", "audit"} <= body.keys(), list(body)


def test_dashboard(browser: Browser, server: Server, artifacts: Path) -> None:
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(RENDER_TIMEOUT_MS)
    watch = Watch(origin=server.url)
    watch.attach(page)
    try:
        sign_in(page, server)
        wait_until_verified(page)
        check_panels(page)
        screenshot = artifacts / "dashboard.png"
        page.screenshot(path=str(screenshot), full_page=True)
        check_screenshot(page, screenshot)
        check_entry(page)
        check_period(page)
        sign_out(page, server)
    except BaseException:
        (artifacts / "dashboard-requests.txt").write_text("\n".join(watch.requests) + "\n")
        with contextlib.suppress(Exception):
            page.screenshot(path=str(artifacts / "dashboard-failure.png"), full_page=True)
        raise
    finally:
        context.close()
    assert not watch.problems, "\n".join(watch.problems)


def sign_in(page: Page, server: Server) -> None:
    page.goto(f"{server.url}/ui")
    expect(page.locator("#token")).to_be_visible()
    before = page.locator("body").inner_text()

    page.fill("#token", "not-" + server.token)
    with page.expect_navigation() as navigation:
        page.click("#login")
    assert navigation.value.status == 401, f"a wrong token answered {navigation.value.status}"
    expect(page.locator("#token")).to_be_visible()
    expect(page.get_by_role("alert")).to_be_visible()
    after = page.locator("body").inner_text()
    assert len(after.strip()) > len(before.strip()), f"no error message after a wrong token:\n{after}"

    page.fill("#token", server.token)
    with page.expect_navigation() as navigation:
        page.click("#login")
    assert navigation.value.status == 200, f"signing in ended with {navigation.value.status}"
    assert urlsplit(page.url).path == "/ui", page.url
    wait_for_render(page)


def wait_for_render(page: Page) -> None:
    """Waits until app.js has drawn a dashboard (it marks <body data-ready>, and data-since with its period)."""
    page.wait_for_selector("body[data-ready]")
    status = page.locator("#status")
    assert not status.is_visible(), f"the dashboard shows an error: {status.inner_text()}"


def wait_until_verified(page: Page) -> None:
    """The server verifies the ledger in the background: reload until the badge says so."""
    badge = page.locator("#audit-badge")
    deadline = time.monotonic() + VERIFY_TIMEOUT_S
    while "ok" not in (badge.get_attribute("class") or "").split():
        text = badge.inner_text()
        assert "failed" not in text, f"the ledger failed verification: {text}"
        assert time.monotonic() < deadline, f"the ledger was not verified within {VERIFY_TIMEOUT_S}s: {text}"
        time.sleep(1)
        page.reload()
        wait_for_render(page)
    assert badge.inner_text().startswith("verified"), badge.inner_text()


def count(page: Page, selector: str) -> int:
    return page.locator(selector).count()


def check_panels(page: Page) -> None:
    values = page.locator("#summary .kpi .value").all_inner_texts()
    labels = page.locator("#summary .kpi .label").all_inner_texts()
    assert len(values) == 8, f"KPI cards: {labels} {values}"
    kpis = dict(zip(labels, values))
    for name in ("Changes", "Merged"):
        assert re.fullmatch(r"[\d,]+", kpis[name]) and int(kpis[name].replace(",", "")) > 0, f"{name}: {kpis}"
    assert re.search(r"\d", kpis["Lead time p50"]), kpis
    assert sum(bool(re.search(r"\d", v)) for v in values) >= 7, f"KPIs without a figure: {kpis}"

    for chart in ("trend", "rework", "routing", "tiers"):
        shapes = count(page, f"#{chart} svg rect, #{chart} svg path")
        assert shapes > 0, f"#{chart} draws no bar or line"
    assert count(page, "#trend svg path") == 1, "#trend has no lead time line"
    assert count(page, "#routing svg rect title") >= 2
    legend = page.locator("#routing .legend").inner_text()
    assert "live" in legend and "deep" in legend, f"routing legend: {legend}"
    assert count(page, "#tiers tbody tr") >= 2

    assert count(page, "#classes tbody tr") >= 8
    assert count(page, "#classes tbody tr.total-row") >= 1, "no class sums its tiers"
    expect(page.locator('#classes tbody tr[data-class="all"][data-tier="all"]')).to_have_count(1)
    assert count(page, "#budgets .budget") >= 1
    assert count(page, "#repos tbody tr") >= 1
    assert count(page, "#audit tbody tr") >= 1


def check_screenshot(page: Page, path: Path) -> None:
    with Image.open(path) as image:
        assert image.width == VIEWPORT["width"], image.size
        assert image.height >= VIEWPORT["height"], image.size
        colours = image.convert("RGB").getcolors(maxcolors=1 << 24)
        assert colours is not None and len(colours) > 300, f"the screenshot looks blank: {len(colours or [])} colours"
    colours_of = palette()
    for chart, wanted in CHART_COLOURS.items():
        shot = Image.open(io.BytesIO(page.locator(f"#{chart} svg").first.screenshot())).convert("RGB")
        for name, least in wanted.items():
            found = pixels_near(shot, colours_of[name])
            assert found >= least, f"#{chart} has {found} pixels of {name} {colours_of[name]}, expected at least {least}"


def pixels_near(image: Image.Image, rgb: tuple[int, int, int]) -> int:
    """How many pixels are within COLOUR_TOLERANCE of `rgb` in every channel."""
    masks = [
        band.point(lambda v, c=c: 255 if abs(v - c) <= COLOUR_TOLERANCE else 0) for band, c in zip(image.split(), rgb)
    ]
    both = ImageChops.multiply(ImageChops.multiply(masks[0], masks[1]), masks[2])
    return both.histogram()[255]


def check_entry(page: Page) -> None:
    """Opens change entries (newest first) until one shows its provenance; each shows its inclusion proof."""
    changes = page.locator("#audit tbody tr[data-kind='change']")
    total = changes.count()
    assert total > 0, "the audit table lists no change"
    panel = page.locator("#entry")
    for i in range(min(total, 5)):
        row = changes.nth(i)
        index = row.get_attribute("data-index")
        row.locator("a").first.click()
        expect(page).to_have_url(re.compile(rf"#entry/{index}$"))
        expect(panel).to_be_visible()
        expect(panel.get_by_role("heading", name="Inclusion proof")).to_be_visible()
        inclusion = panel.locator(".inclusion").inner_text()
        assert re.search(r"[0-9a-f]{64}", inclusion), f"entry #{index}: no leaf hash in the inclusion proof:\n{inclusion}"
        sealed = json.loads(panel.locator("pre.json").first.inner_text())
        assert sealed.get("kind") == "change", f"entry #{index} is not a change: {sealed}"
        if panel.get_by_role("heading", name="Provenance").count():
            statement = json.loads(panel.locator("pre.json").last.inner_text())
            assert statement.get("_type", "").startswith("https://in-toto.io/Statement/"), statement
            break
        close_entry(page)
    else:
        pytest.fail(f"none of the newest {min(total, 5)} changes shows a Provenance attestation")
    close_entry(page)


def close_entry(page: Page) -> None:
    page.click("#entry-close")
    expect(page.locator("#entry")).to_be_hidden()
    assert urlsplit(page.url).fragment == "", page.url


def check_period(page: Page) -> None:
    with page.expect_response(lambda r: "/ui/api/dashboard?since=90d" in r.url) as response:
        page.select_option("#since", "90d")
    assert response.value.status == 200, response.value.status
    page.wait_for_selector("body[data-since='90d']")
    wait_for_render(page)
    assert count(page, "#classes tbody tr") >= 8


def sign_out(page: Page, server: Server) -> None:
    with page.expect_navigation():
        page.click("#logout")
    expect(page.locator("#token")).to_be_visible()
    response = page.request.get(f"{server.url}/ui/api/dashboard?since=30d")
    assert response.status == 401, f"the session survived signing out: {response.status}"
