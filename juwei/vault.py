"""Crypto-shredding: personal data sealed with a key per data subject, erased by destroying the key.

Each subject (a resident, a donor…) gets its own random 256-bit data key; sealed values are AES-256-GCM
ciphertexts bound to the subject id. Data keys are stored wrapped by the service's key-encryption key
(``JUWEI_<SERVICE>_VAULT_KEY``), so a copy of the database alone decrypts nothing. ``shred`` deletes a
subject's data key: every sealed value of that subject — in events, read models and backups alike —
becomes unreadable, while the append-only log stays untouched.

Backups taken before an erasure still hold that subject's *wrapped* key: ``rotate`` re-wraps every live
data key under a new key-encryption key, after which destroying the old one makes those backups'
sealed data unreadable too (see the README's operating notes).
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Column, DateTime, LargeBinary, String, Table, delete, insert, or_, select, update

from juwei.events import utcnow
from juwei.session import Session
from juwei.store import metadata

subject_keys_table = Table(
    "juwei_subject_keys",
    metadata,
    Column("subject", String(100), primary_key=True),
    Column("wrapped_key", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

_PREFIX = "sealed:v1:"
# Plain texts are padded (JSON ignores trailing blanks) so a token's length tells nothing: not how many
# flags are true, hardly how long a name is.
_PAD = 64
# Subjects per IN list: far below every database's parameter limit.
_CHUNK = 500


def shred_subject(session: Session, subject: str) -> int:
    """Delete every key of one data subject (its own and its sealed fields'); needs no key-encryption key."""
    result = session.execute(
        delete(subject_keys_table).where(
            or_(
                subject_keys_table.c.subject == subject,
                subject_keys_table.c.subject.startswith(f"{subject}#", autoescape=True),
            )
        )
    )
    return int(result.rowcount or 0)


class VaultKeyMissing(RuntimeError):
    """The service has no key-encryption key configured."""


def new_master_key() -> str:
    """A fresh key-encryption key, as the environment variable expects it (url-safe base64)."""
    return base64.urlsafe_b64encode(AESGCM.generate_key(bit_length=256)).decode()


def _encrypt(data_key: bytes, subject: str, value: dict[str, Any]) -> str:
    nonce = os.urandom(12)
    plain = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
    plain += b" " * (-len(plain) % _PAD)
    sealed = AESGCM(data_key).encrypt(nonce, plain, subject.encode())
    return _PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()


def _decrypt(data_key: bytes, subject: str, token: str) -> dict[str, Any]:
    raw = base64.urlsafe_b64decode(token[len(_PREFIX) :].encode())
    return json.loads(AESGCM(data_key).decrypt(raw[:12], raw[12:], subject.encode()))


def _decode_master(text: str) -> bytes:
    raw = base64.urlsafe_b64decode(text.encode())
    if len(raw) != 32:
        raise VaultKeyMissing("the vault key must be 32 bytes, url-safe base64 encoded")
    return raw


class Vault:
    """Seals and unseals one service's personal data under per-subject keys."""

    def __init__(self, master_key: str) -> None:
        self._kek = AESGCM(_decode_master(master_key))

    def _wrap(self, data_key: bytes, subject: str) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._kek.encrypt(nonce, data_key, subject.encode())

    def _unwrap(self, wrapped: bytes, subject: str) -> bytes:
        return self._kek.decrypt(wrapped[:12], wrapped[12:], subject.encode())

    def _data_key(self, session: Session, subject: str, create: bool) -> bytes | None:
        wrapped = session.execute(
            select(subject_keys_table.c.wrapped_key).where(subject_keys_table.c.subject == subject)
        ).scalar()
        if wrapped is not None:
            return self._unwrap(wrapped, subject)
        if not create:
            return None
        data_key = AESGCM.generate_key(bit_length=256)
        session.execute(
            insert(subject_keys_table).values(
                subject=subject, wrapped_key=self._wrap(data_key, subject), created_at=utcnow()
            )
        )
        return data_key

    def seal(self, session: Session, subject: str, value: dict[str, Any]) -> str:
        """Encrypt ``value`` for ``subject`` (creating its key on first use) into a printable token."""
        data_key = self._data_key(session, subject, create=True)
        assert data_key is not None
        return _encrypt(data_key, subject, value)

    def unseal(self, session: Session, subject: str, token: str | None) -> dict[str, Any] | None:
        """The sealed value, or None when the subject's key was shredded (or nothing was sealed)."""
        if not token or not token.startswith(_PREFIX):
            return None
        data_key = self._data_key(session, subject, create=False)
        if data_key is None:
            return None
        return _decrypt(data_key, subject, token)

    def _data_keys(self, session: Session, subjects: Sequence[str]) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        for start in range(0, len(subjects), _CHUNK):
            rows = session.execute(
                select(subject_keys_table.c.subject, subject_keys_table.c.wrapped_key).where(
                    subject_keys_table.c.subject.in_(subjects[start : start + _CHUNK])
                )
            )
            found.update((subject, self._unwrap(wrapped, subject)) for subject, wrapped in rows)
        return found

    def seal_many(self, session: Session, values: Mapping[str, dict[str, Any]]) -> dict[str, str]:
        """``seal`` for many subjects at once (bulk import): one read of their keys, one insert of new ones."""
        keys = self._data_keys(session, list(values))
        new = {subject: AESGCM.generate_key(bit_length=256) for subject in values if subject not in keys}
        if new:
            now = utcnow()
            session.execute(
                insert(subject_keys_table),
                [{"subject": s, "wrapped_key": self._wrap(k, s), "created_at": now} for s, k in new.items()],
            )
        keys.update(new)
        return {subject: _encrypt(keys[subject], subject, value) for subject, value in values.items()}

    def unseal_many(self, session: Session, tokens: Mapping[str, str | None]) -> dict[str, dict[str, Any] | None]:
        """``unseal`` for many subjects at once: None for those shredded or with nothing sealed."""
        wanted = [subject for subject, token in tokens.items() if token and token.startswith(_PREFIX)]
        keys = self._data_keys(session, wanted)
        return {
            subject: _decrypt(keys[subject], subject, token) if subject in keys and token else None
            for subject, token in tokens.items()
        }

    def unseal_each(self, session: Session, sealed: Sequence[tuple[str, str | None]]) -> list[dict[str, Any] | None]:
        """``unseal`` of many (subject, token) pairs at once, several tokens of one subject among them."""
        wanted = list(dict.fromkeys(subject for subject, token in sealed if token and token.startswith(_PREFIX)))
        keys = self._data_keys(session, wanted)
        return [
            _decrypt(keys[subject], subject, token) if token and token.startswith(_PREFIX) and subject in keys else None
            for subject, token in sealed
        ]

    def is_shredded(self, session: Session, subject: str) -> bool:
        return self._data_key(session, subject, create=False) is None

    def shred(self, session: Session, subject: str) -> bool:
        """Destroy the subject's key and its sealed fields' keys (``<subject>#<field>``); whether there was one."""
        return shred_subject(session, subject) > 0

    def data_keys(self, session: Session, subjects: Sequence[str]) -> dict[str, bytes]:
        """The data keys of these subjects (those not shredded), to hand over sealed under a shared key."""
        return self._data_keys(session, list(dict.fromkeys(subjects)))

    def take_key(self, session: Session, subject: str, data_key: bytes) -> bool:
        """Keep a data key handed over by the service that sealed under it; whether it was new here."""
        known = session.execute(
            select(subject_keys_table.c.subject).where(subject_keys_table.c.subject == subject)
        ).first()
        if known is not None:
            return False
        session.execute(
            insert(subject_keys_table).values(
                subject=subject, wrapped_key=self._wrap(data_key, subject), created_at=utcnow()
            )
        )
        return True

    def rotate(self, session: Session, new_master_key: str) -> int:
        """Re-wrap every live data key under a new key-encryption key; returns how many were re-wrapped."""
        successor = Vault(new_master_key)
        rows = session.execute(select(subject_keys_table.c.subject, subject_keys_table.c.wrapped_key)).all()
        for subject, wrapped in rows:
            data_key = self._unwrap(wrapped, subject)
            session.execute(
                update(subject_keys_table)
                .where(subject_keys_table.c.subject == subject)
                .values(wrapped_key=successor._wrap(data_key, subject))
            )
        return len(rows)


# --- handing sealed-field keys to the services granted them ----------------------------------------------

SEALED_KEY_HEADER = "juwei_sealed_key"


class KeyCourier:
    """Hands the data keys of sealed fields from the sealing service to the services granted to read them.

    The sealing service's relay adds, to each Kafka record whose payload holds a sealed token, a header with
    that token's data key wrapped under the shared key (``JUWEI_HEALTH_KEY``); the event table never holds it,
    so a key shredded before a (re-)publish is not sent. A granted consumer unwraps it and keeps it in its own
    vault under the same subject, where its erasure and retention shred it. A consumer without the shared key
    (notify) cannot open the header, nor the token. What stays on Kafka until its retention is a key sealed
    under the shared key: rotating that key cuts it short.
    """

    def __init__(self, shared_key: str) -> None:
        self._shared = AESGCM(_decode_master(shared_key))

    def wrap(self, subject: str, data_key: bytes) -> tuple[str, bytes]:
        nonce = os.urandom(12)
        sealed = self._shared.encrypt(nonce, data_key, subject.encode())
        return SEALED_KEY_HEADER, f"{subject}\n{base64.urlsafe_b64encode(nonce + sealed).decode()}".encode()

    def unwrap(self, header: bytes) -> tuple[str, bytes]:
        """(subject, data key) of a header; ``ValueError`` when it is malformed or not sealed under our key."""
        try:
            subject, _, text = header.decode().partition("\n")
            raw = base64.urlsafe_b64decode(text.encode())
            return subject, self._shared.decrypt(raw[:12], raw[12:], subject.encode())
        except Exception as exc:  # InvalidTag, binascii.Error, UnicodeDecodeError: all say "not for us"
            raise ValueError(f"a sealed-key header that this service cannot open ({type(exc).__name__})") from exc

    def headers(self, session: Session, vault: Vault, subjects: Sequence[str]) -> dict[str, tuple[str, bytes]]:
        """Per subject still holding a key: the header that hands it over."""
        return {subject: self.wrap(subject, key) for subject, key in vault.data_keys(session, subjects).items()}

    def take(self, session: Session, vault: Vault, headers: Sequence[bytes]) -> int:
        """Keep the keys of these headers in ``vault``; returns how many were new."""
        taken = 0
        for header in headers:
            subject, data_key = self.unwrap(header)
            taken += vault.take_key(session, subject, data_key)
        return taken
