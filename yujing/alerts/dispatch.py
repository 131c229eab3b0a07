"""Sends pending webhook deliveries: signed, retried with exponential backoff, and
dead-lettered with the last error after the last attempt (or at once when the receiver
says the request itself is wrong, a 4xx other than 408/429).

Deliveries are claimed with `FOR UPDATE SKIP LOCKED` and a lease, so any number of
`alerts` processes can dispatch without sending one twice, and a crashed dispatcher's
claims come due again. Order is not guaranteed across deliveries: every body carries the
alert's `seq` for receivers that need it.

Each attempt resolves the URL's host, checks every address against the destination policy
(`destinations`), and connects to the checked address; the receiver's response body is
never kept (it could be an internal page read back through the deliveries API).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg
import httpx
from cryptography.fernet import InvalidToken
from prometheus_client import Counter

from yujing.alerts import destinations
from yujing.alerts.publishers import PublishError
from yujing.alerts.settings import AlertSettings
from yujing.alerts.webhooks import SecretBox, seal_plaintext
from yujing.pipeline.health import Health
from yujing.pipeline.periodic import periodic

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Yujing-Signature"
OUTCOMES = Counter("yj_webhook_attempts_total", "Webhook delivery attempts", ["outcome"])


def sign(secret: str, body: bytes) -> str:
    """`sha256=` + hex HMAC-SHA256 of the exact body bytes with the subscription's secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class DeliveryError(PublishError):
    def __init__(self, message: str, *, retryable: bool, status: int | None = None) -> None:
        super().__init__(message, retryable=retryable)
        self.status = status


@dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    attempts: int
    event_id: str
    event_type: str
    body: bytes
    url: str
    secret: str


_CLAIM = """
UPDATE webhook_deliveries d SET attempts = d.attempts + 1, next_attempt_at = $2
FROM webhook_subscriptions s
WHERE s.id = d.subscription_id AND d.id IN (
    SELECT id FROM webhook_deliveries WHERE state = 'pending' AND next_attempt_at <= $1
    ORDER BY next_attempt_at, id LIMIT $3 FOR UPDATE SKIP LOCKED)
RETURNING d.id, d.attempts, d.event_id, d.event_type, d.body, s.url, s.secret
"""


class WebhookDispatcher:
    def __init__(
        self,
        pool: asyncpg.Pool,
        clock: Callable[[], datetime],
        settings: AlertSettings | None = None,
        batch: int = 50,
    ) -> None:
        self._pool = pool
        self._clock = clock
        self._s = settings or AlertSettings()
        self._batch = batch
        self._box = SecretBox.from_settings(self._s)

    async def run(self, stop: asyncio.Event, health: Health | None = None) -> None:
        sealed = await seal_plaintext(self._pool, self._box)
        if sealed:
            log.info("encrypted %d webhook secrets stored in clear", sealed)
        async with httpx.AsyncClient(timeout=self._s.webhook_timeout_s) as client:

            async def once() -> bool:
                # A full batch: more may be due, so the next round starts at once.
                return await self.deliver_due(client) >= self._batch

            await periodic("webhooks", once, self._s.webhook_poll_s, stop, health=health)

    async def deliver_due(self, client: httpx.AsyncClient) -> int:
        """One round: claims what is due now, sends it, records each outcome."""
        now = self._clock()
        lease = now + timedelta(seconds=self._s.webhook_timeout_s + 30)
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(_CLAIM, now, lease, self._batch)
        claimed = [Claimed(**dict(r)) for r in rows]
        await asyncio.gather(*(self._attempt(client, d) for d in claimed))
        return len(claimed)

    async def _attempt(self, client: httpx.AsyncClient, d: Claimed) -> None:
        try:
            status = await _post(client, d, self._box, self._s)
        except DeliveryError as exc:
            await self._failed(d, exc)
            return
        OUTCOMES.labels("delivered").inc()
        async with self._pool.acquire() as conn:
            await conn.execute(
                "UPDATE webhook_deliveries SET state = 'delivered', delivered_at = $2,"
                " last_status = $3, last_error = NULL WHERE id = $1",
                d.id, self._clock(), status,
            )  # fmt: skip

    async def _failed(self, d: Claimed, exc: DeliveryError) -> None:
        # The retry decision is here, not in _post: it knows only what went wrong.
        dead = not exc.retryable or d.attempts >= self._s.webhook_max_attempts
        OUTCOMES.labels("dead" if dead else "retry").inc()
        delay = min(
            self._s.webhook_backoff_s * 2 ** (d.attempts - 1), self._s.webhook_backoff_max_s
        )
        log.warning("webhook %s attempt %d failed (dead=%s): %s", d.url, d.attempts, dead, exc)
        async with self._pool.acquire() as conn:
            await conn.execute(
                "UPDATE webhook_deliveries SET state = $2, last_error = $3, last_status = $4,"
                " next_attempt_at = $5 WHERE id = $1",
                d.id, "dead" if dead else "pending", str(exc), exc.status,
                self._clock() + timedelta(seconds=delay),
            )  # fmt: skip


async def _post(client: httpx.AsyncClient, d: Claimed, box: SecretBox, s: AlertSettings) -> int:
    try:
        target = await destinations.resolve(d.url, s.webhook_allow)
    except destinations.Refused as exc:
        raise DeliveryError(f"destination refused: {exc}", retryable=False) from exc
    except OSError as exc:
        raise DeliveryError(str(exc), retryable=True) from exc
    try:
        secret = box.open(d.secret)
    except InvalidToken as exc:
        # Retried: an operator who fixes YJ_WEBHOOK_SECRET_KEYS gets the delivery through.
        msg = "the secret cannot be decrypted with YJ_WEBHOOK_SECRET_KEYS"
        raise DeliveryError(msg, retryable=True) from exc
    headers = {
        "Host": target.host_header,
        "Content-Type": "application/cloudevents+json; charset=utf-8",
        SIGNATURE_HEADER: sign(secret, d.body),
        "X-Yujing-Delivery": str(d.id),
        "X-Yujing-Attempt": str(d.attempts),
        "X-Yujing-Event": d.event_type,
    }
    try:
        # To the checked address; TLS still verifies the certificate against the name.
        r = await client.post(
            target.url, content=d.body, headers=headers,
            extensions={"sni_hostname": target.host},
        )  # fmt: skip
    except httpx.HTTPError as exc:
        raise DeliveryError(f"{type(exc).__name__}: {exc}", retryable=True) from exc
    if r.is_success:
        return r.status_code
    retryable = r.status_code >= 500 or r.status_code in (408, 429)
    # The status only: the body could be an internal page, read back through the API.
    raise DeliveryError(f"HTTP {r.status_code}", retryable=retryable, status=r.status_code)
