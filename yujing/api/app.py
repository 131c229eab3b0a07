"""The FastAPI application: routers under `/api/v1`, health, metrics, the offline API docs
and the screen (the built front-end in `web/dist`, else the plain alarm board)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib import resources
from pathlib import Path

import asyncpg
from fastapi import Depends, FastAPI
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from yujing import __version__
from yujing.alerts.store import AlertStore
from yujing.api import limits, problems
from yujing.api.deps import Viewer
from yujing.api.problems import Problem, problem_response
from yujing.api.query import known_query
from yujing.api.routes import (
    alerts,
    asyncapi,
    deadletters,
    device_batches,
    devices,
    enterprises,
    hazards,
    maintenance,
    picture,
    rules,
    sites,
    tokens,
    webhooks,
)
from yujing.api.schemas import Health, Readiness
from yujing.api.stream import ChangeHub
from yujing.config import Settings
from yujing.hazards.settings import HazardSettings
from yujing.ingest.bus import Bus
from yujing.picture.presence import PresenceFigures
from yujing.pipeline.health import Health as StageHealth
from yujing.pipeline.health import StageState

Check = Callable[[], Awaitable[bool]]


def create_app(
    settings: Settings,
    pool: asyncpg.Pool,
    bus: Bus,
    store: AlertStore,
    hub: ChangeHub,
    checks: dict[str, Check] | None = None,
    *,
    health: StageHealth | None = None,
    hazard_settings: HazardSettings | None = None,
) -> FastAPI:
    """`health`: the stages of this process, whose state `/readyz` reports (none in an app
    made by a test). `hazard_settings`: read from the environment when not handed in."""
    hazard_settings = hazard_settings or HazardSettings()
    # Swagger UI and ReDoc from files in the package: /docs works without the internet.
    app = FastAPIOffline(
        title="yujing 预警",
        version=__version__,
        description="Graded risk alerts from work-safety sensor streams.",
    )
    app.state.settings, app.state.pool, app.state.bus = settings, pool, bus
    app.state.store, app.state.hub = store, hub
    app.state.hazard_settings = hazard_settings
    app.state.presence = PresenceFigures(pool, store.now)
    problems.install(app)
    allowances = hazards.body_allowances("/api/v1", hazard_settings)
    limits.install(app, settings.http_max_body_bytes, allowances)
    for module in (alerts, rules, device_batches, devices, enterprises, sites, deadletters,
                   tokens, webhooks, maintenance, picture, asyncapi, hazards):  # fmt: skip
        # One mechanism for every route: a query parameter it does not declare is refused.
        app.include_router(module.router, prefix="/api/v1", dependencies=[Depends(known_query)])

    async def database() -> bool:
        async with pool.acquire() as conn:
            return bool(await conn.fetchval("SELECT true"))

    all_checks: dict[str, Check] = {"database": database, **(checks or {})}
    stages = health or StageHealth(lambda: 0.0)

    @app.get("/healthz", tags=["health"], response_model=Health)
    async def healthz() -> dict[str, str]:
        """The process answers (liveness)."""
        return {"status": "ok"}

    @app.get(
        "/readyz", tags=["health"], response_model=Readiness,
        responses={503: {"description": "a dependency is not reachable (problem+json)"}},
    )  # fmt: skip
    async def readyz() -> dict[str, object] | Response:
        """Every server this process uses answers: the database, the bus and, where ingest
        or the alerts stage run, the MQTT broker."""
        results: dict[str, bool] = {}
        for name, check in all_checks.items():
            try:
                results[name] = await check()
            except Exception:
                results[name] = False
        # A stage the supervisor is restarting makes the process unready (name `stage:…`).
        for name, report in stages.stages.items():
            results[f"stage:{name}"] = report.state is not StageState.RESTARTING
        reports = stages.public()
        if all(results.values()):
            return {"status": "ready", "checks": results, "stages": reports}
        failing = ", ".join(n for n, ok in results.items() if not ok)
        return problem_response(
            503, "Unavailable", f"not ready: {failing}", checks=results, stages=reports
        )

    @app.get(
        "/metrics", tags=["health"], response_class=Response,
        responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus"}},
    )  # fmt: skip
    async def metrics(principal: Viewer) -> Response:
        # Labelled by enterprise: only a token of global scope (the scraper's) reads them.
        if principal.enterprises is not None:
            raise Problem(403, "Forbidden", "/metrics needs a token scoped to every enterprise")
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    _screen(app, web_dist())
    return app


def web_dist() -> Path | None:
    """`web/dist` of the source checkout this package runs from (`make run` builds it); None
    when there is none (an installed wheel: the plain board is served instead)."""
    dist = Path(__file__).resolve().parents[2] / "web" / "dist"
    return dist if (dist / "index.html").is_file() else None


def _screen(app: FastAPI, dist: Path | None) -> None:
    """The wall display at `/` and the console at `/console` (one page, routed in the
    browser); index.html is never cached so a new build shows at the next reload."""
    if dist is None:
        board = resources.files("yujing.api").joinpath("static/board.html").read_text("utf-8")

        @app.get("/", response_class=HTMLResponse, include_in_schema=False)
        async def alarm_board() -> HTMLResponse:
            return HTMLResponse(board)

        return
    app.mount("/assets", StaticFiles(directory=dist / "assets"), name="screen-assets")
    index = dist / "index.html"

    @app.get("/", include_in_schema=False)
    @app.get("/console", include_in_schema=False)
    async def screen() -> FileResponse:
        return FileResponse(index, headers={"Cache-Control": "no-cache"})
