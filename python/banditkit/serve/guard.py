"""`RequestGuard`: the ASGI middleware in front of every route.

It times and counts each request (by route template, so that the labels stay few), refuses
writes without the bearer token (401) and bodies over the size limit (413) before the app reads
them, so an unauthenticated or oversized request costs no parsing.
"""

from __future__ import annotations

import hmac
import json
import time
from typing import Any

from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from banditkit.serve.metrics import ServeMetrics
from banditkit.serve.settings import ServeSettings

WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def error_body(status: int, field: str | None, message: str) -> dict[str, Any]:
    return {"error": {"status": status, "field": field, "message": message}}


async def send_error(
    send: Send, status: int, field: str | None, message: str, headers: list[tuple[bytes, bytes]]
) -> None:
    body = json.dumps(error_body(status, field, message)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RequestGuard:
    def __init__(self, app: ASGIApp, settings: ServeSettings, metrics: ServeMetrics) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body = settings.max_body_bytes
        self.token = settings.token.encode("utf-8") if settings.token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # if the app fails before it answers

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self._guarded(scope, receive, send_and_note)
        finally:
            self.metrics.observe_request(
                self._endpoint(scope), scope["method"], status, time.perf_counter() - started
            )

    async def _guarded(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] not in WRITES:
            await self.app(scope, receive, send)
            return
        if self.token is not None and not self._authorized(scope):
            await send_error(
                send,
                401,
                "Authorization",
                "writes need the header Authorization: Bearer <token>",
                [(b"www-authenticate", b'Bearer realm="banditkit"')],
            )
            return
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            await self._too_large(send)
            return
        # Read the body here (the app reads it whole anyway) so that a chunked upload without
        # Content-Length is cut off at the limit too, then hand it to the app in one message.
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                await self._too_large(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _authorized(self, scope: Scope) -> bool:
        value = _header(scope, b"authorization")
        if value is None:
            return False
        scheme, _, credentials = value.partition(" ")
        # Headers arrive as bytes, decoded as latin-1 above: encoding back gives the bytes the
        # client sent (a UTF-8 token compares as UTF-8). compare_digest: the time taken does not
        # tell how much of a guess was right.
        return scheme.lower() == "bearer" and hmac.compare_digest(
            credentials.strip().encode("latin-1"), self.token or b""
        )

    async def _too_large(self, send: Send) -> None:
        await send_error(
            send,
            413,
            "body",
            f"the request body is larger than the limit of {self.max_body} bytes",
            [(b"connection", b"close")],
        )

    def _endpoint(self, scope: Scope) -> str:
        route = scope.get("route")
        if route is None:  # refused before routing (401, 413): find the route it was meant for
            app = scope.get("app")
            router = getattr(app, "router", None)
            for candidate in getattr(router, "routes", ()):
                if candidate.matches(scope)[0] is Match.FULL:
                    route = candidate
                    break
        path = getattr(route, "path", None)
        return f"{scope['method']} {path}" if path is not None else "unmatched"


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None
