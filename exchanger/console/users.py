"""The console's accounts: names, roles and argon2 password hashes in one file only its owner can read."""

from __future__ import annotations

import os
import re
import secrets
import tempfile
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import yaml
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from exchanger.errors import ExchangerError

ROLES = ("viewer", "operator", "admin")
# Each role may do what the roles before it may.
RANK = {role: index for index, role in enumerate(ROLES)}
MIN_PASSWORD = 10
FIRST_ADMIN = "admin"
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,31}$")
_HASHER = PasswordHasher()
# Checked when the name is unknown, so a wrong name costs as long as a wrong password.
_DUMMY = _HASHER.hash("not a password of anyone")


class AccountError(ExchangerError):
    """An account cannot be added, changed or removed as asked."""


@dataclass(frozen=True)
class User:
    """One console account."""

    name: str
    role: str
    must_change: bool
    created: str
    stamp: str = ""  # changes with the password: a session signed in before a change ends with it

    def may(self, role: str) -> bool:
        """True when this account's role includes ``role``."""
        return RANK[self.role] >= RANK[role]


def check_password_rules(password: str) -> None:
    """Refuse a password too short to be one."""
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"a password needs at least {MIN_PASSWORD} characters")


class UserStore:
    """The accounts file, read afresh on every use so `exchanger console users` and the console agree."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()

    def _read(self) -> dict[str, dict]:
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise AccountError(f"cannot read the console accounts {self.path}: {exc.strerror}") from exc
        data = yaml.safe_load(text) or {}
        users = data.get("users") if isinstance(data, dict) else None
        if not isinstance(users, dict):
            raise AccountError(f"{self.path} is not a console accounts file (no `users:` mapping)")
        return users

    def _write(self, users: dict[str, dict]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Written beside the file and renamed over it: a crash leaves the old file or the new one, never half.
        fd, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".console-users-")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w") as out:
                yaml.safe_dump({"users": users}, out, sort_keys=True)
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def users(self) -> list[User]:
        """Every account, by name."""
        return [_user(name, spec) for name, spec in sorted(self._read().items())]

    def get(self, name: str) -> User | None:
        """One account, or None."""
        spec = self._read().get(name)
        return _user(name, spec) if spec else None

    def add(self, name: str, role: str, password: str, *, must_change: bool = False) -> User:
        """Create an account; refuse a taken or malformed name, an unknown role, a short password."""
        if not _NAME.match(name):
            raise AccountError(f"{name!r} is not an account name: 1-32 characters of a-z, 0-9, '.', '_' and '-'")
        if role not in ROLES:
            raise AccountError(f"{role!r} is not a role: use one of {', '.join(ROLES)}")
        check_password_rules(password)
        with self._lock:
            users = self._read()
            if name in users:
                raise AccountError(f"there is already an account {name!r}")
            users[name] = {
                "role": role,
                "hash": _HASHER.hash(password),
                "must_change": must_change,
                "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
            self._write(users)
        return _user(name, users[name])

    def remove(self, name: str) -> None:
        """Delete an account; the last admin cannot go, or nobody could manage accounts any more."""
        with self._lock:
            users = self._read()
            if name not in users:
                raise AccountError(f"there is no account {name!r}")
            admins = [n for n, spec in users.items() if spec.get("role") == "admin"]
            if admins == [name]:
                raise AccountError(f"{name!r} is the last admin; add another admin first")
            del users[name]
            self._write(users)

    def set_role(self, name: str, role: str) -> None:
        """Change an account's role, keeping at least one admin."""
        if role not in ROLES:
            raise AccountError(f"{role!r} is not a role: use one of {', '.join(ROLES)}")
        with self._lock:
            users = self._read()
            if name not in users:
                raise AccountError(f"there is no account {name!r}")
            admins = [n for n, spec in users.items() if spec.get("role") == "admin"]
            if admins == [name] and role != "admin":
                raise AccountError(f"{name!r} is the last admin; add another admin first")
            users[name]["role"] = role
            self._write(users)

    def set_password(self, name: str, password: str, *, must_change: bool = False) -> None:
        """Replace an account's password (``must_change``: the owner must choose another at next sign-in)."""
        check_password_rules(password)
        with self._lock:
            users = self._read()
            if name not in users:
                raise AccountError(f"there is no account {name!r}")
            users[name]["hash"] = _HASHER.hash(password)
            users[name]["must_change"] = must_change
            self._write(users)

    def verify(self, name: str, password: str) -> User | None:
        """The account when the password is right, else None (taking as long either way)."""
        spec = self._read().get(name)
        try:
            _HASHER.verify(spec["hash"] if spec else _DUMMY, password)
        except (VerificationError, InvalidHashError):
            return None
        return _user(name, spec) if spec else None

    def ensure_first_admin(self) -> str | None:
        """With no account at all, create ``admin`` with a one-time password and return it (else None)."""
        with self._lock:
            if self._read():
                return None
        password = secrets.token_urlsafe(12)
        self.add(FIRST_ADMIN, "admin", password, must_change=True)
        return password


def _user(name: str, spec: dict) -> User:
    role = spec.get("role") if spec.get("role") in ROLES else "viewer"
    return User(name=name, role=role, must_change=bool(spec.get("must_change")), created=str(spec.get("created", "")),
                stamp=str(spec.get("hash", ""))[-16:])
