"""`create_app`: the FastAPI application of `banditkit serve` (routes of docs/serve.md).

The app only translates: pydantic checks types (schemas.py), the engine checks meaning and does
the work. Engine calls are synchronous and may wait on the store, so they run in a thread pool
(an anyio CapacityLimiter of `settings.threads`), never on the event loop. Every error, ours or
pydantic's, leaves as `{"error": {"status", "field", "message"}}`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import anyio.to_thread
import pydantic_core
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import TypeAdapter, ValidationError
from starlette.exceptions import HTTPException

import banditkit
from banditkit.serve import schemas
from banditkit.serve.errors import ExperimentNotFound, InvalidInput, ServeError, Unavailable
from banditkit.serve.guard import RequestGuard, error_body
from banditkit.serve.metrics import ServeMetrics
from banditkit.serve.settings import ServeSettings
from banditkit.serve.validation import describe_validation_error

if TYPE_CHECKING:  # the engine module is imported when an app is made, not before
    from banditkit.serve.engine import Engine

log = logging.getLogger("banditkit.serve")
STATIC = Path(__file__).with_name("static")
SETTINGS_ENV = "BANDITKIT_SERVE_SETTINGS_JSON"
T = TypeVar("T")


def create_app(settings: ServeSettings | None = None, *, engine: Engine | None = None) -> FastAPI:
    """The ASGI app. Without `engine`, the app makes one from `settings` and starts and closes
    it in its lifespan (closing writes the final snapshots). With `engine`, the caller owns it:
    start it before serving and close it after (its model and store timings reach /metrics
    only if it was made with `observe=`, e.g. a `ServeMetrics().observe`)."""
    settings = settings or ServeSettings()
    metrics = ServeMetrics(settings.slow_recommend_ms, settings.slow_update_ms)
    owned = engine is None
    if engine is None:
        from banditkit.serve.engine import Engine

        engine = Engine(
            settings.store,
            snapshot_every_events=settings.snapshot_every_events,
            snapshot_every_seconds=settings.snapshot_every_seconds,
            poll_interval=settings.poll_interval,
            keep_snapshots=settings.keep_snapshots,
            seed=settings.seed,
            observe=metrics.observe,
        )
    limiter: list[anyio.CapacityLimiter] = []  # made in the event loop that uses it

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        limiter[:] = [anyio.CapacityLimiter(settings.threads)]
        if owned:
            await anyio.to_thread.run_sync(engine.start)
        try:
            yield
        finally:
            if owned:  # uvicorn turns SIGTERM into this: the final snapshots are written here
                await anyio.to_thread.run_sync(engine.close)

    app = FastAPI(
        title="banditkit serve",
        version=banditkit.__version__,
        lifespan=lifespan,
        # /openapi.json describes the API; no /docs page, whose Swagger UI loads scripts from
        # a CDN into the server's origin.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.engine = engine

    async def run(fn: Callable[..., T], *args: Any) -> T:
        if not limiter:  # mounted in another app whose lifespan did not run ours
            raise Unavailable("the server is not started (its lifespan did not run)")
        return await anyio.to_thread.run_sync(fn, *args, limiter=limiter[0])

    def describe_all() -> list[dict[str, Any]]:
        if not engine.ready():
            return []
        out = []
        for name in engine.names():
            with contextlib.suppress(ExperimentNotFound):  # deleted since names()
                out.append(engine.describe(name))
        return out

    metrics.watch_experiments(describe_all)
    _add_error_handlers(app)

    def check_batch(size: int, field: str) -> None:
        if size > settings.max_batch:
            raise InvalidInput(
                f"at most {settings.max_batch} {field} per call, got {size}", field=field
            )

    @app.post("/v1/experiments", status_code=201, openapi_extra=body_doc(schemas.CREATE))
    async def create_experiment(request: Request) -> Response:
        body = await parse(request, schemas.CREATE)
        params = body.get("params", {})
        out = await run(engine.create, body["name"], body["policy"], body["arms"], params)
        return JSON(out, status_code=201)

    @app.get("/v1/experiments")
    async def list_experiments() -> Response:
        return JSON({"experiments": await run(engine.names)})

    @app.get("/v1/experiments/{name}")
    async def describe_experiment(name: str) -> Response:
        return JSON(await run(engine.describe, name))

    @app.delete("/v1/experiments/{name}")
    async def delete_experiment(name: str) -> Response:
        await run(engine.delete, name)
        return JSON({"deleted": name})

    @app.post("/v1/experiments/{name}/recommend", openapi_extra=body_doc(schemas.RECOMMEND))
    async def recommend(name: str, request: Request) -> Response:
        requests = (await parse(request, schemas.RECOMMEND))["requests"]
        check_batch(len(requests), "requests")
        return JSON({"results": await run(engine.recommend, name, requests)})

    @app.post("/v1/experiments/{name}/rewards", openapi_extra=body_doc(schemas.REWARDS))
    async def rewards(name: str, request: Request) -> Response:
        items = (await parse(request, schemas.REWARDS))["rewards"]
        check_batch(len(items), "rewards")
        return JSON({"accepted": await run(engine.reward, name, items)})

    @app.get("/v1/experiments/{name}/timeline")
    async def timeline(
        name: str,
        seconds: int = Query(600, ge=1, le=86400),
        bucket: int = Query(10, ge=1, le=86400),
    ) -> Response:
        return JSON(await run(engine.timeline, name, seconds, bucket))

    @app.get("/v1/stats")
    async def stats() -> Response:
        out = metrics.stats()
        out["banditkit_version"] = banditkit.__version__
        out["backend"] = banditkit.backend()
        return JSON(out)

    @app.get("/healthz")
    async def healthz() -> Response:
        return JSON({"status": "ok"})

    @app.get("/readyz")
    async def readyz() -> Response:
        if not await run(engine.ready):
            raise Unavailable("the engine is not ready (store unreachable or still loading)")
        return JSON({"status": "ready"})

    @app.get("/metrics")
    async def prometheus() -> Response:
        # In a thread: the experiment collector reads the engine (and maybe the store).
        text = await run(generate_latest, metrics.registry)
        return Response(text, media_type=CONTENT_TYPE_LATEST)

    @app.get("/", include_in_schema=False)
    async def dashboard() -> Response:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC, check_dir=False), name="static")
    document_bodies(app, [schemas.CREATE, schemas.RECOMMEND, schemas.REWARDS])
    # Outermost: counts and times every request, including those it refuses (401, 413).
    app.add_middleware(RequestGuard, settings=settings, metrics=metrics)
    return app


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServeError)
    async def serve_error(request: Request, exc: ServeError) -> Response:
        return JSON(error_body(exc.status, exc.field, exc.message), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        field, message = describe_validation_error(exc.errors())
        return JSON(error_body(422, field, message), status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        return JSON(
            error_body(exc.status_code, None, str(exc.detail)),
            status_code=exc.status_code,
            headers=exc.headers,
        )

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> Response:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return JSON(error_body(500, None, "internal server error"), status_code=500)


class JSON(Response):
    """A JSON response serialised by pydantic-core (several times faster than json.dumps on a
    batch of results)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return pydantic_core.to_json(content)


def is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


async def parse(request: Request, adapter: TypeAdapter[T]) -> T:
    """The request's body checked by `adapter`, or InvalidInput naming the field at fault."""
    # Only bodies that say they are JSON: a web page cannot make a browser send that to a
    # server on the loopback without a CORS preflight, which this server does not answer.
    if not is_json(request.headers.get("content-type", "")):
        raise InvalidInput(
            "the body must be a JSON object sent with Content-Type: application/json",
            field="body",
        )
    try:
        return adapter.validate_json(await request.body())
    except ValidationError as exc:
        field, message = describe_validation_error(exc.errors(include_url=False))
        raise InvalidInput(message, field=field or "body") from None


REF = "#/components/schemas/{model}"


def body_doc(adapter: TypeAdapter[Any]) -> dict[str, Any]:
    """The OpenAPI description of a body the route parses itself (for /docs); the schemas it
    refers to are added by `document_bodies`."""
    schema = adapter.json_schema(ref_template=REF)
    schema.pop("$defs", None)
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def document_bodies(app: FastAPI, adapters: list[TypeAdapter[Any]]) -> None:
    """Put the schemas the bodies refer to into the OpenAPI document's components."""
    make = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = make()
            components = doc.setdefault("components", {}).setdefault("schemas", {})
            for adapter in adapters:
                components.update(adapter.json_schema(ref_template=REF).get("$defs", {}))
        return app.openapi_schema or doc

    app.openapi = openapi  # type: ignore[method-assign]


def app_from_env() -> FastAPI:
    """The app of a uvicorn worker process (`--workers N`): uvicorn imports this factory by
    name in each worker, and the settings come from the environment the CLI set."""
    return create_app(ServeSettings.model_validate(json.loads(os.environ[SETTINGS_ENV])))
