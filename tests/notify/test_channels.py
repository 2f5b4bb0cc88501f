"""Channel secrets are configuration: sealed in the vault, never returned, never published, shredded on detach."""

from __future__ import annotations

import json

from sqlalchemy import select, text

from juwei.store import events_table
from services.notify.views import channels, deliveries
from tests.notify.conftest import Notify

SECRET = "SECa1b2c3d4e5f6-very-secret"
KEY = "693a91f6-7aee-4fd1-a33b-wecom-key"
PASSWORD = "smtp-password-42"


def _dump(notify: Notify) -> str:
    """Every row of every table and every event as text: what a stolen database file would show."""
    out = []
    with notify.runtime.database.reading() as session:
        names = [row[0] for row in session.execute(text("SELECT name FROM sqlite_master WHERE type='table'"))]
        for name in names:
            out.extend(str(tuple(row)) for row in session.execute(text(f'SELECT * FROM "{name}"')))
    return "\n".join(out)


def test_channel_secrets_are_sealed_never_shown_and_shredded_on_detach(notify: Notify, platforms, mailbox) -> None:
    staff = notify.key("committee-staff")
    ding = platforms.bot("dingtalk", KEY, SECRET)
    channel = notify.attach("1", "dingtalk", platforms.config(ding))
    mail = notify.attach(
        "1", "email", {**mailbox.config(["resident@example.org"]), "username": "u", "password": PASSWORD}
    )
    shown = notify.client.get("/compounds/c1/groups/1/channels", headers=staff)
    assert shown.status_code == 200
    assert {c["endpoint"] for c in shown.json()} == {
        f"127.0.0.1:{platforms.port}",
        f"smtp://127.0.0.1:{mailbox.port} (1 recipients)",
    }
    group = notify.client.get("/compounds/c1/groups/1", headers=staff).text
    stored = _dump(notify)
    for secret in (SECRET, KEY, PASSWORD, "resident@example.org"):
        assert secret not in shown.text and secret not in group and secret not in stored, secret
    with notify.runtime.database.reading() as session:
        sealed = session.execute(select(channels.c.config).where(channels.c.channel == f"c1:{channel}")).scalar()
        published = [json.loads(d) for d in session.execute(select(events_table.c.data)).scalars()]
    assert sealed.startswith("sealed:v1:")
    attached = [e for e in published if e.get("channel") == f"c1:{channel}"]
    assert attached and all("config" not in e and "label" not in e for e in attached)

    # It works (the secret is unsealed for sending), then detach shreds the key: the token stays unreadable.
    notify.announce("测试", buildings=["1"])
    notify.dispatcher.drain()
    assert ding.texts == ["测试"]
    notify.announce("还在队列里", buildings=["1"])
    assert notify.client.delete(f"/compounds/c1/groups/1/channels/{channel}", headers=staff).status_code == 204
    with notify.runtime.database.reading() as session:
        assert notify.runtime.vault.unseal(session, f"c1:{channel}", sealed) is None
        statuses = dict(
            session.execute(
                select(deliveries.c.message, deliveries.c.status).where(deliveries.c.channel == f"c1:{channel}")
            ).all()
        )
    assert sorted(statuses.values()) == ["cancelled", "sent"]
    assert notify.client.delete(f"/compounds/c1/groups/1/channels/{channel}", headers=staff).status_code == 404
    assert [c["channel"] for c in notify.client.get("/compounds/c1/groups/1", headers=staff).json()["channels"]] == [
        mail
    ]


def test_read_models_rebuild_to_the_same_answers(notify: Notify, platforms) -> None:
    staff = notify.key("committee-staff")
    notify.attach("1", "wecom", platforms.config(platforms.bot("wecom", "k")))
    notify.client.put("/compounds/c1/quiet-hours", json={"start": "22:00", "end": "07:00"}, headers=staff)
    notify.announce("一", buildings=["1", "2"])
    notify.announce("二")
    views = [
        "/compounds/c1/groups",
        "/compounds/c1/groups/1/channels",
        "/compounds/c1/messages",
        "/compounds/c1/quiet-hours",
    ]
    before = [notify.client.get(v, headers=staff).json() for v in views]
    assert notify.runtime.projector.rebuild() > 0
    assert [notify.client.get(v, headers=staff).json() for v in views] == before
