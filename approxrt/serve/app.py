"""The daemon's HTTP control API (FastAPI), its metrics and its status page.

Routes: ``GET /health`` (alive), ``GET /ready`` (streams can be served),
``GET|POST /streams``, ``GET|DELETE /streams/{id}``, ``POST
/streams/{id}/pause|resume``, ``PUT /streams/{id}/branch|sla``, ``GET
/streams/{id}/snapshot.jpg`` (the latest annotated frame), ``GET /metrics``
(Prometheus) and ``GET /`` (the status page). With a token, every route but
``/health`` and ``/ready`` needs ``Authorization: Bearer <token>``. Bodies
above `MAX_BODY_BYTES` are refused before they are read. Sources are shown with
their credentials hidden.
"""

from __future__ import annotations

import hmac
import time
from importlib import resources
from typing import Annotated

import cv2
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from approxrt.serve.manager import StreamExistsError, StreamManager, StreamNotFoundError
from approxrt.serve.spec import StreamSpec
from approxrt.serve.stream import StreamWorker
from approxrt.sinks.base import select_classes
from approxrt.sinks.video import draw_result

MAX_BODY_BYTES = 64 * 1024
HISTORY_S = 300  # latency points the status page gets: the last five minutes


class StreamStatus(BaseModel):
    id: str
    state: str
    source: str
    branch: str
    sla_ms: float | None
    frames_processed: int
    frames_dropped: int
    frame_errors: int
    reconnects: int
    queue_depth: int
    last_error: str | None
    spec: dict


class BranchBody(BaseModel):
    branch: str = Field(min_length=1, max_length=200)


class SlaBody(BaseModel):
    sla_ms: float | None = Field(gt=0, le=600_000)


class History(BaseModel):
    t: list[float]
    latency_ms: list[float]
    sla_ms: float | None


def status_of(worker: StreamWorker) -> StreamStatus:
    feed = worker.feed
    return StreamStatus(
        id=worker.spec.id,
        state=worker.state,
        source=worker.spec.public()["source"],
        branch=str(worker.branch or "adaptive: no decision yet"),
        sla_ms=worker.sla_ms,
        frames_processed=worker.counts.processed,
        frames_dropped=feed.dropped,
        frame_errors=worker.counts.frame_errors,
        reconnects=feed.reconnects,
        queue_depth=feed.depth,
        last_error=worker.error or feed.last_error,
        spec=worker.spec.public(),
    )


def _manager(request: Request) -> StreamManager:
    return request.app.state.manager


def _check_token(
    request: Request,
    credentials: Annotated[
        HTTPAuthorizationCredentials | None, Depends(HTTPBearer(auto_error=False))
    ],
) -> None:
    token = request.app.state.token
    if token is None:
        return
    given = credentials.credentials if credentials else ""
    if not hmac.compare_digest(given.encode(), token.encode()):
        raise HTTPException(
            401,
            "missing or wrong bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )


Manager = Annotated[StreamManager, Depends(_manager)]
open_routes = APIRouter()
routes = APIRouter(dependencies=[Depends(_check_token)])


def _worker(manager: StreamManager, stream_id: str) -> StreamWorker:
    try:
        return manager.get(stream_id)
    except StreamNotFoundError:
        raise HTTPException(404, f"no stream {stream_id!r}") from None


@open_routes.get("/health")
def health() -> dict:
    return {"status": "ok"}


@open_routes.get("/ready")
def ready(request: Request) -> JSONResponse:
    ok = bool(request.app.state.ready)
    return JSONResponse({"ready": ok}, status_code=200 if ok else 503)


@open_routes.get("/", response_class=HTMLResponse, include_in_schema=False)
def status_page() -> HTMLResponse:
    page = resources.files("approxrt.serve").joinpath("status.html").read_text()
    return HTMLResponse(page)


@routes.get("/streams")
def list_streams(manager: Manager) -> list[StreamStatus]:
    return [status_of(w) for w in manager.list()]


@routes.post("/streams", status_code=201)
def add_stream(spec: StreamSpec, manager: Manager) -> StreamStatus:
    try:
        return status_of(manager.add(spec))
    except StreamExistsError as error:
        raise HTTPException(409, str(error)) from None
    except (ValueError, FileNotFoundError) as error:
        raise HTTPException(422, str(error)) from None


@routes.get("/streams/{stream_id}")
def get_stream(stream_id: str, manager: Manager) -> StreamStatus:
    return status_of(_worker(manager, stream_id))


@routes.delete("/streams/{stream_id}")
def remove_stream(stream_id: str, manager: Manager) -> StreamStatus:
    try:
        return status_of(manager.remove(stream_id))
    except StreamNotFoundError:
        raise HTTPException(404, f"no stream {stream_id!r}") from None


@routes.post("/streams/{stream_id}/pause")
def pause(stream_id: str, manager: Manager) -> StreamStatus:
    worker = _worker(manager, stream_id)
    worker.paused.set()
    return status_of(worker)


@routes.post("/streams/{stream_id}/resume")
def resume(stream_id: str, manager: Manager) -> StreamStatus:
    worker = _worker(manager, stream_id)
    worker.paused.clear()
    return status_of(worker)


@routes.put("/streams/{stream_id}/branch")
def set_branch(stream_id: str, body: BranchBody, manager: Manager) -> StreamStatus:
    _worker(manager, stream_id)
    try:
        return status_of(manager.set_branch(stream_id, body.branch))
    except ValueError as error:
        raise HTTPException(422, str(error)) from None


@routes.put("/streams/{stream_id}/sla")
def set_sla(stream_id: str, body: SlaBody, manager: Manager) -> StreamStatus:
    worker = _worker(manager, stream_id)
    worker.sla_ms = body.sla_ms
    return status_of(worker)


@routes.get("/streams/{stream_id}/history")
def history(stream_id: str, manager: Manager) -> History:
    worker = _worker(manager, stream_id)
    since = time.time() - HISTORY_S
    points = [p for p in list(worker.counts.history) if p[0] >= since]
    return History(
        t=[p[0] for p in points],
        latency_ms=[p[1] for p in points],
        sla_ms=worker.sla_ms,
    )


@routes.get(
    "/streams/{stream_id}/snapshot.jpg",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}},
)
def snapshot(stream_id: str, manager: Manager) -> Response:
    worker = _worker(manager, stream_id)
    result = worker.latest
    if result is None:
        raise HTTPException(404, f"stream {stream_id!r} has no frame yet")
    detections = select_classes(result.detections, worker.spec.classes)
    image = draw_result(result.frame.image, result, detections)
    _, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])
    return Response(jpeg.tobytes(), media_type="image/jpeg")


@routes.get("/metrics", response_class=Response)
def metrics(manager: Manager) -> Response:
    manager.refresh_gauges()
    return Response(manager.metrics.text(), media_type="text/plain; version=0.0.4")


async def _refuse_big_bodies(request: Request, call_next):
    length = request.headers.get("content-length")
    if length is None and "transfer-encoding" in request.headers:
        return JSONResponse(
            {"detail": "a request body needs a Content-Length"}, status_code=411
        )
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
        return JSONResponse(
            {"detail": f"body too large (limit {MAX_BODY_BYTES} bytes)"},
            status_code=413,
        )
    return await call_next(request)


def create_app(manager: StreamManager, token: str | None = None) -> FastAPI:
    """The API over ``manager``; ``token`` (when given) guards it."""
    app = FastAPI(title="approxrt daemon", version="1")
    app.state.manager = manager
    app.state.token = token
    app.state.ready = False
    app.middleware("http")(_refuse_big_bodies)
    app.include_router(open_routes)
    app.include_router(routes)
    return app
