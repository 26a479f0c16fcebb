"""Server-side sessions, their key and the sign-in lockout: unit tests and the app behind them (AppTest)."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.errors import ConfigError
from core.settings import Settings
from dashboard import _context as ctx
from dashboard._context import _load_settings
from dashboard._sessions import KEY_FILE, SESSIONS_DB, Lockout, SessionStore, load_session_key
from dashboard.auth import Role, User, hash_password
from tests.dashboard._seed import PASSWORDS, Seeded, users_json

APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"
EVE = User("eve", Role.ENGINEER)


@pytest.fixture(scope="module")
def users() -> dict[str, dict[str, str]]:
    loaded: dict[str, dict[str, str]] = json.loads(users_json())
    return loaded


# ------------------------------------------------------------------------- session key
def test_generated_key_is_private_kept_and_reused(tmp_path: Path) -> None:
    key = load_session_key(tmp_path / "state")
    path = tmp_path / "state" / KEY_FILE
    assert len(key) >= 32 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700
    assert load_session_key(tmp_path / "state") == key  # a restart keeps every session
    assert load_session_key(tmp_path / "state", "x" * 40) == b"x" * 40  # a configured secret wins


def test_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    load_session_key(tmp_path)
    (tmp_path / KEY_FILE).chmod(0o644)
    with pytest.raises(ConfigError, match=r"accessible by other users \(mode 644\)") as err:
        load_session_key(tmp_path)
    assert (tmp_path / KEY_FILE).read_text().strip() not in str(err.value)


def test_session_secret_must_be_long(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENEDGE_DASHBOARD__SESSION_SECRET", "short-secret")
    with pytest.raises(ConfigError, match="session_secret must be at least 32 characters, got 12") as err:
        Settings.load()
    assert "short-secret" not in str(err.value)


# ---------------------------------------------------------------------------- sessions
def test_session_signs_in_until_it_expires_is_revoked_or_the_user_changes(
        tmp_path: Path, users: dict[str, dict[str, str]]) -> None:
    sessions = SessionStore(tmp_path, load_session_key(tmp_path), ttl_s=60)
    token = sessions.issue(users, EVE, now=1000.0)
    assert "eve" not in token and "engineer" not in token  # opaque: names neither user nor role
    assert sessions.verify(users, token, now=1059.0) == EVE
    assert sessions.verify(users, token, now=1061.0) is None  # expired
    sid, mac = token.split(".")
    assert sessions.verify(users, f"{sid}.{mac[:-2]}AA", now=1000.0) is None  # forged MAC
    assert sessions.verify(users, "garbage", now=1000.0) is None
    changed = {**users, "eve": {**users["eve"], "password_hash": hash_password("new password")}}
    assert sessions.verify(changed, token, now=1000.0) is None  # a password change ends the session
    demoted = {**users, "eve": {**users["eve"], "role": "operator"}}
    assert sessions.verify(demoted, token, now=1000.0) is None
    assert sessions.verify({k: v for k, v in users.items() if k != "eve"}, token, now=1000.0) is None
    assert sessions.revoke(token) and not sessions.revoke(token)
    assert sessions.verify(users, token, now=1000.0) is None  # signed out: the copy is refused


def test_token_needs_the_servers_key_not_the_users(tmp_path: Path, users: dict[str, dict[str, str]]) -> None:
    """Everything ``config show`` printed before (the users and their hashes) does not make a session."""
    ours = SessionStore(tmp_path, b"k" * 32)
    token = ours.issue(users, EVE)
    other_key = SessionStore(tmp_path, b"j" * 32)
    assert other_key.verify(users, token) is None
    made_up = "A" * 43  # a well-signed id the server never issued signs nobody in either
    assert ours.verify(users, f"{made_up}.{ours._mac(made_up)}") is None
    # the database keeps a hash of the session id only: a copy of it signs nobody in
    assert token.split(".")[0] not in (tmp_path / SESSIONS_DB).read_bytes().decode("latin-1")
    assert stat.S_IMODE((tmp_path / SESSIONS_DB).stat().st_mode) == 0o600


# ----------------------------------------------------------------------------- lockout
def test_lockout_backs_off_exponentially_and_forgets(tmp_path: Path) -> None:
    lock = Lockout(tmp_path, after=3, base_s=10, max_s=40)
    keys = ["user:olga", "client:10.0.0.9"]
    assert [lock.failed(keys, now=100.0 + i) for i in range(6)] == [0, 0, 10, 20, 40, 40]
    assert lock.locked_for(["user:olga"], now=106.0) == pytest.approx(39.0)
    assert lock.locked_for(["client:10.0.0.9"], now=106.0) == pytest.approx(39.0)  # the client too
    assert lock.locked_for(["user:eve", "client:10.0.0.7"], now=106.0) == 0  # others are not
    assert lock.locked_for(keys, now=146.0) == 0  # the back-off ends
    lock.succeeded(keys)
    assert lock.failed(keys, now=150.0) == 0  # a success starts the count again
    other = ["user:eve"]
    lock.failed(other, now=200.0)
    lock.failed(other, now=201.0)
    assert lock.failed(other, now=300.0) == 0  # a streak older than the longest lockout is forgotten


def _app() -> AppTest:
    return AppTest.from_file(str(APP), default_timeout=60)


def _sign_in(at: AppTest, name: str, password: str) -> AppTest:
    at.text_input(key="sign_in_user").input(name)
    at.text_input(key="sign_in_password").input(password)
    next(b for b in at.button if b.label == "Sign in").click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _titles(at: AppTest) -> list[str]:
    return [t.value for t in at.title]


def test_sign_out_revokes_a_copied_token(app_env: Seeded, monkeypatch: pytest.MonkeyPatch) -> None:
    at = _sign_in(_app().run(), "eve", PASSWORDS["eve"])
    assert "Plant overview" in _titles(at)
    copied = at.session_state["genedge.session_token"]
    monkeypatch.setattr(ctx, "_cookie_token", lambda: copied)  # another browser presents the copied cookie
    thief = _app().run()
    assert "Plant overview" in _titles(thief), "a live session's token signs in (as a page reload does)"

    at.button(key="sign_out").click().run()
    assert "GenEdge plant dashboard" in _titles(at)
    assert "Plant overview" not in _titles(_app().run()), "the copied token is refused after sign-out"
    thief.run()
    assert "Plant overview" not in _titles(thief), "the session already open with it ends too"


def test_repeated_failures_lock_the_user_and_the_client_then_unlock(app_env: Seeded,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENEDGE_DASHBOARD__LOCKOUT_AFTER", "3")
    monkeypatch.setenv("GENEDGE_DASHBOARD__LOCKOUT_S", "3")
    _load_settings.clear()
    at = _app().run()
    for _ in range(2):
        _sign_in(at, "olga", "guess")
        assert [e.value for e in at.error] == ["Unknown user or wrong password."]
    _sign_in(at, "olga", "guess")
    assert at.error[0].value == ("Unknown user or wrong password. Too many failed sign-ins: "
                                 "signing in is locked for 3 s.")
    locked_at = time.monotonic()
    _sign_in(at, "olga", PASSWORDS["olga"])  # the right password while locked out: refused
    assert at.error[0].value.startswith("Too many failed sign-ins for this user or from this address: try again in")
    _sign_in(at, "eve", PASSWORDS["eve"])  # another user from the same client: refused too
    assert at.error[0].value.startswith("Too many failed sign-ins")
    assert "genedge.session_token" not in at.session_state
    time.sleep(max(0.0, 3.2 - (time.monotonic() - locked_at)))
    _sign_in(at, "olga", PASSWORDS["olga"])
    assert "Plant overview" in _titles(at)


def test_configuration_errors_on_the_sign_in_page_show_no_secret(app_env: Seeded,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENEDGE_STORE__URL", "postgres://plant:hunter2@db.plant/genedge")
    _load_settings.clear()
    at = _app().run()
    shown = " ".join(e.value for e in at.error)
    assert "Cannot load the settings: invalid configuration: store.url:" in shown
    assert "hunter2" not in shown and "db.plant" not in shown

    monkeypatch.setenv("GENEDGE_STORE__URL", app_env.url)
    monkeypatch.setenv("GENEDGE_DASHBOARD__USERS", '{"eve": {"role": "engineer", "password_hash": "hunter2"')
    _load_settings.clear()
    at = _app().run()
    shown = " ".join(e.value for e in at.error)
    assert "invalid configuration: dashboard: a GENEDGE_DASHBOARD__* environment variable is not valid JSON" in shown
    assert "hunter2" not in shown and not at.exception
