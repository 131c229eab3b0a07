"""The FastAPI application: routers under `/api/v1`, health, metrics, the offline API docs
and the screen (the built front-end in `web/dist`, else the plain alarm board)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib import resources
from pathlib import Path

import asyncpg
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from yujing import __version__
from yujing.alerts.store import AlertStore
from yujing.api import problems
from yujing.api.problems import problem_response
from yujing.api.routes import (
    alerts,
    asyncapi,
    deadletters,
    device_batches,
    devices,
    enterprises,
    maintenance,
    picture,
    rules,
    sites,
    tokens,
    webhooks,
)
from yujing.api.stream import ChangeHub
from yujing.config import Settings
from yujing.ingest.bus import Bus
from yujing.picture.presence import PresenceFigures

Check = Callable[[], Awaitable[bool]]


def create_app(
    settings: Settings,
    pool: asyncpg.Pool,
    bus: Bus,
    store: AlertStore,
    hub: ChangeHub,
    checks: dict[str, Check] | None = None,
) -> FastAPI:
    app = FastAPI(
        title="yujing 预警",
        version=__version__,
        description="Graded risk alerts from work-safety sensor streams.",
        docs_url=None,  # served below from the swagger-ui-py wheel: no CDN
        redoc_url=None,
    )
    app.state.settings, app.state.pool, app.state.bus = settings, pool, bus
    app.state.store, app.state.hub = store, hub
    app.state.presence = PresenceFigures(pool, store.now)
    problems.install(app)
    for module in (alerts, rules, device_batches, devices, enterprises, sites, deadletters,
                   tokens, webhooks, maintenance, picture, asyncapi):  # fmt: skip
        app.include_router(module.router, prefix="/api/v1")

    async def database() -> bool:
        async with pool.acquire() as conn:
            return bool(await conn.fetchval("SELECT true"))

    all_checks: dict[str, Check] = {"database": database, **(checks or {})}

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], response_model=None)
    async def readyz() -> dict[str, object] | Response:
        results: dict[str, bool] = {}
        for name, check in all_checks.items():
            try:
                results[name] = await check()
            except Exception:
                results[name] = False
        if all(results.values()):
            return {"status": "ready", "checks": results}
        failing = ", ".join(n for n, ok in results.items() if not ok)
        return problem_response(503, "Unavailable", f"not reachable: {failing}", checks=results)

    @app.get("/metrics", tags=["health"])
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    _docs(app)
    _screen(app, web_dist())
    return app


def web_dist() -> Path | None:
    """`web/dist` of the source checkout this package runs from (`make run` builds it); None
    when there is none (an installed wheel: the plain board is served instead)."""
    dist = Path(__file__).resolve().parents[2] / "web" / "dist"
    return dist if (dist / "index.html").is_file() else None


def _docs(app: FastAPI) -> None:
    static = resources.files("swagger_ui").joinpath("static")
    app.mount("/docs/static", StaticFiles(directory=str(static)), name="swagger-ui")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} API",
            swagger_js_url="/docs/static/swagger-ui-bundle.js",
            swagger_css_url="/docs/static/swagger-ui.css",
            swagger_favicon_url="/docs/static/favicon-32x32.png",
        )


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
