"""Per-session context of the Streamlit app: settings, the store, the signed-in user."""

from __future__ import annotations

import argparse
from pathlib import Path

import streamlit as st

from core.errors import ConfigError, StoreError
from core.settings import Settings
from dashboard.auth import (
    SESSION_TTL_S,
    Permission,
    Role,
    User,
    issue_session_token,
    parse_users,
    verify_session_token,
)
from ingest.store import Store

__all__ = ["SESSION_COOKIE", "config_path", "current_user", "jobs_dir", "load_settings", "require", "restore_session",
           "settings", "sign_in", "sign_out", "store", "store_url", "write_session_cookie"]

_SETTINGS = "genedge.settings"
_USER = "genedge.user"
_COOKIE_JS = "genedge.cookie_js"
_REVOKED = "genedge.revoked_token"
#: The browser cookie holding the signed session token (see :func:`dashboard.auth.issue_session_token`).
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


def current_user() -> User | None:
    """The signed-in user, if still configured with the same role."""
    entry = st.session_state.get(_USER)
    if not isinstance(entry, dict):
        return None
    try:
        users = parse_users(settings().dashboard.users)
    except ConfigError:
        return None
    known = users.get(entry.get("name", ""))
    if known is None or known[0].value != entry.get("role"):
        return None
    return User(entry["name"], Role(entry["role"]))


def sign_in(user: User) -> None:
    """Sign ``user`` in for this session and (on the next run) in the browser's session cookie."""
    st.session_state[_USER] = {"name": user.name, "role": user.role.value}
    token = issue_session_token(settings().dashboard.users, user)
    st.session_state[_COOKIE_JS] = (f"{SESSION_COOKIE}={token}; path=/; max-age={SESSION_TTL_S}; "
                                    "SameSite=Strict")


def sign_out() -> None:
    """Sign out of this session and delete the browser's session cookie."""
    st.session_state.pop(_USER, None)
    # the cookies Streamlit saw when this session connected still hold the token: ignore it from now on
    st.session_state[_REVOKED] = _cookie_token()
    st.session_state[_COOKIE_JS] = f"{SESSION_COOKIE}=; path=/; max-age=0; SameSite=Strict"


def _cookie_token() -> str | None:
    try:
        return st.context.cookies.get(SESSION_COOKIE)
    except (AttributeError, RuntimeError):  # no browser behind this session (e.g. AppTest)
        return None


def restore_session() -> User | None:
    """Sign in from a valid session cookie (a page reload opens a new Streamlit session)."""
    token = _cookie_token()
    if not token or token == st.session_state.get(_REVOKED):
        return None
    user = verify_session_token(settings().dashboard.users, token)
    if user is not None:
        st.session_state[_USER] = {"name": user.name, "role": user.role.value}
    return user


def write_session_cookie() -> None:
    """Set or delete the session cookie in the browser when sign-in or sign-out asked for it."""
    cookie = st.session_state.pop(_COOKIE_JS, None)
    if cookie:
        st.html(f"<script>document.cookie = {cookie!r};</script>", unsafe_allow_javascript=True)


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
