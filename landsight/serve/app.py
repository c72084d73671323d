"""`create_app`: the FastAPI application around models loaded once (routers, limits, errors, metrics).

Usable from Python (`uvicorn.run(create_app(config))`) and from any ASGI server (`create_app_from_env` with
`--factory`, reading the settings `landsight serve` puts in LANDSIGHT_SERVE_CONFIG).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hmac
import logging
import os
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException

from landsight import __version__
from landsight.errors import LandsightError
from landsight.serve.batching import DynamicBatcher
from landsight.serve.config import ServeConfig
from landsight.serve.errors import NotFound, Overloaded, RequestTimeout, Unauthorized
from landsight.serve.guard import Guard, error_body
from landsight.serve.inference import FORMATS, Job, predict_body
from landsight.serve.metrics import CONTENT_TYPE, Metrics
from landsight.serve.models import ServedModel, load_model
from landsight.serve.page import map_page, mount_assets
from landsight.serve.tiles import TileSource
from landsight.serve.tileservice import TileService

log = logging.getLogger(__name__)

ENV_CONFIG = "LANDSIGHT_SERVE_CONFIG"
"""Environment variable holding `ServeConfig.to_json()` for `create_app_from_env`."""

_bearer = HTTPBearer(auto_error=False, description="Required on every /v1 route when the server has a token.")


@dataclasses.dataclass
class State:
    """What the routes share: settings, models, their batchers, tiles, metrics, the worker threads."""

    config: ServeConfig
    models: dict[str, ServedModel]
    tiles: TileService
    metrics: Metrics
    executor: ThreadPoolExecutor
    batchers: dict[str, DynamicBatcher] = dataclasses.field(default_factory=dict)
    inflight: int = 0
    ready: bool = False

    def model(self, name: str) -> ServedModel:
        """The served model `name`, or NotFound listing them."""
        if name not in self.models:
            raise NotFound(f"unknown model {name!r}; this server has {sorted(self.models)} (GET /v1/models)")
        return self.models[name]


def load_models(config: ServeConfig) -> dict[str, ServedModel]:
    """Every configured model, loaded once."""
    return {name: load_model(name, path, config.backend, config.device) for name, path in config.models.items()}


def create_app(config: ServeConfig, models: dict[str, ServedModel] | None = None) -> FastAPI:
    """The application; `models` may be given already loaded (e.g. stubs in tests), else they are loaded now."""
    metrics = Metrics()
    sources = {name: TileSource.open(name, path) for name, path in config.sources.items()}
    tiles = TileService(sources, config.window, config.overlap, config.tile_cache,
                        on_cache=lambda result: metrics.tile_cache.labels(result).inc())
    state = State(config, models if models is not None else load_models(config), tiles, metrics,
                  ThreadPoolExecutor(max_workers=config.limits.max_requests, thread_name_prefix="landsight-request"))

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        for name, model in state.models.items():
            state.batchers[name] = DynamicBatcher(
                model.infer, config.batching, on_batch=metrics.batch_size.labels(name).observe,
                on_queue=metrics.queue_depth.labels(name).set)
        state.ready = True
        yield
        state.ready = False
        await asyncio.gather(*(b.close() for b in state.batchers.values()))
        state.executor.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="landsight", version=__version__, lifespan=lifespan,
                  description="Land-use models served over HTTP: predictions, seamless map tiles, metadata.")
    app.state.landsight = state
    app.add_middleware(Guard, max_body_bytes=config.limits.max_body_bytes, metrics=metrics)
    _add_error_handlers(app)
    app.include_router(_service_routes(state))
    app.include_router(_v1_routes(state))
    mount_assets(app)
    return app


def create_app_from_env() -> FastAPI:
    """`create_app` with the settings in LANDSIGHT_SERVE_CONFIG (for uvicorn workers and other ASGI servers)."""
    text = os.environ.get(ENV_CONFIG)
    if not text:
        raise LandsightError(f"{ENV_CONFIG} is not set; start the server with `landsight serve` or call create_app")
    return create_app(ServeConfig.from_json(text))


def _add_error_handlers(app: FastAPI) -> None:
    async def request_error(request: Request, exc: Exception) -> JSONResponse:
        status = getattr(exc, "status", 422)  # other LandsightErrors: the input did not fit (bands, corrupt data)
        headers = {}
        if isinstance(exc, Overloaded):
            headers["Retry-After"] = str(exc.retry_after)
        if isinstance(exc, Unauthorized):
            headers["WWW-Authenticate"] = "Bearer"
        return JSONResponse(error_body(exc, status), status, headers=headers)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        return JSONResponse({"error": "HTTPException", "status": exc.status_code, "detail": exc.detail},
                            exc.status_code, headers=exc.headers)

    async def validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return JSONResponse({"error": "RequestValidationError", "status": 422, "detail": str(exc.errors())}, 422)

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s", request.url.path)
        return JSONResponse({"error": "InternalError", "status": 500, "detail": "internal error; see the server log"},
                            500)

    app.add_exception_handler(LandsightError, request_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, unexpected)


def _service_routes(state: State) -> APIRouter:
    router = APIRouter()

    @router.get("/healthz", summary="Liveness: the process answers.")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz", summary="Readiness: models loaded and batchers running (503 otherwise).",
                responses={503: {"description": "Not ready"}})
    async def readyz() -> JSONResponse:
        body = {"status": "ready" if state.ready else "starting", "models": sorted(state.models)}
        return JSONResponse(body, 200 if state.ready else 503)

    @router.get("/metrics", summary="Prometheus metrics (text format).", response_class=Response)
    async def metrics() -> Response:
        return Response(state.metrics.render(), media_type=CONTENT_TYPE)

    @router.get("/", summary="Map page: source imagery and predicted tiles.", response_class=HTMLResponse)
    async def page() -> HTMLResponse:
        return HTMLResponse(map_page())

    return router


def _v1_routes(state: State) -> APIRouter:
    async def authorize(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> None:
        token = state.config.token
        if token is None:
            return
        given = credentials.credentials if credentials is not None else ""
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise Unauthorized("missing or wrong bearer token; send 'Authorization: Bearer TOKEN'")

    router = APIRouter(prefix="/v1", dependencies=[Depends(authorize)], responses=_ERRORS)

    @router.get("/models", summary="The served models (metadata without weights).")
    async def list_models() -> list[dict[str, Any]]:
        return [m.metadata() for m in state.models.values()]

    @router.get("/models/{name}", summary="One model's metadata: bands, classes, normalization, metrics, sha256.")
    async def get_model(name: str) -> dict[str, Any]:
        return state.model(name).metadata()

    @router.post("/models/{name}/predict", summary="Predict an image sent as the body.",
                 openapi_extra=_PREDICT_BODY, response_class=Response, responses=_PREDICT_ANSWERS)
    async def predict(name: str, request: Request,
                      format: Annotated[str | None, Query(description="tiff, png, probabilities or geojson "
                                                                      "(default: from Accept)")] = None) -> Response:
        model = state.model(name)
        body = await request.body()
        answer = await _run(state, model, body, request.headers.get("content-type"), format,
                            request.headers.get("accept"))
        return Response(answer.body, media_type=answer.media_type)

    @router.get("/sources", summary="Configured imagery sources: bounds (WGS84) and zoom range.")
    async def list_sources() -> list[dict[str, object]]:
        return [s.summary() for s in state.tiles.sources.values()]

    @router.get("/sources/{source}/tiles/{z}/{x}/{y}.png", summary="An imagery tile of a source.",
                response_class=Response, responses={200: {"content": {"image/png": {}}}})
    async def imagery_tile(source: str, z: int, x: int, y: int) -> Response:
        return Response(await state.tiles.imagery(source, z, x, y), media_type="image/png")

    @router.get("/models/{name}/tiles/{z}/{x}/{y}.png", response_class=Response,
                summary="A predicted XYZ tile over a source (palette PNG; pixel values are class values).",
                responses={200: {"content": {"image/png": {}}}})
    async def predicted_tile(name: str, z: int, x: int, y: int,
                             source: Annotated[str, Query(description="a configured source name")]) -> Response:
        model = state.model(name)
        png = await _with_deadline(state, state.tiles.predicted(model, state.batchers[name], source, z, x, y))
        return Response(png, media_type="image/png", headers={"Cache-Control": "max-age=3600"})

    return router


async def _run(state: State, model: ServedModel, body: bytes, content_type: str | None, fmt: str | None,
               accept: str | None) -> Any:
    """Predict one body in a worker thread; refuse at once (503) when every worker is busy."""
    limits = state.config.limits
    if state.inflight >= limits.max_requests:
        raise Overloaded(f"{state.inflight} requests are being answered (the limit is {limits.max_requests}); "
                         "retry later")
    state.inflight += 1
    try:
        loop = asyncio.get_running_loop()
        job = Job(model, state.batchers[model.name], loop, state.config.window, state.config.overlap, limits,
                  time.monotonic() + limits.timeout_s)
        work = loop.run_in_executor(state.executor, predict_body, job, body, content_type, fmt, accept)
        return await _with_deadline(state, work)
    finally:
        state.inflight -= 1


async def _with_deadline(state: State, work: Any) -> Any:
    try:
        return await asyncio.wait_for(work, state.config.limits.timeout_s + 1)
    except TimeoutError as exc:
        raise RequestTimeout(f"the request took longer than {state.config.limits.timeout_s:g} s") from exc


_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or wrong bearer token (JSON error)"},
    404: {"description": "Unknown model, source or tile (JSON error)"},
    406: {"description": "Answer format not available for this model or input (JSON error)"},
    413: {"description": "Body, pixel count or band count over the limit (JSON error)"},
    415: {"description": "Body is not GeoTIFF, PNG or JPEG (JSON error)"},
    422: {"description": "Body cannot be used: truncated, corrupt, wrong bands (JSON error)"},
    503: {"description": "Queue full; retry after the Retry-After header's seconds (JSON error)"},
    504: {"description": "Request took longer than the server's timeout (JSON error)"},
}
_PREDICT_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {
    media: {"schema": {"type": "string", "format": "binary"}}
    for media in ("image/tiff", "image/png", "image/jpeg")}}}
_PREDICT_ANSWERS: dict[int | str, dict[str, Any]] = {200: {
    "description": "Class mask (GeoTIFF or palette PNG), per-class probabilities (GeoTIFF, 0..250), polygons "
                   "(GeoJSON, WGS84) or, for classifiers, class probabilities (JSON)",
    "content": {media: {} for media in set(FORMATS.values())}}}
