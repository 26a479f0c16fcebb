"""Per-session context of the Streamlit app: settings, the store, the signed-in user.

Sign-in state lives on the server (:mod:`dashboard._sessions`): this Streamlit session keeps
only its session token, checked on every run, so signing out anywhere (or a change of the user's
entry) ends it everywhere. The browser keeps the same opaque token in a cookie so that a page
reload (a new Streamlit session) signs in again. Streamlit gives page code no way to set an
HttpOnly cookie, so the cookie is written by page script (``Secure`` when the page is served over
HTTPS); it names no user and a revoked or expired one signs nobody in.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import streamlit as st

from core.errors import ConfigError, StoreError
from core.settings import DashboardSettings, Settings
from dashboard._sessions import Lockout, SessionStore, load_session_key
from dashboard.auth import Permission, User, authenticate
from ingest.store import Store

__all__ = ["SESSION_COOKIE", "attempt_sign_in", "config_path", "current_user", "jobs_dir", "load_settings", "require",
           "restore_session", "settings", "sign_in", "sign_out", "store", "store_url", "write_session_cookie"]

_SETTINGS = "genedge.settings"
_TOKEN = "genedge.session_token"
_COOKIE_JS = "genedge.cookie_js"
#: The browser cookie holding the session token (see :class:`dashboard._sessions.SessionStore`).
SESSION_COOKIE = "genedge_session"


def config_path(argv: list[str]) -> Path | None:
    """``--config FILE`` from the script arguments (those after ``--`` of ``streamlit run``)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--config", type=Path, default=None)
    known, _ = parser.parse_known_args(argv)
    path: Path | None = known.config
    return path


@st.cache_resource(show_spinner=False)
def _load_settings(path: Path | None) -> Settings:
    # Once per server process: settings are built once at the entry point, and Settings.load
    # keeps the TOML path in class state, which concurrent sessions must not race on.
    return Settings.load(path)


def load_settings(path: Path | None) -> Settings:
    """The server's settings (loaded on first use), kept in the session for the pages."""
    s = _load_settings(path)
    st.session_state[_SETTINGS] = s
    return s


def settings() -> Settings:
    s = st.session_state.get(_SETTINGS)
    if not isinstance(s, Settings):
        st.error("The dashboard was opened without its entry script; start it with "
                 "`streamlit run dashboard/app.py -- --config FILE`.")
        st.stop()
    return s


@st.cache_resource(show_spinner=False)
def _open_store(url: str) -> Store:
    return Store(url)


def jobs_dir() -> Path:
    """Where background jobs (training, sampling) keep their folders: beside the model registry."""
    return settings().models.registry_dir.resolve().parent / "jobs"


def store_url() -> str:
    return settings().store.url.get_secret_value()


def store() -> Store:
    """The store of ``settings.store.url``, one per server process."""
    try:
        return _open_store(store_url())
    except StoreError as err:
        st.error(f"Cannot open the store: {err}")
        st.stop()


@st.cache_resource(show_spinner=False)
def _open_sign_in_state(state_dir: str, secret: str | None, ttl_s: float, after: int, base_s: float,
                        max_s: float) -> tuple[SessionStore, Lockout]:
    key = load_session_key(Path(state_dir), secret)
    return SessionStore(Path(state_dir), key, ttl_s=ttl_s), Lockout(Path(state_dir), after=after, base_s=base_s,
                                                                     max_s=max_s)


def _sign_in_state() -> tuple[SessionStore, Lockout]:
    """The server's session store and lockout (one per state folder and key)."""
    d: DashboardSettings = settings().dashboard
    secret = d.session_secret.get_secret_value() if d.session_secret is not None else None
    try:
        return _open_sign_in_state(str(d.state_dir.resolve()), secret, d.session_ttl_s, d.lockout_after,
                                   d.lockout_s, d.lockout_max_s)
    except ConfigError as err:
        st.error(f"Sign-in is unavailable: {err}")
        st.stop()


def current_user() -> User | None:
    """The user of this session's token, while that session is live and the user still configured."""
    token = st.session_state.get(_TOKEN)
    if not isinstance(token, str):
        return None
    sessions, _ = _sign_in_state()
    user = sessions.verify(settings().dashboard.users, token)
    if user is None:
        st.session_state.pop(_TOKEN, None)  # revoked, expired or the user changed
    return user


def _client_address() -> str:
    """The TCP peer of this session's WebSocket (behind a reverse proxy: the proxy's address)."""
    try:
        ip = st.context.ip_address  # None for loopback connections
    except (AttributeError, RuntimeError):  # no browser behind this session
        return "local"
    return ip if isinstance(ip, str) and ip else "local"  # AppTest's stand-in client has no address


def attempt_sign_in(name: str, password: str) -> tuple[User | None, str]:
    """Check a sign-in against the users and the lockout; on success sign the user in.

    Returns:
        The user, or ``None`` and what to tell the person signing in.
    """
    _, lockout = _sign_in_state()
    keys = [f"user:{name[:64]}", f"client:{_client_address()}"]
    wait = lockout.locked_for(keys)
    if wait > 0:
        return None, (f"Too many failed sign-ins for this user or from this address: try again in "
                      f"{math.ceil(wait)} s.")
    user = authenticate(settings().dashboard.users, name, password)
    if user is None:
        locked = lockout.failed(keys)
        return None, "Unknown user or wrong password." + (
            f" Too many failed sign-ins: signing in is locked for {math.ceil(locked)} s." if locked else "")
    lockout.succeeded(keys)
    sign_in(user)
    return user, ""


def sign_in(user: User) -> None:
    """Start a server-side session for ``user``, here and (on the next run) in the browser's cookie."""
    sessions, _ = _sign_in_state()
    token = sessions.issue(settings().dashboard.users, user)
    st.session_state[_TOKEN] = token
    st.session_state[_COOKIE_JS] = (f"{SESSION_COOKIE}={token}; path=/; max-age={int(sessions.ttl_s)}; "
                                    "SameSite=Strict")


def sign_out() -> None:
    """End this session on the server (every copy of its token) and delete the browser's cookie."""
    sessions, _ = _sign_in_state()
    for token in {st.session_state.pop(_TOKEN, None), _cookie_token()}:
        if isinstance(token, str):
            sessions.revoke(token)
    st.session_state[_COOKIE_JS] = f"{SESSION_COOKIE}=; path=/; max-age=0; SameSite=Strict"


def _cookie_token() -> str | None:
    try:
        token = st.context.cookies.get(SESSION_COOKIE)
    except (AttributeError, RuntimeError):  # no browser behind this session
        return None
    return token if isinstance(token, str) else None  # AppTest's stand-in client has no cookies


def restore_session() -> User | None:
    """Sign in from a live session's cookie (a page reload opens a new Streamlit session)."""
    token = _cookie_token()
    if not token:
        return None
    sessions, _ = _sign_in_state()
    user = sessions.verify(settings().dashboard.users, token)
    if user is not None:
        st.session_state[_TOKEN] = token
    return user


def write_session_cookie() -> None:
    """Set or delete the session cookie in the browser when sign-in or sign-out asked for it.

    ``Secure`` is added when the page is served over HTTPS (directly or behind a TLS proxy).
    """
    cookie = st.session_state.pop(_COOKIE_JS, None)
    if cookie:
        st.html(f"<script>document.cookie = {cookie!r} + (location.protocol === 'https:' ? '; Secure' : '');</script>",
                unsafe_allow_javascript=True)


def require(permission: Permission = Permission.VIEW) -> User:
    """The signed-in user if they have ``permission``; otherwise say so and stop the page."""
    user = current_user()
    if user is None:
        st.warning("Please sign in.")
        st.stop()
    if not user.can(permission):
        st.error(f"This page needs the engineer role; you are signed in as {user.name} ({user.role.value}).")
        st.stop()
    return user
