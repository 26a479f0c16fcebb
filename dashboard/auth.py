"""Dashboard users: password hashing, roles and what each role may do.

Passwords are stored as ``scrypt$<n>$<r>$<p>$<salt>$<hash>`` (salt and hash base64, a fresh
16-byte salt per password); ``pbkdf2_sha256$<iterations>$<salt>$<hash>`` is accepted too.
Users come from ``settings.dashboard.users``: ``{name: {"role": ..., "password_hash": ...}}``.
This module imports no Streamlit, so the CLI can hash demo passwords with it. Sessions and
failed sign-ins are kept on the server by :mod:`dashboard._sessions`.

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
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from core.errors import ConfigError

__all__ = [
    "PERMISSIONS",
    "Permission",
    "Role",
    "User",
    "authenticate",
    "hash_password",
    "parse_users",
    "verify_password",
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
