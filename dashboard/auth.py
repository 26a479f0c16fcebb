"""Dashboard users: password hashing, roles and what each role may do.

Passwords are stored as ``scrypt$<n>$<r>$<p>$<salt>$<hash>`` (salt and hash base64, a fresh
16-byte salt per password); ``pbkdf2_sha256$<iterations>$<salt>$<hash>`` is accepted too.
Users come from ``settings.dashboard.users``: ``{name: {"role": ..., "password_hash": ...}}``.
This module imports no Streamlit, so the CLI can hash demo passwords with it.

Make a hash for the settings with ``python -m dashboard.auth NAME --role engineer``.
"""

from __future__ import annotations

import argparse
import base64
import getpass
import hashlib
import hmac
import json
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from core.errors import ConfigError

__all__ = [
    "PERMISSIONS",
    "SESSION_TTL_S",
    "Permission",
    "Role",
    "User",
    "authenticate",
    "hash_password",
    "issue_session_token",
    "parse_users",
    "verify_password",
    "verify_session_token",
]

_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1
_MIN_PBKDF2_ITERATIONS = 100_000


class Role(StrEnum):
    OPERATOR = "operator"
    ENGINEER = "engineer"


class Permission(StrEnum):
    VIEW = "view"
    ACKNOWLEDGE = "acknowledge"
    SHELVE = "shelve"
    UNSHELVE = "unshelve"
    APPROVE = "approve"  # approve / reject / complete work orders
    MODELS = "models"
    SYNTH = "synth"


PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.OPERATOR: frozenset({Permission.VIEW, Permission.ACKNOWLEDGE, Permission.SHELVE}),
    Role.ENGINEER: frozenset(Permission),
}


@dataclass(frozen=True)
class User:
    """A signed-in user."""

    name: str
    role: Role

    def can(self, permission: Permission) -> bool:
        return permission in PERMISSIONS[self.role]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str) -> str:
    """A salted scrypt hash of ``password`` for ``settings.dashboard.users``.

    Raises:
        ValueError: the password is empty.
    """
    if not password:
        raise ValueError("password must not be empty")
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32)
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def _check_format(password_hash: str) -> None:
    parts = password_hash.split("$")
    if parts[0] == "scrypt" and len(parts) == 6 and all(p.isdigit() for p in parts[1:4]):
        return
    if parts[0] == "pbkdf2_sha256" and len(parts) == 4 and parts[1].isdigit():
        return
    raise ValueError("password_hash must look like 'scrypt$N$r$p$salt$hash' or 'pbkdf2_sha256$iterations$salt$hash'")


def verify_password(password: str, password_hash: str) -> bool:
    """Whether ``password`` matches ``password_hash`` (constant-time compare).

    A malformed hash never matches; it does not raise.
    """
    try:
        _check_format(password_hash)
        parts = password_hash.split("$")
        if parts[0] == "scrypt":
            n, r, p = (int(v) for v in parts[1:4])
            salt, expected = _unb64(parts[4]), _unb64(parts[5])
            got = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=len(expected),
                                 maxmem=256 * 1024 * 1024)
        else:
            iterations = int(parts[1])
            if iterations < _MIN_PBKDF2_ITERATIONS:
                return False
            salt, expected = _unb64(parts[2]), _unb64(parts[3])
            got = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations, dklen=len(expected))
    except (ValueError, TypeError):
        return False
    return bool(expected) and hmac.compare_digest(got, expected)


def parse_users(users: Mapping[str, Mapping[str, str]]) -> dict[str, tuple[Role, str]]:
    """Check ``settings.dashboard.users`` and return ``name -> (role, password_hash)``.

    Raises:
        ConfigError: naming each user whose role or hash is wrong.
    """
    out: dict[str, tuple[Role, str]] = {}
    problems = []
    roles = [r.value for r in Role]
    for name, entry in users.items():
        role, password_hash = entry.get("role", ""), entry.get("password_hash", "")
        if role not in roles:
            problems.append(f"user {name!r}: role must be one of {roles}, got {role!r}")
            continue
        try:
            _check_format(password_hash)
        except ValueError as err:
            problems.append(f"user {name!r}: {err}")
            continue
        out[name] = (Role(role), password_hash)
    if problems:
        raise ConfigError("dashboard.users: " + "; ".join(problems))
    return out


def authenticate(users: Mapping[str, Mapping[str, str]], name: str, password: str) -> User | None:
    """The user if ``name`` and ``password`` match a configured user, else ``None``.

    An unknown name costs a hash as well, so timing does not tell which names exist.
    """
    known = parse_users(users)
    if name not in known:
        verify_password(password, _DUMMY_HASH)
        return None
    role, password_hash = known[name]
    return User(name, role) if verify_password(password, password_hash) else None


#: How long a sign-in lasts in the browser (the session cookie's lifetime).
SESSION_TTL_S = 12 * 3600


def _session_mac(users: Mapping[str, Mapping[str, str]], payload: str) -> str:
    """HMAC-SHA256 of ``payload`` under a key derived from the configured users.

    The key is a hash of every user's salted password hash, so it is secret wherever the
    settings are, and changing any user (password, role, removal) ends every session.
    """
    canonical = json.dumps({n: dict(e) for n, e in users.items()}, sort_keys=True).encode()
    key = hashlib.sha256(b"genedge-dashboard-session\0" + canonical).digest()
    return _b64(hmac.new(key, payload.encode(), hashlib.sha256).digest())


def issue_session_token(users: Mapping[str, Mapping[str, str]], user: User, *, ttl_s: float = SESSION_TTL_S,
                        now: float | None = None) -> str:
    """A signed, expiring token that signs ``user`` in again after a page reload.

    ``<base64 name>.<role>.<expiry unix s>.<HMAC>``: readable, not secret; the MAC makes it
    unforgeable without the settings.
    """
    expires = int((time.time() if now is None else now) + ttl_s)
    payload = f"{_b64(user.name.encode())}.{user.role.value}.{expires}"
    return f"{payload}.{_session_mac(users, payload)}"


def verify_session_token(users: Mapping[str, Mapping[str, str]], token: str, *,
                         now: float | None = None) -> User | None:
    """The user a token from :func:`issue_session_token` signs in, or ``None``.

    ``None`` when the token is malformed, forged, expired, or its user is no longer configured
    with that role. Never raises.
    """
    try:
        name_b64, role, expires, mac = token.split(".")
        payload = f"{name_b64}.{role}.{expires}"
        if not hmac.compare_digest(mac, _session_mac(users, payload)):
            return None
        if int(expires) < (time.time() if now is None else now):
            return None
        name = _unb64(name_b64).decode()
        known = parse_users(users).get(name)
    except (ValueError, TypeError, UnicodeDecodeError, ConfigError):
        return None
    if known is None or known[0].value != role:
        return None
    return User(name, known[0])


_DUMMY_HASH = "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dashboard.auth",
                                     description="Hash a dashboard password and print the settings entry.")
    parser.add_argument("name", help="user name")
    parser.add_argument("--role", choices=[r.value for r in Role], default=Role.OPERATOR.value)
    args = parser.parse_args(argv)
    password = getpass.getpass(f"password for {args.name}: ")
    if password != getpass.getpass("again: "):
        print("passwords differ", file=sys.stderr)
        return 1
    entry = {"role": args.role, "password_hash": hash_password(password)}
    print(f'# TOML (--config file):\n[dashboard.users.{args.name}]\nrole = "{entry["role"]}"\n'
          f'password_hash = "{entry["password_hash"]}"\n')
    print(f"# or environment:\nGENEDGE_DASHBOARD__USERS='{json.dumps({args.name: entry})}'")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
