"""The inspection web service: ``create_app()`` builds it; the model loads once at start-up.

The model is loaded in a background thread started by the lifespan, so ``/healthz`` answers
at once and ``/readyz`` says 503 until the inspector is ready (or says why loading failed).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from scratchdet import __version__
from scratchdet.service.config import ServiceSettings
from scratchdet.service.db import History, make_engine
from scratchdet.service.errors import install_error_handlers
from scratchdet.service.inspector import Inspector, InspectorFactory
from scratchdet.service.keys import KeyStore
from scratchdet.service.limits import BodyLimitMiddleware, InspectionGate
from scratchdet.service.retention import prune
from scratchdet.service.review_routes import review_router
from scratchdet.service.routes import api_router, page_router
from scratchdet.service.security import RequestGuard
from scratchdet.service.signin import session_router
from scratchdet.service.state import STATIC_DIR, ServiceState

log = logging.getLogger("scratchdet.service")

#: Room for the multipart framing and the small form fields around the photo.
MULTIPART_OVERHEAD_BYTES = 64 * 1024


def _load(state: ServiceState, source: Inspector | InspectorFactory) -> None:
    try:
        inspector = source if isinstance(source, Inspector) else source()
        state.inspector = inspector
        log.info("model %s loaded", inspector.model_id)
    except Exception as error:
        state.load_error = f"{type(error).__name__}: {error}"
        log.exception("model failed to load")
    finally:
        state.loaded.set()


def create_app(
    inspector: Inspector | InspectorFactory, settings: ServiceSettings | None = None
) -> FastAPI:
    """Build the app around an inspector, or a factory run once in a start-up thread."""
    settings = settings or ServiceSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings.storage_dir.mkdir(parents=True, exist_ok=True)
        engine = make_engine(settings.db_url, settings.db_busy_timeout_s)
        state = ServiceState(
            settings=settings,
            history=History(engine),
            keys=KeyStore(engine),
            gate=InspectionGate(
                settings.max_concurrency, settings.queue_timeout_s, settings.request_timeout_s
            ),
        )
        app.state.service = state
        pruned = prune(state.history, settings.storage_dir, settings.keep_days,
                       settings.max_photos)
        if pruned.rows:
            log.info("retention: removed %d inspections, %d photos at start",
                     pruned.rows, pruned.photos)
        loader = threading.Thread(
            target=_load, args=(state, inspector), name="model-loader", daemon=True
        )
        loader.start()
        try:
            yield
        finally:
            state.gate.close()
            state.history.close()

    app = FastAPI(
        title="scratchdet inspection service",
        version=__version__,
        description="Upload a photo of a painted part; get scratch boxes and a pass/fail verdict. "
        "Send 'Authorization: Bearer <API key>' (roles: viewer reads, operator inspects, admin "
        "deletes and sets any threshold); /healthz and /readyz are open.",
        lifespan=lifespan,
        docs_url=None,  # FastAPI's Swagger page loads from a CDN; /docs is served locally below
        redoc_url=None,
    )
    app.add_middleware(
        BodyLimitMiddleware, max_bytes=settings.max_upload_bytes + MULTIPART_OVERHEAD_BYTES
    )
    app.add_middleware(RequestGuard, allowed_hosts=settings.allowed_hosts)  # outermost
    install_error_handlers(app)
    app.include_router(api_router)
    app.include_router(review_router)
    app.include_router(session_router)
    app.include_router(page_router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
