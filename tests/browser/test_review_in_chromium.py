"""A clinician logs in, uploads, waits for the draft, resolves flags and signs — in real
headless Chromium (Debian's package) driven by Playwright. Engines are fakes here; the
real models are exercised in tests/integration."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from scribe.app import create_app
from tests.conftest import PASSWORD, wav_bytes

pytestmark = pytest.mark.browser
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(settings, runtime, practice) -> Iterator[str]:
    import uvicorn

    app = create_app(settings, runtime=runtime, start_worker=True)
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not srv.started and time.time() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def page(tmp_path) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is missing: `make test` installs it (apt-get install chromium)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        pg = browser.new_page()
        pg.set_default_timeout(90_000)  # CI machines can be slow; every wait below is for an event, not a sleep
        yield pg
        browser.close()


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_a_clinician_reviews_resolves_and_signs_in_chromium(server, page, tmp_path) -> None:
    page.goto(server + "/login")
    page.fill("input[name=username]", "dr_ada")
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.click("main button[type=submit]")
    assert page.url == server + "/", page.inner_text("body")[-2000:]
    with page.expect_navigation():
        page.click("text=New session")
    audio = tmp_path / "session.wav"
    audio.write_bytes(wav_bytes(seconds=3))
    page.set_input_files("input[name=audio]", str(audio))
    with page.expect_navigation():
        page.click("button:has-text('Upload')")
    page.wait_for_selector("text=AI draft", timeout=30_000)  # htmx polls the status, then refreshes
    shot(page, "review-with-flags")

    # Clicking a sentence highlights its evidence in the transcript.
    page.locator(".sentence").first.click()
    assert page.locator(".segment.highlight").count() >= 1

    # Signing is blocked until every section is reviewed and every flag resolved.
    assert page.locator("text=Cannot sign yet").count() == 1
    shot(page, "sign-blocked")
    while page.locator(".section:not(.reviewed)").count():
        with page.expect_navigation():
            page.locator(".section:not(.reviewed) button:has-text('Save and mark')").first.click()
    while page.locator("form.flag-form").count():
        form = page.locator("form.flag-form").first
        form.locator("input[name=reason]").fill("confirmed against the recording")
        with page.expect_navigation():
            form.locator("button").click()

    if not page.locator("input[name=attest]").count():
        shot(page, "unexpected")
        pytest.fail(page.inner_text("body")[-2000:])
    page.check("input[name=attest]")
    page.fill("#sign input[name=password]", PASSWORD)
    page.click("button:has-text('Sign note')")
    page.wait_for_selector("text=Electronically signed by")
    body = page.inner_text("body")
    assert "Content SHA-256" in body and "Dr Ada Tester" in body and "LIC-DR_ADA" in body
    shot(page, "signed-note")
