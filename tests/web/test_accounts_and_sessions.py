"""S4 and properties 1-2: passwords, throttling and lock-out, the TOTP second factor
(replay refused), sessions that die (idle, absolute, logout, disabling) with a fake
clock, rotation at log-in, cookie flags, and an admin's account management."""

from __future__ import annotations

import contextlib

import pyotp
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx2 import Response
from sqlmodel import select

from scribe.app import create_app
from scribe.config import Settings
from scribe.db.engine import session_scope
from scribe.db.tables import AuditEvent, LoginSession, User
from scribe.policies import Policies
from scribe.runtime import Runtime
from scribe.services import accounts
from tests.conftest import PASSWORD, Clock, Practice, totp_code, totp_secret
from tests.helpers import must_search
from tests.web.test_web import client_for, csrf


@pytest.fixture
def app(settings: Settings, runtime: Runtime) -> FastAPI:
    return create_app(settings, runtime=runtime, start_worker=False)


def post_login(web: TestClient, username: str, password: str = PASSWORD, code: str = "") -> Response:
    return web.post("/login", data={"username": username, "password": password, "code": code}, follow_redirects=False)


@pytest.mark.parametrize(("password", "problem"), [
    ("short pass", "at least 12"),
    ("password1234", "common and breached"),
    ("qwertyuiop!!", "common and breached"),
    ("iloveyou2026!", "common and breached"),
    ("dr_newbie-garden-42", "user name"),
    ("aaaaaaaaaaaaaaaa", "too easy"),
])
def test_weak_passwords_are_refused(policies: Policies, password: str, problem: str) -> None:
    assert problem in (accounts.password_problem(policies.security, password, "dr_newbie") or "")


def test_a_passphrase_is_accepted(policies: Policies) -> None:
    assert accounts.password_problem(policies.security, "lantern orchard copper violin", "dr_newbie") is None


def test_login_needs_password_and_a_fresh_code_and_refuses_replay(app: FastAPI, runtime: Runtime, practice: Practice) -> None:
    web = TestClient(app)
    code = totp_code(runtime, "dr_ada")
    assert post_login(web, "dr_ada", code="").status_code == 401  # enrolled: the code is required
    assert post_login(web, "dr_ada", code="١٢٣٤٥٦").status_code == 401  # other scripts' digits: refused, not a 500
    assert post_login(web, "dr_ada", code=code).status_code == 303
    assert post_login(TestClient(app), "dr_ada", code=code).status_code == 401  # the same code again: replay
    assert post_login(TestClient(app), "dr_ada", "wrong password!!", totp_code(runtime, "dr_ada")).status_code == 401
    with session_scope(runtime.engine) as s:
        reasons = [e.reason for e in s.exec(select(AuditEvent).where(AuditEvent.action == "login.failed"))]
    assert reasons.count("bad password or code") == 4


def test_throttling_then_a_lock_that_expires_by_itself(app: FastAPI, runtime: Runtime, practice: Practice, clock: Clock) -> None:
    web = TestClient(app)
    rules = runtime.policies.security.login
    for _ in range(rules.throttle_after):
        assert post_login(web, "dr_cole", "not the password").status_code == 401
    # throttled: even the right password and code wait
    r = post_login(web, "dr_cole", code=totp_code(runtime, "dr_cole"))
    assert r.status_code == 401 and "try again in" in r.text
    for _ in range(rules.lockout_after - rules.throttle_after):
        clock.advance(hours=2)
        post_login(web, "dr_cole", "not the password")
    r = post_login(web, "dr_cole", code=totp_code(runtime, "dr_cole"))
    assert r.status_code == 401 and f"try again in {rules.lockout_minutes} minute(s)" in r.text
    # nobody can lock an account for good: the lock expires by itself ...
    clock.advance(minutes=rules.lockout_minutes, seconds=1)
    assert post_login(web, "dr_cole", code=totp_code(runtime, "dr_cole")).status_code == 303
    # ... and an admin may lift it sooner
    for _ in range(rules.lockout_after):
        clock.advance(hours=2)
        post_login(TestClient(app), "dr_cole", "not the password")
    assert "try again in" in post_login(TestClient(app), "dr_cole", code=totp_code(runtime, "dr_cole")).text
    admin = client_for(app, "root")
    assert admin.post(f"/admin/users/{practice.dr_cole.id}", data={"csrf_token": csrf(admin), "action": "unlock"},
                      follow_redirects=False).status_code == 303
    clock.advance(seconds=31)  # a fresh TOTP step (codes are accepted once)
    assert post_login(TestClient(app), "dr_cole", code=totp_code(runtime, "dr_cole")).status_code == 303


def test_one_address_guessing_many_names_waits_without_a_hash_per_name(app: FastAPI, runtime: Runtime, practice: Practice,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    rules = runtime.policies.security.login
    hashed: list[str] = []
    real = accounts.password_matches
    def counted(user: User, pw: str) -> bool:
        hashed.append(user.username)
        return real(user, pw)

    monkeypatch.setattr(accounts, "password_matches", counted)
    monkeypatch.setattr(accounts, "_verify_seconds", lambda: 0.0)
    web = TestClient(app)  # every request from the same test client address
    for i in range(rules.address_throttle_after):
        assert post_login(web, f"guess_{i}", "whatever password").status_code == 401
    assert hashed == []  # unknown names cost no hash
    r = post_login(web, "dr_ada", code=totp_code(runtime, "dr_ada"))
    assert r.status_code == 401 and "from this computer" in r.text  # the address waits, even for a real user
    assert hashed == []  # refused before any password was checked


def test_concurrent_failures_are_all_counted(runtime: Runtime, practice: Practice) -> None:
    """The counter is incremented in the database: racing attempts cannot undo each other."""
    import threading

    from scribe.domain.errors import PermissionDenied

    def attempt() -> None:
        with session_scope(runtime.engine) as s, contextlib.suppress(PermissionDenied):
            accounts.log_in(s, runtime.audit_key, runtime.policies.security, username="dr_cole",
                            password="not the password", code="", now=runtime.clock())

    threads = [threading.Thread(target=attempt) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with session_scope(runtime.engine) as s:
        assert s.get_one(User, practice.dr_cole.id).failed_logins == 4


def test_unknown_user_and_wrong_password_look_the_same(app: FastAPI, practice: Practice) -> None:
    a = post_login(TestClient(app), "nobody_here", "whatever password")
    b = post_login(TestClient(app), "dr_ada", "whatever password")
    assert a.status_code == b.status_code == 401
    assert must_search(r'class="error"[^>]*>([^<]*)<', a.text).group(1) == must_search(
        r'class="error"[^>]*>([^<]*)<', b.text
    ).group(1)


def test_a_new_account_must_enrol_a_second_factor_before_anything_else(
    app: FastAPI, runtime: Runtime, practice: Practice, clock: Clock
) -> None:
    admin = client_for(app, "root")
    r = admin.post("/admin/users", data={"csrf_token": csrf(admin), "username": "dr_new", "full_name": "Dr New",
                                         "role": "clinician"}, follow_redirects=False)
    assert r.status_code == 200 and "works once" in r.text
    link = must_search(r'<code class="invitation-link">([^<]+)</code>', r.text).group(1)
    web = TestClient(app)
    assert post_login(web, "dr_new", "lantern orchard copper violin").status_code == 401  # no password yet
    token = link.split("token=", 1)[1]
    assert web.get(f"/invite?token={token}").status_code == 200
    assert web.post("/invite", data={"token": token, "password": "lantern orchard copper violin",
                                     "confirm": "lantern orchard copper violin"},
                    follow_redirects=False).headers["location"] == "/login"
    assert web.get(f"/invite?token={token}").status_code == 404  # single use
    assert web.post("/invite", data={"token": token, "password": "another orchard copper violin",
                                     "confirm": "another orchard copper violin"}).status_code == 404
    r = post_login(web, "dr_new", "lantern orchard copper violin")
    assert r.status_code == 303 and r.headers["location"] == "/account/mfa"
    for path in ("/", "/sessions/new", "/supervision", "/admin"):  # nothing else until the factor is set up
        r = web.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/account/mfa", path
    page = web.get("/account/mfa").text
    token = must_search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert 'action="/account/mfa/start"' in page and "data:image" not in page  # a GET never changes state
    page = web.post("/account/mfa/start", data={"csrf_token": token}).text
    assert 'src="data:image/svg+xml' in page  # the QR code, no inline script
    secret = must_search(r"<code>([A-Z2-7]+)</code>", page).group(1)
    assert web.post("/account/mfa", data={"csrf_token": token, "code": "000000"}).status_code == 400
    clock.advance(seconds=30)
    code = pyotp.TOTP(secret).at(clock())
    before = web.cookies.get("scribe_session") or ""
    assert web.post("/account/mfa", data={"csrf_token": token, "code": code}, follow_redirects=False).status_code == 303
    assert web.get("/", follow_redirects=False).status_code == 200
    # the session rotated at enrolment: the token that passed only the password is dead
    assert web.cookies.get("scribe_session") != before
    stale = TestClient(app)
    stale.cookies.set("scribe_session", before)
    assert stale.get("/", follow_redirects=False).headers["location"] == "/login"
    with session_scope(runtime.engine) as s:
        user = s.exec(select(User).where(User.username == "dr_new")).one()
        assert user.totp_enrolled_at is not None
        raw = s.connection().exec_driver_sql("SELECT totp_secret FROM users WHERE username = 'dr_new'").scalar_one()
        assert raw.startswith("S2.") and secret not in raw  # the secret is sealed at rest, bound to its row


def test_no_account_that_reads_clinical_content_is_without_a_second_factor(runtime: Runtime, practice: Practice) -> None:
    """Property 1: the policy requires it for every role that reads clinical content, and
    login never yields a full session for such an account without it."""
    rules = runtime.policies.security.mfa
    assert {"clinician", "supervisor"} <= set(rules.required_roles)
    with session_scope(runtime.engine) as s:
        user = s.get_one(User, practice.dr_ada.id)
        user.totp_secret, user.totp_enrolled_at = None, None
        s.add(user)
    with session_scope(runtime.engine) as s:
        done = accounts.log_in(s, runtime.audit_key, runtime.policies.security, username="dr_ada", password=PASSWORD,
                               code="", now=runtime.clock())
        assert done.mfa_passed is False


def test_sessions_die_idle_absolute_logout_and_disable(app: FastAPI, runtime: Runtime, practice: Practice, clock: Clock) -> None:
    rules = runtime.policies.security.sessions
    web = client_for(app, "dr_ada")
    clock.advance(minutes=rules.idle_minutes - 1)
    assert web.get("/", follow_redirects=False).status_code == 200
    clock.advance(minutes=rules.idle_minutes, seconds=1)
    assert web.get("/", follow_redirects=False).headers["location"] == "/login"  # idle
    web = client_for(app, "dr_ada")
    for _ in range(rules.absolute_hours * 6 + 1):  # active every 10 minutes, still ends at the absolute limit
        clock.advance(minutes=10)
        r = web.get("/", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    web = client_for(app, "dr_ada")
    cookie = web.cookies.get("scribe_session") or ""
    web.post("/logout", data={"csrf_token": csrf(web)})
    replay = TestClient(app, cookies={"scribe_session": cookie})
    assert replay.get("/", follow_redirects=False).headers["location"] == "/login"  # ended on the server
    web = client_for(app, "dr_cole")
    admin = client_for(app, "root")
    admin.post(f"/admin/users/{practice.dr_cole.id}", data={"csrf_token": csrf(admin), "action": "disable"})
    assert web.get("/", follow_redirects=False).headers["location"] == "/login"  # at once
    for action in ("disable", "reset_password", "reset_mfa"):  # not one's own: it would end this very session
        r = admin.post(f"/admin/users/{practice.root.id}", data={"csrf_token": csrf(admin), "action": action})
        assert r.status_code == 400 and "your own account" in r.text
    assert admin.get("/admin", follow_redirects=False).status_code == 200
    with session_scope(runtime.engine) as s:
        ends = {x.end_reason for x in s.exec(select(LoginSession)) if x.ended_at}
    assert {"idle", "absolute limit", "logout", "account disabled"} <= ends


def test_a_new_session_id_at_each_login_and_safe_cookie_flags(app: FastAPI, runtime: Runtime, practice: Practice) -> None:
    first = client_for(app, "dr_ada").cookies.get("scribe_session")
    web = TestClient(app)
    r = post_login(web, "dr_ada", code=totp_code(runtime, "dr_ada"))
    header = r.headers["set-cookie"].lower()
    assert "httponly" in header and "samesite=strict" in header and "path=/" in header
    assert web.cookies.get("scribe_session") != first


def test_the_idle_warning_is_in_every_logged_in_page(app: FastAPI, practice: Practice, runtime: Runtime) -> None:
    web = client_for(app, "dr_ada")
    page = web.get("/").text
    idle = runtime.policies.security.sessions.idle_minutes * 60
    assert f'data-idle-seconds="{idle}"' in page and 'id="idle-warning"' in page
    assert web.post("/session/keepalive", headers={"X-CSRF-Token": csrf(web)}).status_code == 204


def test_password_change_checks_the_current_one_and_the_policy(app: FastAPI, runtime: Runtime, practice: Practice) -> None:
    web = client_for(app, "dr_ada")
    token = csrf(web)
    assert web.post("/account/password", data={"csrf_token": token, "current": "wrong one!!", "new": "x" * 20}).status_code == 403
    assert (
        web.post(
            "/account/password", data={"csrf_token": token, "current": PASSWORD, "new": "password12345"}
        ).status_code
        == 400
    )
    assert web.post("/account/password", data={"csrf_token": token, "current": PASSWORD,
                                                "new": "lantern orchard copper violin"}).status_code == 200
    assert post_login(TestClient(app), "dr_ada", "lantern orchard copper violin",
                      totp_code(runtime, "dr_ada")).status_code == 303


def test_only_admins_manage_accounts_and_usernames_are_unique(app: FastAPI, runtime: Runtime, practice: Practice) -> None:
    web = client_for(app, "dr_ada")
    data = {"csrf_token": csrf(web), "username": "x_user", "full_name": "X", "role": "admin",
            "password": "lantern orchard copper violin"}
    assert web.post("/admin/users", data=data).status_code == 403
    assert web.post(f"/admin/users/{practice.dr_cole.id}", data={"csrf_token": csrf(web), "action": "disable"}).status_code == 403
    admin = client_for(app, "root")
    data = {**data, "csrf_token": csrf(admin), "username": "dr_ada"}
    r = admin.post("/admin/users", data=data)
    assert r.status_code == 400 and "taken" in r.text
    assert secret_not_shown(admin.get("/admin").text)


def secret_not_shown(page: str) -> bool:
    return all(totp_secret(u) not in page for u in ("dr_ada", "dr_cole", "root"))


def test_reauthentication_is_checked_every_time(practice: Practice, clock: Clock) -> None:
    from scribe.domain.errors import ReauthFailed

    with pytest.raises(ReauthFailed, match="not correct"):
        accounts.reauthenticate(practice.dr_ada, "not it", now=clock(), purpose="sign")
    accounts.reauthenticate(practice.dr_ada, PASSWORD, now=clock(), purpose="sign")  # the right password passes


def test_a_wrong_reentered_password_is_counted_audited_and_ends_the_sessions_at_the_threshold(
        app: FastAPI, runtime: Runtime, practice: Practice, clock: Clock) -> None:
    """Re-entry at signing, export and password change counts failures like log-in does (it
    counted none): whoever holds a session cannot guess the password without limit."""
    rules = runtime.policies.security.login
    web = client_for(app, "dr_ada")
    r = web.post("/account/password", data={"csrf_token": csrf(web), "current": "a guess",
                                             "new": "lantern orchard copper violin"}, follow_redirects=False)
    assert r.status_code == 403 and "not correct" in r.text
    with session_scope(runtime.engine) as s:
        reasons = [e.reason for e in s.exec(select(AuditEvent).where(AuditEvent.action == "reauth.failed"))]
        assert reasons == ["password change"] and s.get_one(User, practice.dr_ada.id).failed_logins == 1
    for _ in range(rules.lockout_after - 1):  # further wrong re-entries, however they arrive
        accounts.count_reauth_failure(runtime.engine, runtime.audit_key, runtime.policies.security,
                                      user_id=practice.dr_ada.id or 0, purpose="sign", now=clock())
    with session_scope(runtime.engine) as s:
        live = s.exec(select(LoginSession).where(LoginSession.user_id == practice.dr_ada.id,
                                                 LoginSession.ended_at.is_(None))).all()  # type: ignore[union-attr]
        assert s.get_one(User, practice.dr_ada.id).failed_logins == rules.lockout_after and live == []
    assert web.get("/", follow_redirects=False).headers["location"] == "/login"


def test_a_throttled_account_is_refused_at_reentry_without_a_check(
    runtime: Runtime, practice: Practice, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(runtime.policies.security.login.throttle_after):
        accounts.count_reauth_failure(runtime.engine, runtime.audit_key, runtime.policies.security,
                                      user_id=practice.dr_ada.id or 0, purpose="sign", now=clock())
    monkeypatch.setattr(accounts, "password_matches", lambda user, pw: pytest.fail("checked while throttled"))
    with session_scope(runtime.engine) as s:
        user = s.get_one(User, practice.dr_ada.id)
    with pytest.raises(Exception, match="try again in"):
        accounts.reauthenticate(user, PASSWORD, now=clock(), purpose="sign")


def test_a_password_change_ends_the_other_sessions(app: FastAPI, runtime: Runtime, practice: Practice, clock: Clock) -> None:
    here, laptop = client_for(app, "dr_ada"), None
    clock.advance(seconds=31)
    laptop = client_for(app, "dr_ada")
    r = here.post("/account/password", data={"csrf_token": csrf(here), "current": PASSWORD,
                                              "new": "lantern orchard copper violin"})
    assert r.status_code == 200
    assert here.get("/", follow_redirects=False).status_code == 200  # this one stays
    assert laptop.get("/", follow_redirects=False).headers["location"] == "/login"


def test_two_log_ins_racing_with_one_code_let_one_in(app: FastAPI, runtime: Runtime, practice: Practice) -> None:
    import threading

    code = totp_code(runtime, "dr_ada")
    barrier, statuses = threading.Barrier(2), []

    def attempt() -> None:
        web = TestClient(app)
        barrier.wait()
        statuses.append(post_login(web, "dr_ada", code=code).status_code)

    threads = [threading.Thread(target=attempt) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [303, 401]


def test_the_console_unlocks_an_account_when_no_admin_can_log_in(
    app: FastAPI,
    runtime: Runtime,
    practice: Practice,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from scribe.cli import main as cli_main

    rules = runtime.policies.security.login
    for _ in range(rules.lockout_after):
        clock.advance(hours=2)
        post_login(TestClient(app), "root", "not the password")
    assert "try again in" in post_login(TestClient(app), "root", code=totp_code(runtime, "root")).text
    monkeypatch.setenv("SCRIBE_DATA_DIR", str(runtime.settings.data_dir))
    monkeypatch.setenv("SCRIBE_ENGINES", "fake")
    assert cli_main(["users", "unlock", "root", "--address", "testclient"]) == 0
    assert '"unlocked": "root"' in capsys.readouterr().out
    clock.advance(seconds=31)
    assert post_login(TestClient(app), "root", code=totp_code(runtime, "root")).status_code == 303
    assert cli_main(["users", "unlock", "nobody"]) == 1


def test_an_admin_never_sets_or_learns_a_password_and_resets_go_through_a_link(
    app: FastAPI, runtime: Runtime, practice: Practice, clock: Clock
) -> None:
    """An admin could become a clinician by setting their password and enrolling the factor
    first (issue 17 item 2). Now a reset voids the password and hands a link to the person."""
    admin = client_for(app, "root")
    r = admin.post(f"/admin/users/{practice.dr_cole.id}", data={"csrf_token": csrf(admin), "action": "reset_password"})
    assert r.status_code == 200 and "invitation-link" in r.text
    token = must_search(r'<code class="invitation-link">[^<]*token=([^<]+)</code>', r.text).group(1)
    assert post_login(TestClient(app), "dr_cole", code=totp_code(runtime, "dr_cole")).status_code == 401  # old password gone
    clock.advance(hours=runtime.policies.security.invitations.valid_hours, seconds=1)
    web = TestClient(app)
    assert web.get(f"/invite?token={token}").status_code == 404  # expired
    admin = client_for(app, "root")  # the admin's own session idled out meanwhile
    r = admin.post(f"/admin/users/{practice.dr_cole.id}", data={"csrf_token": csrf(admin), "action": "reset_mfa"})
    fresh = must_search(r'<code class="invitation-link">[^<]*token=([^<]+)</code>', r.text).group(1)
    assert web.post("/invite", data={"token": fresh, "password": "short", "confirm": "short"}).status_code == 400
    assert web.post("/invite", data={"token": fresh, "password": "lantern orchard copper violin",
                                     "confirm": "lantern orchard copper violin"}, follow_redirects=False).status_code == 303
    r = post_login(web, "dr_cole", "lantern orchard copper violin")
    assert r.status_code == 303 and r.headers["location"] == "/account/mfa"  # the person enrols a new factor
    with session_scope(runtime.engine) as s:
        actions = [e.action for e in s.exec(select(AuditEvent).where(AuditEvent.object_id == practice.dr_cole.id,
                                                                     AuditEvent.object_type == "user"))]
    assert {"user.reset_password", "user.reset_mfa", "invitation.create", "invitation.accept"} <= set(actions)


def test_one_invitation_link_submitted_twice_at_once_sets_one_password(runtime: Runtime, practice: Practice) -> None:
    import threading

    from scribe.domain.errors import NotFound

    with session_scope(runtime.engine) as s:
        token = accounts.create_user(s, runtime.audit_key, runtime.policies.security, actor=practice.root,
                                     username="dr_race", full_name="Dr Race", role="clinician",
                                     now=runtime.clock()).link_token
    barrier, outcomes = threading.Barrier(2), []

    def accept(password: str) -> None:
        barrier.wait()
        try:
            with session_scope(runtime.engine) as s:
                accounts.accept_invitation(s, runtime.audit_key, runtime.policies.security, token=token,
                                           password=password, now=runtime.clock())
            outcomes.append(password)
        except NotFound:
            outcomes.append("refused")

    threads = [threading.Thread(target=accept, args=(p,)) for p in ("lantern orchard copper violin",
                                                                     "another orchard copper violin")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes)[-1] == "refused" and len(outcomes) == 2
    winner = next(o for o in outcomes if o != "refused")
    with session_scope(runtime.engine) as s:
        user = s.exec(select(User).where(User.username == "dr_race")).one()
        assert accounts.password_matches(user, winner)


def test_concurrent_failures_from_one_address_are_all_counted(
    runtime: Runtime, practice: Practice, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from scribe.db.tables import LoginThrottle
    from scribe.domain.errors import PermissionDenied

    monkeypatch.setattr(accounts, "_verify_seconds", lambda: 0.0)

    def attempt(i: int) -> None:
        with session_scope(runtime.engine) as s, contextlib.suppress(PermissionDenied):
            accounts.log_in(s, runtime.audit_key, runtime.policies.security, username=f"nobody_{i}",
                            password="whatever password", code="", now=runtime.clock(), address="203.0.113.7")

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with session_scope(runtime.engine) as s:
        assert s.get_one(LoginThrottle, "203.0.113.7").failures == 4
