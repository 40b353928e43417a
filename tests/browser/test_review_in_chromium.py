"""A clinician logs in, uploads, waits for the draft, resolves flags and signs — in real
headless Chromium (Debian's package) driven by Playwright. Engines are fakes here; the
real models are exercised in tests/integration."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from playwright.sync_api import Page

from scribe.app import create_app
from scribe.config import Settings
from scribe.runtime import Runtime
from tests.conftest import PASSWORD, Clock, Practice, totp_code, wav_bytes
from tests.helpers import serving

pytestmark = pytest.mark.browser
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"


class Server(str):
    """The server's address, and its runtime (for the personas' authenticator codes)."""

    runtime: Runtime
    app: FastAPI

    def __new__(cls, url: str, runtime: Runtime, app: FastAPI) -> Server:
        obj = super().__new__(cls, url)
        obj.runtime, obj.app = runtime, app
        return obj


@pytest.fixture
def server(settings: Settings, runtime: Runtime, practice: Practice) -> Iterator[Server]:
    app = create_app(settings, runtime=runtime, start_worker=True)
    with serving(app) as url:
        yield Server(url, runtime, app)


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Page]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is missing: `make test` installs it (apt-get install chromium)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run",
            # a synthetic microphone (a beep) that needs no permission prompt, for the recording test
            "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"])
        pg = browser.new_page()
        pg.set_default_timeout(90_000)  # CI machines can be slow; every wait below is for an event, not a sleep
        yield pg
        browser.close()


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_a_clinician_reviews_resolves_and_signs_in_chromium(server: Server, page: Page, tmp_path: Path) -> None:
    log_in(page, server, "dr_ada")
    upload_session(page, tmp_path)
    shot(page, "review-with-flags")

    # Clicking a sentence highlights its evidence in the transcript.
    page.locator(".sentence").first.click()
    assert page.locator(".segment.highlight").count() >= 1

    # Signing is blocked until every section is reviewed and every flag resolved.
    assert page.locator("text=Cannot sign yet").count() == 1
    shot(page, "sign-blocked")
    review_and_sign(page)
    page.wait_for_selector("text=Electronically signed by")
    body = page.inner_text("body")
    assert "Content SHA-256" in body and "Dr Ada Tester" in body and "LIC-DR_ADA" in body
    assert page.locator(".note-version.state-record").count() == 1
    shot(page, "signed-note")


def log_in(page: Page, server: Server, username: str) -> None:
    page.context.clear_cookies()
    page.goto(server + "/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.fill("input[name=code]", totp_code(server.runtime, username))
    with page.expect_navigation():
        page.click("main button[type=submit]")
    assert page.url == server + "/", page.inner_text("body")[-2000:]


def upload_session(page: Page, tmp_path: Path) -> None:
    """New session, a short recording, then wait while htmx polls until the draft is ready."""
    with page.expect_navigation():
        page.click("text=New session")
    audio = tmp_path / "session.wav"
    audio.write_bytes(wav_bytes(seconds=3))
    page.set_input_files("form[action='/sessions'] input[name=audio]", str(audio))
    with page.expect_navigation():
        page.click("button:has-text('Upload')")
    page.wait_for_selector("text=AI draft", timeout=30_000)


def confirm_service(page: Page) -> None:
    """The service panel: a few seconds of test audio earn no code by the time rules, so the
    clinician picks one, as they would correct any suggestion."""
    if page.locator("#service-form").count() and "code not confirmed" in page.inner_text("#service"):
        page.select_option("#service-form select[name=code]", "90834")
        with page.expect_navigation():
            page.click("#service-form button[type=submit]")
        assert "code 90834 confirmed" in page.inner_text("main"), page.inner_text("main")[:1500]


def review_and_sign(page: Page) -> None:
    """Keyboard-reachable controls, driven the way a clinician clicks them."""
    confirm_service(page)
    while page.locator(".section:not(.reviewed)").count():
        with page.expect_navigation():
            page.locator(".section:not(.reviewed) button:has-text('Save and mark')").first.click()
    while page.locator("form.flag-form").count():
        form = page.locator("form.flag-form").first
        form.locator("input[name=reason]").fill("confirmed against the recording")
        with page.expect_navigation():
            form.locator("button").click()
    page.check("#sign input[name=attest]")
    page.fill("#sign input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.click("button:has-text('Sign note')")


def test_a_supervisee_signs_the_supervisor_returns_then_cosigns(server: Server, page: Page, tmp_path: Path) -> None:
    log_in(page, server, "sam")
    upload_session(page, tmp_path)
    session_url = page.url.split("#")[0]
    review_and_sign(page)
    page.wait_for_selector("text=awaiting co-signature")
    assert page.locator("form.export").count() == 0  # not a record yet
    shot(page, "supervisee-signed-pending")

    log_in(page, server, "dr_ben")
    with page.expect_navigation():
        page.click("nav >> text=Supervision")
    card = page.locator("article.cosign").first
    assert "Sam Tester" in card.inner_text() and card.locator(".diff").count() == 1
    assert "no edits" in card.inner_text()  # saved unchanged: shown to the supervisor
    shot(page, "cosign-queue")
    card.locator("textarea[name=comment]").fill("Please add the safety plan you agreed on.")
    with page.expect_navigation():
        card.locator("button:has-text('Return with comments')").click()
    assert page.locator("article.cosign").count() == 0

    log_in(page, server, "sam")
    page.goto(session_url)
    page.wait_for_selector(".returned-note")
    assert "Please add the safety plan" in page.inner_text(".returned-note")
    shot(page, "returned-to-supervisee")
    section = page.locator(".section").first
    section.locator("textarea[name=text]").fill(section.locator("textarea[name=text]").input_value()
                                                + " Safety plan reviewed and agreed.")
    with page.expect_navigation():
        section.locator("button:has-text('Save and mark')").click()
    review_and_sign(page)
    page.wait_for_selector("text=awaiting co-signature")

    log_in(page, server, "dr_ben")
    page.goto(session_url)
    card = page.locator("article.cosign")
    assert "Safety plan reviewed and agreed." in card.locator(".diff ins").all_inner_texts()[-1]
    # The evidence is on the same page: a drafted sentence lights up the transcript it came from.
    page.locator("#source .sentence").first.click()
    assert page.locator("#source .segment.highlight").count() >= 1
    card.locator("input[name=attest]").check()
    card.locator("input[name=password]").fill(PASSWORD)
    with page.expect_navigation():
        card.locator("button:has-text('Co-sign')").click()
    body = page.inner_text("#note")
    assert "Co-signed by Dr Ben Tester" in body and "returned by the supervisor" in body
    assert page.locator(".note-version.state-record").count() == 1
    shot(page, "cosigned-note")
    page.fill("form.export input[name=password]", PASSWORD)  # exporting needs the password again
    with page.expect_download() as download:
        page.click("form.export button:has-text('as text')")
    exported = Path(download.value.path()).read_text()
    assert "Co-signed by Dr Ben Tester" in exported and "Electronically signed by Sam Tester" in exported

    with page.expect_navigation():
        page.click("nav >> text=Supervision")
    assert "Direct client contact" in page.inner_text("#supervisees")
    shot(page, "supervision-dashboard")


def test_an_open_flag_blocks_signing_and_keyboard_reaches_the_evidence(server: Server, page: Page, tmp_path: Path) -> None:
    log_in(page, server, "dr_ada")
    upload_session(page, tmp_path)
    while page.locator(".section:not(.reviewed)").count():
        with page.expect_navigation():
            page.locator(".section:not(.reviewed) button:has-text('Save and mark')").first.click()
    assert page.locator("form.flag-form").count() >= 1
    assert "flag(s) must be resolved" in page.inner_text("#sign")
    assert page.locator("#sign input[name=password]").count() == 0

    # Keyboard only: focus a sentence, press Enter, its evidence lights up; a segment shows its citers.
    page.locator(".sentence").first.focus()
    page.keyboard.press("Enter")
    assert page.locator(".segment.highlight").count() >= 1
    cited = page.locator(".segment[data-cited-by]:not([data-cited-by=''])").first
    cited.focus()
    page.keyboard.press("Enter")
    assert page.locator(".sentence.highlight").count() >= 1
    shot(page, "flag-blocks-signing")


def wait_for_pieces(page: Page, n: int, seconds: float = 60) -> None:
    """Poll the page's count of acknowledged pieces (our CSP forbids the eval wait_for_function needs)."""
    deadline = time.time() + seconds
    while int(page.inner_text("#rec-chunks") or 0) < n:
        assert time.time() < deadline, f"fewer than {n} pieces acknowledged: {page.inner_text('main')[-500:]}"
        page.wait_for_timeout(250)


def test_an_admin_switch_hides_recording_and_a_fake_microphone_records_in_chunks(
    server: Server, page: Page, runtime: Runtime, practice: Practice
) -> None:
    from sqlmodel import col, select

    from scribe.db.engine import session_scope
    from scribe.db.tables import AuditEvent, Recording

    def set_ada(enabled: str) -> None:
        log_in(page, server, "root")
        page.goto(server + "/admin")
        row = page.locator(f"#switch-clinician-{practice.dr_ada.id}")
        row.locator("select[name=enabled]").select_option(enabled)
        with page.expect_navigation():
            row.locator("button:has-text('Save')").click()
        assert ("off" in page.locator(f"#switch-clinician-{practice.dr_ada.id} td").nth(1).inner_text()) == (enabled == "off")

    set_ada("off")
    shot(page, "admin-switches")
    log_in(page, server, "dr_ada")
    page.goto(server + "/sessions/new")
    assert page.locator("#recorder").count() == 0 and page.locator("form#upload").count() == 0
    assert "switched off for this clinician" in page.inner_text("main")
    shot(page, "recording-switched-off")

    set_ada("on")
    log_in(page, server, "dr_ada")
    page.goto(server + "/sessions/new")
    page.click("#rec-start")
    page.wait_for_selector("#rec-indicator:not([hidden])")
    wait_for_pieces(page, 2)
    page.click("#rec-pause")
    assert page.inner_text("#rec-state") == "Paused"
    shot(page, "recording-paused")
    page.click("#rec-pause")
    wait_for_pieces(page, 3)
    with page.expect_navigation(url="**/sessions/*"):
        page.click("#rec-stop")
    page.wait_for_selector("text=AI draft", timeout=60_000)
    shot(page, "recorded-session-drafted")
    with session_scope(runtime.engine) as s:
        finish = s.exec(select(AuditEvent).where(AuditEvent.action == "recording.finish")
                        .order_by(col(AuditEvent.id).desc())).first()
        assert finish is not None
        rec = s.exec(select(Recording).where(Recording.encounter_id == finish.object_id)).one()
    chunks = int(finish.reason.split(" chunk")[0])
    assert chunks >= 3 and rec.format == "webm" and rec.duration_seconds >= 4


def test_a_long_recording_outlives_the_idle_timeout_and_a_network_drop(server: Server, page: Page, runtime: Runtime) -> None:
    """A recording longer than the idle timeout keeps going: each acknowledged piece counts as
    activity while the recorder runs (a paused recorder does not, so an idle page still warns
    and logs out). A network drop keeps the pieces in the page and sends them when it is back;
    the server ends up with every piece, in order. A fast clock: the policy's 15 minutes of
    idle time are 12 seconds here, so 30 seconds of recording are 2.5 idle periods."""
    from sqlmodel import col, select

    from scribe.db.engine import session_scope
    from scribe.db.tables import AuditEvent, Encounter, Recording

    server.app.state.templates.env.globals.update(idle_seconds=12, warn_seconds=4)
    log_in(page, server, "dr_ada")
    page.goto(server + "/sessions/new")
    page.click("#rec-start")
    page.wait_for_selector("#rec-indicator:not([hidden])")
    for _ in range(30):  # 30 s, looking every second: no warning, no log-out
        page.wait_for_timeout(1000)
        assert page.url == server + "/sessions/new" and page.locator("#idle-warning").is_hidden()
    assert int(page.inner_text("#rec-chunks")) >= 10
    # Transcribed while it is made: the transcript so far appears in the page, with its speakers.
    page.wait_for_selector("#live-lines li", timeout=40_000)
    first = page.inner_text("#live-lines li:first-child")
    assert first.lower().startswith("clinician:") and "Welcome back" in first, first
    shot(page, "recording-live-transcript")
    page.click("#rec-pause")
    page.wait_for_selector("#idle-warning:not([hidden])", timeout=15_000)  # paused is idle
    page.click("#rec-pause")
    page.wait_for_selector("#idle-warning", state="hidden", timeout=10_000)  # pieces again: the warning goes
    page.context.set_offline(True)
    page.wait_for_selector("#rec-waiting:not([hidden])", timeout=8_000)
    waiting = int(page.inner_text("#rec-pending"))
    shot(page, "recording-offline")
    page.context.set_offline(False)
    page.wait_for_selector("#rec-waiting", state="hidden", timeout=15_000)
    assert waiting >= 2 and page.url == server + "/sessions/new"
    with page.expect_navigation(url="**/sessions/*"):
        page.click("#rec-stop")
    with session_scope(runtime.engine) as s:
        finish = s.exec(select(AuditEvent).where(AuditEvent.action == "recording.finish")
                        .order_by(col(AuditEvent.id).desc())).first()
        assert finish is not None
        encounter = s.get_one(Encounter, finish.object_id)
        rec = s.exec(select(Recording).where(Recording.encounter_id == finish.object_id)).one()
    assert int(finish.reason.split(" chunk")[0]) >= 18  # every two-second piece, joined in order
    assert encounter.status_reason == ""  # no piece left out after a gap
    assert rec.duration_seconds >= 36  # 30 s, the pause's edges, the offline seconds: all of it


def test_a_recording_whose_log_in_ends_stops_and_says_what_is_kept(server: Server, page: Page) -> None:
    """A chunk answered with the log-in redirect is not an acknowledgement (fetch would follow
    it to the log-in page's 200): the recorder stops and says how many pieces are saved."""
    log_in(page, server, "dr_ada")
    page.goto(server + "/sessions/new")
    page.click("#rec-start")
    wait_for_pieces(page, 2)
    page.context.clear_cookies()  # the log-in is gone
    page.wait_for_selector("#rec-error:not([hidden])", timeout=10_000)
    saved = int(page.inner_text("#rec-chunks"))
    assert "log-in ended" in page.inner_text("#rec-error") and f"The {saved} piece(s) saved" in page.inner_text("#rec-error")
    assert page.is_disabled("#rec-stop")
    page.wait_for_timeout(3000)
    assert int(page.inner_text("#rec-chunks")) == saved  # nothing more counted as saved


def test_the_idle_warning_appears_offers_to_stay_then_logs_out(server: Server, page: Page) -> None:
    """The page warns before the idle timeout, "Stay logged in" refreshes the session on the
    server, and with no answer the page goes to the log-in screen. The timings are shortened
    for the test (the policy's are 15 minutes and 2 minutes)."""
    server.app.state.templates.env.globals.update(idle_seconds=6, warn_seconds=4)
    log_in(page, server, "dr_ada")
    page.wait_for_selector("#idle-warning:not([hidden])", timeout=10_000)
    assert "logged out in" in page.inner_text("#idle-warning")
    shot(page, "idle-warning")
    with page.expect_response(lambda r: r.url.endswith("/session/keepalive") and r.status == 204):
        page.click("#stay-signed-in")
    assert page.locator("#idle-warning").is_hidden()
    page.wait_for_url(server + "/login", timeout=15_000)  # no answer this time: logged out
    page.goto(server + "/")
    assert page.url == server + "/login"  # the session ended on the server, not only in the page


def test_a_new_user_sets_up_the_second_factor_in_the_browser(server: Server, page: Page, clock: Clock) -> None:
    import pyotp
    from sqlmodel import select

    from scribe.db.engine import session_scope
    from scribe.db.tables import User
    from scribe.services.accounts import create_user

    rt = server.runtime
    with session_scope(rt.engine) as s:
        admin = s.exec(select(User).where(User.username == "root")).one()
        invited = create_user(s, rt.audit_key, rt.policies.security, actor=admin, username="dr_new",
                              full_name="Dr New", role="clinician", now=rt.clock())
    page.context.clear_cookies()
    page.goto(server + "/invite?token=" + invited.link_token)  # the link the admin handed over
    page.fill("input[name=password]", "lantern orchard copper violin")
    page.fill("input[name=confirm]", "lantern orchard copper violin")
    with page.expect_navigation():
        page.click("main button[type=submit]")
    assert page.url == server + "/login"
    page.fill("input[name=username]", "dr_new")
    page.fill("input[name=password]", "lantern orchard copper violin")
    with page.expect_navigation():
        page.click("main button[type=submit]")
    assert page.url == server + "/account/mfa"
    with page.expect_navigation():
        page.click("text=Set up my authenticator")
    assert page.locator("img[alt^='QR code']").is_visible()
    shot(page, "mfa-enrolment")
    secret = page.inner_text("code")
    clock.advance(seconds=30)
    page.fill("input[name=code]", pyotp.TOTP(secret).at(rt.clock()))
    with page.expect_navigation():
        page.click("text=Confirm")
    assert page.url == server + "/" and "Review queue" in page.inner_text("nav")


def test_a_new_client_is_recorded_signed_and_exported_as_pdf(server: Server, page: Page, tmp_path: Path) -> None:
    """The daily path from the start: the clinician adds a client, records their consents,
    records the session in the browser, confirms the service, signs, and downloads the PDF."""
    import subprocess

    log_in(page, server, "dr_ada")
    with page.expect_navigation():
        page.click("nav >> text=Clients")
    with page.expect_navigation():
        page.click("text=Add a client")
    page.fill("input[name=given_name]", "Odalys")
    page.fill("input[name=family_name]", "Brightwater")
    page.fill("input[name=date_of_birth]", "1990-07-21")
    page.fill("input[name=mrn]", "MRN-889120")
    page.locator("input[name=contact_name]").first.fill("Teo Brightwater")
    page.locator("input[name=contact_relation]").first.fill("brother")
    page.locator("input[name=dx_code]").first.fill("F41.1")
    page.locator("input[name=dx_description]").first.fill("Generalized anxiety disorder")
    with page.expect_navigation():
        page.click("#client-form button[type=submit]")
    assert "Odalys Brightwater" in page.inner_text("h1") and "F41.1" in page.inner_text("#chart")
    shot(page, "new-client")
    with page.expect_navigation():
        page.click("#chart >> text=Consents")
    for function in ("record_audio", "transcribe", "ai_drafting"):
        page.check(f"#grant input[value={function}]")
    with page.expect_navigation():
        page.click("#grant button[type=submit]")
    page.goto(server + "/clients?q=brightwater")  # found through the blind index
    assert page.locator("#client-list tbody tr").count() == 1

    page.goto(server + "/sessions/new")
    page.select_option("#recorder select[name=client_id]", label="Odalys Brightwater (MRN-889120)")
    page.click("#rec-start")
    wait_for_pieces(page, 2)
    with page.expect_navigation(url="**/sessions/*"):
        page.click("#rec-stop")
    page.wait_for_selector("text=AI draft", timeout=60_000)
    assert "Odalys Brightwater" in page.inner_text("h1")
    review_and_sign(page)
    page.wait_for_selector("text=Electronically signed by")
    page.fill("form.export input[name=password]", PASSWORD)
    with page.expect_download() as download:
        page.click("form.export button:has-text('Export as PDF')")
    pdf = Path(download.value.path())
    assert pdf.read_bytes().startswith(b"%PDF-")
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    text = " ".join(text.split())
    for expected in ("Odalys Brightwater", "1990-07-21", "MRN-889120", "90834", "Place of service 11",
                     "F41.1 Generalized anxiety disorder", "Electronically signed by Dr Ada Tester", "Content SHA-256"):
        assert expected in text, expected
    shot(page, "exported-pdf-session")
