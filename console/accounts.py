"""Staff accounts: a username, a password (scrypt), and the staff member's key, sealed.

The operator makes an account with ``juwei console add-staff``; the key is issued in every service for the
staff member of the register, so whatever the console does for them it does as them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import insert, select, update

from console.sealing import KeySeal
from console.tables import staff_accounts
from juwei.session import Session

USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,63}")
MIN_PASSWORD = 10
# scrypt's cost: about 50 ms and 16 MiB a sign-in on one core; stored with the hash so it can be raised later.
_N, _R, _P = 2**14, 8, 1
# Compared against when the username is unknown, so a wrong name costs as long as a wrong password.
_DUMMY = None


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return "$".join(("scrypt", str(_N), str(_R), str(_P), _b64(salt), _b64(digest)))


def password_matches(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        found = hashlib.scrypt(
            password.encode(), salt=_unb64(salt), n=int(n), r=int(r), p=int(p), dklen=len(_unb64(digest))
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(found, _unb64(digest))


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class StaffAccount:
    username: str
    compound: str
    staff: str
    key_id: str
    sealed_key: str


def add_account(
    session: Session, seal: KeySeal, *, username: str, compound: str, staff: str, password: str, key_id: str, key: str
) -> None:
    """Store a new account (or replace the password and key of one the operator makes again)."""
    values = {
        "compound": compound,
        "staff": staff,
        "password_hash": hash_password(password),
        "key_id": key_id,
        "sealed_key": seal.seal(key, key_id),
        "disabled_at": None,
    }
    found = session.execute(select(staff_accounts.c.username).where(staff_accounts.c.username == username)).first()
    if found is None:
        session.execute(insert(staff_accounts).values(username=username, created_at=datetime.now(UTC), **values))
    else:
        session.execute(update(staff_accounts).where(staff_accounts.c.username == username).values(**values))


def verify(session: Session, username: str, password: str) -> StaffAccount | None:
    """The account when the password is right; None otherwise (unknown name, wrong password, disabled)."""
    global _DUMMY
    row = session.execute(select(staff_accounts).where(staff_accounts.c.username == username)).mappings().first()
    if row is None or row["disabled_at"] is not None:
        _DUMMY = _DUMMY or hash_password(secrets.token_hex(8))
        password_matches(password, _DUMMY)
        return None
    if not password_matches(password, row["password_hash"]):
        return None
    return StaffAccount(row["username"], row["compound"], row["staff"], row["key_id"], row["sealed_key"])
