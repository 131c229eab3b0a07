"""Request-level input policy, before any route: a body size limit (413), and one rule for
every text a request carries — path, query and JSON body — no NUL, no lone surrogate,
bounded length (422). Routes then never hand PostgreSQL a string it refuses.

The body limit is one for every route, save the few paths the app names with their own
(an evidence upload takes files larger than any JSON body)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import parse_qsl

import asyncpg
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from yujing.api.problems import problem_response

MAX_TEXT = 10_000  # characters of one JSON string (a disposal note, a rule's name)
MAX_QUERY_TEXT = 2_000  # characters of one path or query value
MAX_MEMBERS = 10_000  # members of one JSON object or array (device tags, rule overrides)
MAX_DEPTH = 32
INT64 = 2**63 - 1

# A path (a regular expression the whole path must match) and the body size it may have.
BodyAllowance = tuple[str, int]


class BadText(ValueError):
    pass


def check_text(text: str, limit: int = MAX_TEXT) -> None:
    """The one text rule of the API."""
    if "\x00" in text:
        raise BadText("text must not contain NUL")
    if len(text) > limit:
        raise BadText(f"a text of {len(text)} characters, at most {limit}")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise BadText("text holds a lone UTF-16 surrogate") from None


def _check_json(node: Any, depth: int = 0) -> None:
    if isinstance(node, str):
        check_text(node)
    elif isinstance(node, int) and not isinstance(node, bool):
        if not -INT64 - 1 <= node <= INT64:
            raise BadText("integers must fit in 64 bits")
    elif isinstance(node, dict | list):
        if depth >= MAX_DEPTH:
            raise BadText(f"nested deeper than {MAX_DEPTH}")
        if len(node) > MAX_MEMBERS:
            raise BadText(f"{len(node)} members in one object or array, at most {MAX_MEMBERS}")
        items: Iterable[Any] = node
        if isinstance(node, dict):
            for key in node:
                check_text(key, MAX_QUERY_TEXT)
            items = node.values()
        for item in items:
            _check_json(item, depth + 1)


class RequestLimits:
    """Pure ASGI middleware (no BaseHTTPMiddleware: SSE responses stream through it)."""

    def __init__(
        self, app: ASGIApp, max_body_bytes: int, allowances: Sequence[BodyAllowance] = ()
    ) -> None:
        self.app = app
        self.max_body = max_body_bytes
        self.allowances = [(re.compile(path), size) for path, size in allowances]

    def body_limit(self, path: str) -> int:
        """The general limit, or a larger one the app allows on this path."""
        for pattern, size in self.allowances:
            if pattern.fullmatch(path):
                return max(size, self.max_body)
        return self.max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            check_text(scope["path"], MAX_QUERY_TEXT)
            query = scope.get("query_string", b"").decode("latin-1")
            for key, value in parse_qsl(query, keep_blank_values=True):
                check_text(key, MAX_QUERY_TEXT)
                check_text(value, MAX_QUERY_TEXT)
        except BadText as exc:
            await _reject(scope, receive, send, 422, str(exc))
            return
        limit = self.body_limit(scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _reject(scope, receive, send, 413, _too_large(limit))
            return
        if scope["method"] in ("GET", "HEAD", "DELETE", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        body = await _body(receive, limit)
        if body is None:
            await _reject(scope, receive, send, 413, _too_large(limit))
            return
        if body and _is_json(scope):
            try:
                _check_json(json.loads(body))
            except BadText as exc:
                await _reject(scope, receive, send, 422, str(exc))
                return
            except (ValueError, RecursionError):
                pass  # not JSON: the route's own validation answers with a 422

        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _too_large(limit: int) -> str:
    return f"the request body may have at most {limit} bytes"


async def _body(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None once it passes the limit (read no further)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


def _is_json(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-type":
            return b"json" in value.lower()
    return True  # FastAPI reads a body without a content type as JSON too


async def _reject(scope: Scope, receive: Receive, send: Send, status: int, detail: str) -> None:
    title = "Request too large" if status == 413 else "Invalid request"
    response = problem_response(status, title, detail, _printable(scope["path"]))
    await response(scope, receive, send)


def _printable(path: str) -> str:
    return path.encode("utf-8", "backslashreplace").decode().replace("\x00", "\\x00")[:200]


def install(app: FastAPI, max_body_bytes: int, allowances: Sequence[BodyAllowance] = ()) -> None:
    """`allowances`: (path regex, bytes) for the paths whose bodies may pass
    `max_body_bytes` (never below it); every other path keeps `max_body_bytes`."""
    app.add_middleware(RequestLimits, max_body_bytes=max_body_bytes, allowances=allowances)

    # A number or text PostgreSQL refuses (an id beyond int64 in a cursor, say) is the
    # caller's mistake: 422, not the 500 of an unexpected error.
    async def _data_error(request: Request, exc: Exception) -> JSONResponse:
        return problem_response(
            422, "Invalid request", "a value is out of range for its field", request.url.path
        )

    app.add_exception_handler(asyncpg.DataError, _data_error)
    app.add_exception_handler(asyncpg.exceptions._base.DataError, _data_error)
