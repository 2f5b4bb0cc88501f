"""Exactly-once commands: a write that carries ``Idempotency-Key`` is carried out at most once.

A volunteer's phone names a command when it is taken (offline, perhaps) and sends it again when the network
returns, maybe several times, maybe at once. The id is recorded in ``juwei_commands`` in the same
transaction as what the command writes (the first unit of work of the request claims it, see
``Database.at_start``), so that either both the events and the record exist or neither does. Once the
handler has answered, its status and body are stored on the record; a replay gets them back with
``Idempotent-Replayed: true``. If the process died between the commit and storing the answer, a replay gets
200 ``{"replayed": true, ...}``: the command was carried out, its answer is lost.

The same id with another request (method, path, query, body), or from another key: 422. Two requests with
one id at the same moment: the second blocks on the record's primary key until the first commits, then gets
409 (in progress); never both. A command refused (4xx) writes nothing and is not recorded: it can be sent
again. A 5xx after the commit keeps the record without an answer (the replay says it was carried out), and so
does an answer that shows a new key's secret: secrets are only ever stored hashed.
"""

from __future__ import annotations

import hashlib
import json
import re
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, DateTime, Integer, String, Table, Text, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from juwei.auth import authenticate
from juwei.events import utcnow
from juwei.failpoints import failpoint
from juwei.problems import Problem, problem_response
from juwei.session import Session
from juwei.store import metadata
from juwei.wording import Said

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
PATTERN = re.compile(r"^[A-Za-z0-9_-]{8,100}$")
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
DESCRIPTION = (
    "Optional on every write: a client-made id (8 to 100 of A-Z a-z 0-9 _ -) that makes the command happen at "
    "most once. A replay with the same key and request gets the first answer back (header Idempotent-Replayed: "
    "true); the same id with another request or from another key: 422; while the first is being carried out: "
    "409. A refused command (4xx) is not recorded and may be sent again."
)

commands_table = Table(
    "juwei_commands",
    metadata,
    Column("id", String(100), primary_key=True),
    Column("key_id", String(32), nullable=False),
    Column("method", String(10), nullable=False),
    Column("path", String(2000), nullable=False),
    # SHA-256 of method, path with query and body: the same id must name the same request.
    Column("fingerprint", String(64), nullable=False),
    Column("status", Integer, nullable=True),
    Column("response", Text, nullable=True),
    Column("media_type", String(100), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)


@dataclass
class PendingCommand:
    """The command of the request being served; ``claimed`` once a committed transaction recorded it."""

    id: str
    key_id: str
    method: str
    path: str
    fingerprint: str
    claimed: bool = False
    # False when the answer shows a key's secret (``issue_key``): secrets are only ever stored hashed.
    keep_answer: bool = True


current_command: ContextVar[PendingCommand | None] = ContextVar("juwei_command", default=None)


def claim(session: Session) -> None:
    """Record the request's command at the start of a write transaction (``Database.at_start``).

    First in the transaction, so that a concurrent duplicate waits here on the primary key, before it has
    read or decided anything, and fails once the first commits.
    """
    pending = current_command.get()
    if pending is None or pending.claimed:
        return
    try:
        session.execute(
            insert(commands_table).values(
                id=pending.id,
                key_id=pending.key_id,
                method=pending.method,
                path=pending.path,
                fingerprint=pending.fingerprint,
                created_at=utcnow(),
            )
        )
    except IntegrityError:
        raise Problem(
            409,
            f"the command {pending.id} is being carried out by another request; send it again for its answer",
            "command-in-progress",
            said=Said("command-in-progress", {"id": pending.id}),
        ) from None

    def committed(done: Session) -> None:
        pending.claimed = True
        pending.keep_answer = not done.info.get("juwei.secret_shown", False)

    session.after_commit(committed)


def fingerprint(method: str, path: str, query: str, body: bytes) -> str:
    digest = hashlib.sha256(f"{method}\n{path}?{query}\n".encode())
    digest.update(body)
    return digest.hexdigest()


def _key_of(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-api-key":
            return value.decode("latin-1")
    return ""


class CommandLedger:
    """ASGI middleware: answers replays from the ledger, and stores the answer of a command carried out."""

    def __init__(self, app: ASGIApp, runtime: Any) -> None:
        self.app = app
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in WRITES:
            await self.app(scope, receive, send)
            return
        given = next((v.decode("latin-1") for n, v in scope.get("headers", ()) if n == b"idempotency-key"), None)
        if given is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        if not PATTERN.match(given):
            await problem_response(
                request,
                422,
                f"{HEADER} must be 8 to 100 characters of A-Z, a-z, 0-9, _ and -",
                "idempotency-key-invalid",
                said=Said("idempotency-key-invalid"),
            )(scope, receive, send)
            return
        try:
            body = await _read(receive)
        except HTTPException as exc:  # the body limit, met while the body is read here rather than in a route
            said = getattr(exc, "said", None)
            await problem_response(request, exc.status_code, str(exc.detail), "body-too-large", said=said)(
                scope, receive, send
            )
            return
        path = scope["path"]
        printed = fingerprint(scope["method"], path, scope.get("query_string", b"").decode("latin-1"), body)
        key = _key_of(scope)
        found = await run_in_threadpool(self._recorded, given, key)
        if not key or (found is not None and found["caller"] is None):
            # No key, or an unknown or revoked one: the route answers 401 and learns nothing of the ledger.
            await self.app(scope, _replaying(body, receive), send)
            return
        if found is not None:
            await self._replay(request, found, printed, scope, receive, send)
            return
        key_id = key.split("_", 2)[1] if key.count("_") >= 2 else ""
        pending = PendingCommand(given, key_id, scope["method"], path, printed)
        token = current_command.set(pending)
        started: Message | None = None
        parts: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = message
            elif message["type"] == "http.response.body":
                parts.append(message.get("body", b""))

        try:
            await self.app(scope, _replaying(body, receive), capture)
        finally:
            current_command.reset(token)
        assert started is not None
        status = int(started["status"])
        answer = b"".join(parts)
        if pending.claimed:
            # The commit is done, the answer neither stored nor sent: a test kills the process here.
            failpoint("commands.after_commit")
            media = _header(started, b"content-type")
            await run_in_threadpool(self._settle, pending, status, answer, media)
        await send(started)
        await send({"type": "http.response.body", "body": answer, "more_body": False})

    def _recorded(self, id: str, key: str) -> dict[str, Any] | None:
        with self.runtime.database.reading() as session:
            row = session.execute(select(commands_table).where(commands_table.c.id == id)).mappings().first()
            if row is None:
                return None
            # Only the key it names, authenticated, learns anything of a recorded command.
            caller = authenticate(session, key) if key else None
        return {**row, "caller": caller.key_id if caller is not None else None}

    def _settle(self, pending: PendingCommand, status: int, answer: bytes, media: str | None) -> None:
        with self.runtime.database.unit_of_work() as session:
            if 400 <= status < 500:
                # Refused after a write of its own (a first unit committed): sent again, it is carried out anew.
                session.execute(delete(commands_table).where(commands_table.c.id == pending.id))
            elif status < 400 and pending.keep_answer:
                session.execute(
                    update(commands_table)
                    .where(commands_table.c.id == pending.id)
                    .values(status=status, response=answer.decode("utf-8", "replace"), media_type=media)
                )

    async def _replay(
        self, request: Request, found: dict[str, Any], printed: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        if found["caller"] != found["key_id"] or found["fingerprint"] != printed:
            await problem_response(
                request,
                422,
                f"{HEADER} {found['id']} was used for another request; make a new id for a new command",
                "idempotency-key-reused",
                said=Said("idempotency-key-reused", {"id": found["id"]}),
            )(scope, receive, send)
            return
        headers = [(REPLAYED.lower().encode(), b"true")]
        if found["status"] is None:
            body = json.dumps({"replayed": True, "detail": "this command was already carried out"}).encode()
            status, media = 200, "application/json"
        else:
            body, status, media = found["response"].encode(), found["status"], found["media_type"]
        if media:
            headers.append((b"content-type", media.encode()))
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})


async def _read(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _header(start: Message, name: bytes) -> str | None:
    return next((v.decode("latin-1") for n, v in start.get("headers", ()) if n.lower() == name), None)


def _replaying(body: bytes, receive: Receive) -> Receive:
    """The request's body, already read, handed to the app once; then the client's own messages."""
    sent = False

    async def again() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return again


REPLAYED_SCHEMA: dict[str, Any] = {
    "title": "CommandReplayed",
    "description": "The command was carried out before; its answer was not kept (a crash, or a key's secret)",
    "type": "object",
    "properties": {"replayed": {"const": True}, "detail": {"type": "string"}},
    "required": ["replayed", "detail"],
}


def document(schema: dict[str, Any]) -> dict[str, Any]:
    """Name the header on every write of an OpenAPI document, and the 200 a replay without a kept answer gives."""
    schema.setdefault("components", {}).setdefault("schemas", {})["CommandReplayed"] = REPLAYED_SCHEMA
    replayed = {"$ref": "#/components/schemas/CommandReplayed"}
    parameter = {
        "name": HEADER,
        "in": "header",
        "required": False,
        "description": DESCRIPTION,
        "schema": {"type": "string", "pattern": PATTERN.pattern, "minLength": 8, "maxLength": 100},
    }
    for operations in schema.get("paths", {}).values():
        for method, operation in operations.items():
            if method.upper() not in WRITES:
                continue
            operation.setdefault("parameters", []).append(parameter)
            responses = operation.setdefault("responses", {})
            answer = responses.get("200", {}).get("content", {}).get("application/json")
            if answer is not None:
                answer["schema"] = {"anyOf": [answer.get("schema", {}), replayed]}
            elif "200" not in responses:
                responses["200"] = {
                    "description": f"Sent again with the same {HEADER}: carried out before, its answer not kept",
                    "content": {"application/json": {"schema": replayed}},
                }
    return schema
