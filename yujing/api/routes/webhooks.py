"""`/webhooks`: subscriptions (admin), and their deliveries with retry and dead-letter state."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field, field_validator

from yujing.alerts import destinations, webhooks
from yujing.alerts.settings import AlertSettings
from yujing.alerts.webhooks import SecretBox, Subscription
from yujing.api.auth import Principal
from yujing.api.deps import Admin, Pool, Store
from yujing.api.problems import Problem
from yujing.api.schemas import DeliveryPage, WebhookCreated, WebhookPage, WebhookPublic
from yujing.levels import Level
from yujing.names import is_identifier

router = APIRouter(prefix="/webhooks", tags=["webhooks"])


class WebhookCreate(BaseModel):
    url: str = Field(pattern=r"^https?://", max_length=2000)
    secret: str | None = Field(
        default=None, min_length=16, max_length=200,
        description="HMAC-SHA256 key; generated and shown once when omitted",
    )  # fmt: skip
    enterprises: list[str] = Field(default_factory=lambda: ["*"], min_length=1)
    min_level: Literal["blue", "yellow", "orange", "red"] = "blue"
    transitions: bool = True
    escalations: bool = Field(default=False, description="an escalation target")

    @field_validator("enterprises")
    @classmethod
    def _names(cls, names: list[str]) -> list[str]:
        for name in names:
            if name != "*" and not is_identifier(name):
                raise ValueError(f"{name!r} is not an enterprise identifier")
        return names


def _visible(principal: Principal, sub: Subscription) -> bool:
    if principal.enterprises is None:
        return True
    return sub.enterprises is not None and all(principal.can_see(e) for e in sub.enterprises)


async def _owned(pool: Pool, principal: Principal, sub_id: str) -> Subscription:
    sub = await webhooks.subscription(pool, sub_id)
    if sub is None or not _visible(principal, sub):
        raise Problem(404, "Not found", f"no webhook subscription {sub_id}")
    return sub


@router.post("", status_code=201, response_model=WebhookCreated)
async def create(body: WebhookCreate, principal: Admin, pool: Pool, store: Store) -> dict[str, Any]:
    enterprises = None if "*" in body.enterprises else sorted(set(body.enterprises))
    if principal.enterprises is not None and (
        enterprises is None or not set(enterprises) <= principal.enterprises
    ):
        raise Problem(403, "Forbidden", "a subscription may name only enterprises in your scope")
    await _check_destination(body.url, store.settings)
    sub = await webhooks.subscribe(
        pool, url=body.url, enterprises=enterprises, min_level=Level.parse(body.min_level),
        transitions=body.transitions, escalations=body.escalations, who=principal.name,
        now=store.now(), secret=body.secret, box=SecretBox.from_settings(store.settings),
    )  # fmt: skip
    return {**sub.public(), "secret": sub.secret}


async def _check_destination(url: str, settings: AlertSettings) -> None:
    """The destination policy, now and again at every delivery; a name that does not
    resolve yet is accepted (its deliveries retry), one that resolves inside is not."""
    try:
        await destinations.resolve(url, settings.webhook_allow)
    except destinations.Refused as exc:
        raise Problem(422, "Invalid request", f"webhook destination refused: {exc}") from None
    except OSError:
        pass


@router.get("", response_model=WebhookPage)
async def list_subscriptions(principal: Admin, pool: Pool) -> dict[str, Any]:
    subs = await webhooks.subscriptions(pool)
    return {"items": [s.public() for s in subs if _visible(principal, s)]}


@router.get("/{sub_id}", response_model=WebhookPublic)
async def get_subscription(sub_id: str, principal: Admin, pool: Pool) -> dict[str, Any]:
    return (await _owned(pool, principal, sub_id)).public()


@router.delete("/{sub_id}", status_code=204)
async def delete_subscription(sub_id: str, principal: Admin, pool: Pool, store: Store) -> Response:
    await _owned(pool, principal, sub_id)
    await webhooks.unsubscribe(pool, sub_id, store.now())
    return Response(status_code=204)


@router.get("/{sub_id}/deliveries", response_model=DeliveryPage)
async def list_deliveries(
    sub_id: str,
    principal: Admin,
    pool: Pool,
    state: Literal["pending", "delivered", "dead"] | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    await _owned(pool, principal, sub_id)
    return {"items": await webhooks.deliveries(pool, sub_id, state, limit)}
