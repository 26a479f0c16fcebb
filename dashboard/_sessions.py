"""Server-side sign-in state of the dashboard: sessions, their signing key and failed sign-ins.

A session lives on the server, in ``<state_dir>/sessions.db`` (SQLite, mode 0600). The browser's
cookie carries only an opaque token, ``<random id>.<HMAC of the id>``: it names no user or role,
and signing out deletes its row, so a copied token is refused from then on. The HMAC key is
``settings.dashboard.session_secret`` or, when that is not set, 32 random bytes generated once
into ``<state_dir>/session.key`` (mode 0600); it is never derived from the users, whose hashes
``genedge config show`` would otherwise give away. A session also ends when its user's entry
(role or password hash) changes or is removed.

Failed sign-ins are counted per user name and per client address in the same file: after
``lockout_after`` of them in a row, further attempts are refused for ``lockout_s``, doubled for
each failure after that up to ``lockout_max_s``. A success clears both counts; a streak older
than ``lockout_max_s`` is forgotten.

This module imports no Streamlit, so it is tested and used from the CLI without a server.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import secrets
import sqlite3
import stat
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from core.errors import ConfigError
from dashboard.auth import User, parse_users

__all__ = ["KEY_FILE", "SESSIONS_DB", "Lockout", "SessionStore", "load_session_key"]

#: The generated session key, inside ``state_dir``.
KEY_FILE = "session.key"
#: The sessions and failed sign-ins, inside ``state_dir``.
SESSIONS_DB = "sessions.db"
_MIN_KEY_BYTES = 32


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _private_dir(state_dir: Path) -> None:
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)


def load_session_key(state_dir: Path, configured: str | None = None) -> bytes:
    """The key that signs session tokens: ``configured``, else the one kept in ``state_dir``.

    The kept key is generated on first use (32 random bytes, file mode 0600, written beside and
    linked into place so concurrent servers agree on one key).

    Raises:
        ConfigError: the key file cannot be read or written, is readable by other users, or
            holds too short a key.
    """
    if configured is not None:
        return configured.encode()
    path = state_dir / KEY_FILE
    try:
        if not path.exists():
            _private_dir(state_dir)
            tmp = state_dir / f".{KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(_MIN_KEY_BYTES) + "\n")
            try:
                os.link(tmp, path)  # fails if another process linked its key first: that one wins
            except FileExistsError:
                pass
            finally:
                tmp.unlink()
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(f"session key file {str(path)!r} is accessible by other users "
                              f"(mode {stat.S_IMODE(mode):o}); make it mode 600 or set dashboard.session_secret")
        key = path.read_text().strip()
    except OSError as err:
        raise ConfigError(f"session key file {str(path)!r} cannot be used: {type(err).__name__}: {err.strerror}") from err
    if len(key) < _MIN_KEY_BYTES:
        raise ConfigError(f"session key file {str(path)!r} holds {len(key)} characters, expected at least "
                          f"{_MIN_KEY_BYTES}; delete it to generate a new one")
    return key.encode()


class _Db:
    """One SQLite file with short-lived connections (each Streamlit session runs in its own thread)."""

    _SCHEMA = (
        "CREATE TABLE IF NOT EXISTS sessions (id_hash TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL, "
        "user_fp TEXT NOT NULL, created REAL NOT NULL, expires REAL NOT NULL)",
        "CREATE TABLE IF NOT EXISTS failures (key TEXT PRIMARY KEY, count INTEGER NOT NULL, "
        "last REAL NOT NULL, locked_until REAL NOT NULL)",
    )

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / SESSIONS_DB
        try:
            _private_dir(state_dir)
            if not self.path.exists():
                os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
            with self.connect() as db:
                for ddl in self._SCHEMA:
                    db.execute(ddl)
        except (OSError, sqlite3.Error) as err:
            raise ConfigError(f"dashboard state {str(self.path)!r} cannot be used: {type(err).__name__}: {err}") from err

    @contextlib.contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        try:
            db.execute("BEGIN IMMEDIATE")  # read-modify-write of counters must not interleave
            yield db
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        finally:
            db.close()


def _user_fingerprint(role: str, password_hash: str) -> str:
    """Changes whenever the user's role or password changes; the hash itself is not stored."""
    return hashlib.sha256(f"{role}\0{password_hash}".encode()).hexdigest()


class SessionStore:
    """Sessions kept on the server; tokens are opaque, signed and revocable.

    Args:
        state_dir: folder of ``sessions.db``.
        key: HMAC key of the tokens (see :func:`load_session_key`).
        ttl_s: how long a session lasts.
    """

    def __init__(self, state_dir: Path, key: bytes, *, ttl_s: float = 12 * 3600) -> None:
        self._db = _Db(state_dir)
        self._key = key
        self.ttl_s = ttl_s

    def _mac(self, sid: str) -> str:
        return _b64(hmac.new(self._key, b"genedge-dashboard-session\0" + sid.encode(), hashlib.sha256).digest())

    @staticmethod
    def _id_hash(sid: str) -> str:
        # only a hash of the id is stored: a copy of sessions.db signs nobody in
        return hashlib.sha256(sid.encode()).hexdigest()

    def issue(self, users: Mapping[str, Mapping[str, str]], user: User, *, now: float | None = None) -> str:
        """A new session for ``user`` (a configured user) and its token ``<id>.<HMAC>``."""
        now = time.time() if now is None else now
        role, password_hash = parse_users(users)[user.name]
        sid = _b64(secrets.token_bytes(32))
        with self._db.connect() as db:
            db.execute("DELETE FROM sessions WHERE expires < ?", (now,))
            db.execute("INSERT INTO sessions VALUES (?, ?, ?, ?, ?, ?)",
                       (self._id_hash(sid), user.name, role.value, _user_fingerprint(role.value, password_hash),
                        now, now + self.ttl_s))
        return f"{sid}.{self._mac(sid)}"

    def _sid(self, token: str) -> str | None:
        sid, _, mac = token.partition(".")
        if not sid or not mac or not hmac.compare_digest(mac, self._mac(sid)):
            return None
        return sid

    def verify(self, users: Mapping[str, Mapping[str, str]], token: str, *, now: float | None = None) -> User | None:
        """The user of a live session, or ``None``.

        ``None`` when the token is malformed or forged, its session was revoked or has expired,
        or its user is no longer configured with the same role and password. Never raises
        (a broken state file signs nobody in).
        """
        try:
            sid = self._sid(token)
            if sid is None:
                return None
            with self._db.connect() as db:
                row = db.execute("SELECT name, role, user_fp, expires FROM sessions WHERE id_hash = ?",
                                 (self._id_hash(sid),)).fetchone()
            if row is None:
                return None
            name, role, fingerprint, expires = row
            if expires < (time.time() if now is None else now):
                return None
            known = parse_users(users).get(name)
        except (ValueError, TypeError, sqlite3.Error, ConfigError):
            return None
        if known is None or known[0].value != role:
            return None
        if not hmac.compare_digest(_user_fingerprint(role, known[1]), fingerprint):
            return None
        return User(name, known[0])

    def revoke(self, token: str) -> bool:
        """End the session of ``token`` (a copy of it signs nobody in from now on).

        Returns:
            Whether a live session was ended.
        """
        sid = self._sid(token)
        if sid is None:
            return False
        with self._db.connect() as db:
            return db.execute("DELETE FROM sessions WHERE id_hash = ?", (self._id_hash(sid),)).rowcount > 0


class Lockout:
    """Failed sign-ins per key (``user:<name>``, ``client:<address>``) and the back-off they earn.

    Args:
        state_dir: folder of ``sessions.db``.
        after: failures in a row before the first lockout.
        base_s: the first lockout; each failure after it doubles the next.
        max_s: the longest lockout; a streak whose last failure is older than this is forgotten.
    """

    def __init__(self, state_dir: Path, *, after: int = 5, base_s: float = 30.0, max_s: float = 900.0) -> None:
        self._db = _Db(state_dir)
        self.after, self.base_s, self.max_s = after, base_s, max(max_s, base_s)

    def locked_for(self, keys: Sequence[str], *, now: float | None = None) -> float:
        """Seconds until any of ``keys`` may try again (0: not locked)."""
        now = time.time() if now is None else now
        marks = ",".join("?" * len(keys))
        with self._db.connect() as db:
            row = db.execute(f"SELECT MAX(locked_until) FROM failures WHERE key IN ({marks})", tuple(keys)).fetchone()
        return max(0.0, (row[0] or 0.0) - now)

    def failed(self, keys: Sequence[str], *, now: float | None = None) -> float:
        """Count a failed sign-in against every key.

        Returns:
            The lockout it earned, in seconds (0: none yet).
        """
        now = time.time() if now is None else now
        earned = 0.0
        with self._db.connect() as db:
            db.execute("DELETE FROM failures WHERE last < ? AND locked_until < ?", (now - self.max_s, now))
            for key in keys:
                row = db.execute("SELECT count FROM failures WHERE key = ?", (key,)).fetchone()
                count = (row[0] if row else 0) + 1
                lock = 0.0
                if count >= self.after:
                    lock = min(self.max_s, self.base_s * 2.0 ** min(count - self.after, 32))
                db.execute("INSERT OR REPLACE INTO failures VALUES (?, ?, ?, ?)", (key, count, now, now + lock))
                earned = max(earned, lock)
        return earned

    def succeeded(self, keys: Sequence[str]) -> None:
        """Clear the failure counts of ``keys`` (a correct password while not locked out)."""
        marks = ",".join("?" * len(keys))
        with self._db.connect() as db:
            db.execute(f"DELETE FROM failures WHERE key IN ({marks})", tuple(keys))
