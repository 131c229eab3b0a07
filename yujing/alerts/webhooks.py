"""Webhook subscriptions and the relay stage that turns stored changes into deliveries.

A subscription names a URL, a secret, the enterprises and the lowest level it wants, and
whether it takes ordinary transitions, escalation notices, or both. `WebhookFanout` is a
publisher of the outbox relay: for each change people should hear about (`notify`), it
writes one pending delivery per matching subscription into PostgreSQL, keyed by
(subscription, event id) so a relay replay adds nothing. Sending, retries and dead letters
are `dispatch.WebhookDispatcher`'s, so a slow receiver never holds up the relay.

Secrets are stored encrypted (Fernet, keys from `YJ_WEBHOOK_SECRET_KEYS`); a row written
in clear by an older yujing is encrypted by `seal_plaintext` when the dispatcher starts.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
from cryptography.fernet import Fernet, MultiFernet
from ulid import ULID

from yujing.alerts import cloudevents
from yujing.alerts.publishers import PublishError
from yujing.alerts.settings import AlertSettings
from yujing.alerts.store import StoredChange
from yujing.db import Conn
from yujing.levels import Level

SEALED = "fernet:"
KEY_FILE = "webhook-secret.key"


class SecretBox:
    """Encrypts webhook secrets for the database and decrypts them for signing."""

    def __init__(self, keys: Sequence[bytes]) -> None:
        self._fernet = MultiFernet([Fernet(k) for k in keys])

    @classmethod
    def from_settings(cls, s: AlertSettings) -> SecretBox:
        keys = [k.strip().encode() for k in s.webhook_secret_keys.split(",") if k.strip()]
        return cls(keys or [_key_file(s.data_dir / KEY_FILE)])

    def seal(self, secret: str) -> str:
        return SEALED + self._fernet.encrypt(secret.encode()).decode()

    def open(self, stored: str) -> str:
        """The secret; a value without the prefix is a row from before encryption."""
        if not stored.startswith(SEALED):
            return stored
        return self._fernet.decrypt(stored.removeprefix(SEALED).encode()).decode()


def _key_file(path: Path) -> bytes:
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as f:
        f.write(key)
    return key


async def seal_plaintext(pool: asyncpg.Pool, box: SecretBox) -> int:
    """Encrypts the secrets stored in clear (the migration of rows from before)."""
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(
            "SELECT id, secret FROM webhook_subscriptions WHERE secret NOT LIKE $1 || '%'"
            " FOR UPDATE",
            SEALED,
        )
        for row in rows:
            await conn.execute(
                "UPDATE webhook_subscriptions SET secret = $2 WHERE id = $1",
                row["id"], box.seal(row["secret"]),
            )  # fmt: skip
    return len(rows)


@dataclass(frozen=True, slots=True)
class Subscription:
    id: str
    url: str
    secret: str
    enterprises: list[str] | None  # None: every enterprise
    min_level: Level
    transitions: bool
    escalations: bool
    created_by: str
    created_at: datetime
    deleted_at: datetime | None

    def public(self) -> dict[str, Any]:
        """Without the secret: it is shown once, when the subscription is created."""
        return {
            # Read back as written: ["*"] for every enterprise.
            "id": self.id, "url": self.url, "enterprises": self.enterprises or ["*"],
            "min_level": self.min_level.word, "transitions": self.transitions,
            "escalations": self.escalations, "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
        }  # fmt: skip

    @classmethod
    def from_row(cls, row: Any) -> Subscription:
        data = dict(row)
        data["min_level"] = Level(data["min_level"])
        data["enterprises"] = None if data["enterprises"] is None else list(data["enterprises"])
        return cls(**data)


async def subscribe(
    pool: asyncpg.Pool,
    *,
    url: str,
    enterprises: list[str] | None,
    min_level: Level,
    transitions: bool,
    escalations: bool,
    who: str,
    now: datetime,
    secret: str | None = None,
    box: SecretBox | None = None,
) -> Subscription:
    """A new subscription; the returned record carries the secret in clear (shown once)."""
    secret = secret or "whsec_" + secrets.token_urlsafe(32)
    box = box or SecretBox.from_settings(AlertSettings())
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "INSERT INTO webhook_subscriptions (id, url, secret, enterprises, min_level,"
            " transitions, escalations, created_by, created_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING *",
            f"wh-{ULID()}", url, box.seal(secret), enterprises, int(min_level), transitions,
            escalations, who, now,
        )  # fmt: skip
    return replace(Subscription.from_row(row), secret=secret)


async def subscriptions(pool: asyncpg.Pool) -> list[Subscription]:
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT * FROM webhook_subscriptions WHERE deleted_at IS NULL ORDER BY created_at"
        )
    return [Subscription.from_row(r) for r in rows]


async def subscription(pool: asyncpg.Pool, sub_id: str) -> Subscription | None:
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT * FROM webhook_subscriptions WHERE id = $1 AND deleted_at IS NULL", sub_id
        )
    return Subscription.from_row(row) if row else None


async def unsubscribe(pool: asyncpg.Pool, sub_id: str, now: datetime) -> None:
    """Kept (soft delete) so its deliveries stay visible; pending ones are dead-lettered."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "UPDATE webhook_subscriptions SET deleted_at = $2 WHERE id = $1", sub_id, now
        )
        await conn.execute(
            "UPDATE webhook_deliveries SET state = 'dead', last_error = 'subscription deleted'"
            " WHERE subscription_id = $1 AND state = 'pending'",
            sub_id,
        )


async def deliveries(
    pool: asyncpg.Pool, sub_id: str, state: str | None, limit: int
) -> list[dict[str, Any]]:
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT id, event_id, event_type, seq, state, attempts, next_attempt_at, last_error,"
            " last_status, created_at, delivered_at FROM webhook_deliveries"
            " WHERE subscription_id = $1 AND ($2::text IS NULL OR state = $2)"
            " ORDER BY id DESC LIMIT $3",
            sub_id, state, limit,
        )  # fmt: skip
    return [
        {k: v.isoformat() if isinstance(v, datetime) else v for k, v in dict(r).items()}
        for r in rows
    ]


async def enqueue(
    conn: Conn,
    event: dict[str, Any],
    *,
    escalation: bool,
    now: datetime,
) -> int:
    """One pending delivery per matching subscription; returns how many were added."""
    alert = event["data"]
    wants = "s.escalations" if escalation else "s.transitions"
    status = await conn.execute(
        "INSERT INTO webhook_deliveries (subscription_id, event_id, event_type, seq, body,"
        " next_attempt_at, created_at)"
        " SELECT s.id, $1, $2, $3, $4, $5, $5 FROM webhook_subscriptions s"
        f" WHERE s.deleted_at IS NULL AND {wants} AND s.min_level <= $6"
        " AND (s.enterprises IS NULL OR $7 = ANY(s.enterprises))"
        " ON CONFLICT (subscription_id, event_id) DO NOTHING",
        event["id"], event["type"], event["seq"], cloudevents.dumps(event), now,
        int(Level.parse(alert["level"])), alert["enterprise"],
    )  # fmt: skip
    return int(status.rsplit(" ", 1)[-1])


class WebhookFanout:
    """Relay stage: stored changes → pending webhook deliveries (people changes only)."""

    name = "webhooks"

    def __init__(self, pool: asyncpg.Pool, clock: Callable[[], datetime]) -> None:
        self._pool = pool
        self._clock = clock

    async def close(self) -> None:
        return None  # deliveries are rows in PostgreSQL; the dispatcher owns the HTTP client

    async def publish(self, changes: Sequence[StoredChange]) -> None:
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                for c in changes:
                    if c.notify:
                        event = cloudevents.to_cloudevent(c)
                        await enqueue(conn, event, escalation=False, now=self._clock())
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            msg = f"could not queue webhook deliveries: {exc}"
            raise PublishError(msg, retryable=True) from exc
