"""Request limits: a body-size guard (ASGI middleware) and the inspection gate.

The gate bounds how many inspections run at once (an ``asyncio.Semaphore``; a request that
cannot get a slot within ``queue_timeout_s`` gets 503) and how long one may take (504). The
work runs in a dedicated thread pool with one thread per slot, so the event loop stays free.
A thread cannot be killed, so a timed-out inspection is not cancelled: its slot stays taken
(``busy`` counts it) until its thread has really finished, and its result is dropped. So
abandoned work never piles up beyond ``slots`` threads; new requests queue or get 503.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from scratchdet.service.errors import ServiceError

T = TypeVar("T")
log = logging.getLogger("scratchdet.service")


class InspectionGate:
    def __init__(self, slots: int, queue_timeout_s: float, request_timeout_s: float) -> None:
        self.slots = slots
        self.queue_timeout_s = queue_timeout_s
        self.request_timeout_s = request_timeout_s
        self._free = asyncio.Semaphore(slots)
        self._executor = ThreadPoolExecutor(max_workers=slots, thread_name_prefix="inspect")
        self.busy = 0  # slots taken, abandoned (timed-out) work included
        self.abandoned = 0  # timed-out work whose thread is still running

    async def run(self, work: Callable[..., T], *args: Any) -> tuple[T, float]:
        """Run ``work(*args)`` in a slot; return its result and the ms spent queueing."""
        queued = time.perf_counter()
        try:
            await asyncio.wait_for(self._free.acquire(), timeout=self.queue_timeout_s)
        except TimeoutError:
            raise ServiceError(
                503, "busy",
                f"all {self.slots} inspection slots stayed busy for {self.queue_timeout_s:g} s; "
                "retry later",
            ) from None
        queue_ms = (time.perf_counter() - queued) * 1000.0
        self.busy += 1
        future = asyncio.get_running_loop().run_in_executor(self._executor, work, *args)
        future.add_done_callback(self._release)
        try:
            result = await asyncio.wait_for(asyncio.shield(future), self.request_timeout_s)
        except TimeoutError:
            self.abandoned += 1
            future.add_done_callback(self._abandoned_done)
            log.warning("an inspection passed %g s: answered 504; its slot stays taken until "
                        "its thread ends (%d abandoned)", self.request_timeout_s, self.abandoned)
            raise ServiceError(
                504, "timeout",
                f"inspection took longer than {self.request_timeout_s:g} s and was abandoned",
            ) from None
        return result, queue_ms

    def _release(self, future: asyncio.Future[Any]) -> None:
        self.busy -= 1
        self._free.release()
        if not future.cancelled():
            future.exception()  # retrieved, so an abandoned failure is not logged as lost

    def _abandoned_done(self, _future: asyncio.Future[Any]) -> None:
        self.abandoned -= 1

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


class BodyLimitMiddleware:
    """Refuse request bodies over ``max_bytes`` with 413, by Content-Length or while streaming."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send, f"request body is {int(declared)} bytes")
            return
        seen = 0
        over = False

        async def counting_receive() -> Message:
            nonlocal seen, over
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    over = True
                    return {"type": "http.disconnect"}
            return message

        started = False

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if over and message["type"] == "http.response.start" and not started:
                started = True
                await self._refuse(send, "streamed request body is too large")
                return
            if over and started:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not over:
                raise
            if not started:
                await self._refuse(send, "streamed request body is too large")

    async def _refuse(self, send: Send, what: str) -> None:
        body = json.dumps(
            {"error": "too_large", "detail": f"{what}; the limit is {self.max_bytes} bytes"}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
