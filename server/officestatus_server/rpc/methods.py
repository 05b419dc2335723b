"""How our RPCs are registered: every method of both services runs inside one wrapper,
made once per method when the server is built, so no call pays for a server interceptor.

The wrapper, in this order:

- refuses an admin call without the admin token (UNAUTHENTICATED, compared in constant
  time); the client service needs no credential;
- refuses a request that is not protobuf of the expected type as INVALID_ARGUMENT
  (REQUEST_MALFORMED), where grpcio would answer UNKNOWN with a Python exception's text;
- turns the domain errors a handler raises into statuses through the one table
  (errors.py), and anything unexpected into INTERNAL, logged with its traceback;
- with `times`, counts how long each call took into its method's histogram (the metrics'
  request latency), from its arrival at the wrapper to its answer or refusal.

The servicers themselves raise domain errors and never touch the status.

Handlers are registered as generic handlers only, never also through
`add_registered_method_handlers`: with grpcio 1.85's grpc.aio server, every call pays for
every method registered so, whatever its own method (an empty call took 489,000
instructions with none, 492,000 with one and 711,000 with 40, counted with callgrind), and
our services and health checking and reflection have 29 methods. The generic handlers route
the same calls to the same handlers.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from officestatus_server.core.timings import CallTimes, Histogram
from officestatus_server.errors import (
    InvalidInput,
    LicenseServerError,
    StorageError,
    Unauthenticated,
)
from officestatus_server.rpc.errors import Context, to_status

log = logging.getLogger("officestatus.rpc")

# A generated `add_<Service>Servicer_to_server` function.
AddServicer = Callable[[Any, Any], None]


@dataclass(frozen=True)
class _Malformed:
    """Stands in for a request that did not parse."""

    error: InvalidInput


def _parser(
    deserializer: Callable[[bytes], Any], method: str, max_bytes: int | None
) -> Callable[[bytes], Any]:
    def parse(data: bytes) -> Any:
        if max_bytes is not None and len(data) > max_bytes:
            return _Malformed(
                InvalidInput(
                    f"The request to {method} has {len(data):,} bytes; requests of the "
                    f"OfficeStatus client protocol have at most {max_bytes:,}.",
                    reason="REQUEST_TOO_LARGE",
                )
            )
        try:
            return deserializer(data)
        except DecodeError as exc:
            return _Malformed(
                InvalidInput(
                    f"The request to {method} is not a valid message: {exc}. Check that the "
                    "client speaks the OfficeStatus protocol.",
                    reason="REQUEST_MALFORMED",
                )
            )

    return parse


# How long a call may take to send its request after it began: a call whose request has
# not arrived within REQUEST_SECONDS is ended within a further SWEEP_SECONDS.
REQUEST_SECONDS = 5.0
SWEEP_SECONDS = 1.0
_SWEEPS = int(REQUEST_SECONDS / SWEEP_SECONDS)


class Traffic:
    """Counts the calls that reach a handler, and turns new ones away while the server
    stops: a stop first lets the calls already received run (until none has arrived for a
    moment), then answers the ones still arriving UNAVAILABLE before gRPC stops.

    It also ends the calls whose request does not come. A call waiting for its request is
    noted with the number of sweeps so far; one sweep a second cancels those waiting for
    more than REQUEST_SECONDS. That costs a call two dictionary operations, where a timer of
    its own (asyncio.timeout) cost it some 36,000 instructions (callgrind, a 3.x login)."""

    def __init__(self) -> None:
        self.calls = 0
        self.stopping = False
        # Calls waiting for their request, by task, with the sweep count when they began;
        # in the order they began.
        self.waiting: dict[asyncio.Task[Any], int] = {}
        # Those a sweep ended: their wait raises CancelledError, told apart from others'.
        self.late: set[asyncio.Task[Any]] = set()
        self.sweeps = 0
        self._sweeper: asyncio.Task[None] | None = None

    def watch(self) -> None:
        """Sweep once a second from now on (started by the first call; idempotent)."""
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep())

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            self.sweeps += 1
            oldest = self.sweeps - _SWEEPS
            # Oldest first: stop at the first one that may still wait.
            late = []
            for task, began in self.waiting.items():
                if began >= oldest:
                    break
                late.append(task)
            for task in late:
                del self.waiting[task]
                self.late.add(task)
                task.cancel()
            self.late = {task for task in self.late if not task.done()}

    async def close(self) -> None:
        """Stop sweeping."""
        sweeper, self._sweeper = self._sweeper, None
        if sweeper is not None:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper


class AdminToken:
    """The admin token, as the `authorization: Bearer <token>` header must carry it."""

    def __init__(self, token: str) -> None:
        self._expected = f"Bearer {token}".encode()

    def check(self, context: Context) -> None:
        """Raise Unauthenticated unless the call carries the token."""
        headers = [v for k, v in context.invocation_metadata() or () if k == "authorization"]
        if len(headers) > 1:
            # Which one counts would be a guess, and proxies disagree on it: refuse.
            raise Unauthenticated(
                f"The call carries {len(headers)} authorization headers; send the admin "
                "token in exactly one.",
                reason="ADMIN_TOKEN_INVALID",
            )
        sent: str | bytes = headers[0] if headers else ""
        sent_bytes = sent.encode() if isinstance(sent, str) else bytes(sent)
        if hmac.compare_digest(sent_bytes, self._expected):
            return
        raise Unauthenticated(
            "This admin call needs the server's admin token: run officestatus-admin on the "
            "server's machine, or pass the token file with --token-file."
            if not sent
            else "The admin token is wrong. Use the token from the server's data directory.",
            reason="ADMIN_TOKEN_MISSING" if not sent else "ADMIN_TOKEN_INVALID",
        )


def _refusal(exc: Exception, method: str) -> grpc.Status:
    """The status for an exception a handler raised (call inside its `except`)."""
    if isinstance(exc, LicenseServerError):
        return to_status(exc)
    log.exception("unexpected error in %s", method)
    return to_status(
        StorageError(
            "The license server failed unexpectedly; nothing was changed. The server "
            "log has the details.",
            reason="INTERNAL",
        )
    )


def _guard(
    handler: grpc.RpcMethodHandler[Any, Any],
    method: str,
    token: AdminToken | None,
    traffic: Traffic,
    max_bytes: int | None,
    histogram: Histogram | None = None,
) -> grpc.RpcMethodHandler[Any, Any]:
    """The handler inside the wrapper described at the top of this module."""
    assert handler.request_deserializer is not None
    parse = _parser(handler.request_deserializer, method, max_bytes)
    # With a token, the request arrives as bytes and is parsed only after the check:
    # a caller without the token gets no parsing done for it.
    deserializer = parse if token is None else None

    def admitted(request: Any, context: Context) -> Any:
        """The request, once the token (if any) is checked and the request parsed."""
        if token is not None:
            token.check(context)
            request = parse(request)
        if type(request) is _Malformed:
            raise request.error
        return request

    if handler.unary_unary is not None:
        # grpc.aio handlers are coroutine functions; the stubs type them as plain ones.
        unary: Any = handler.unary_unary

        async def unary_behavior(requests: Any, context: Context) -> Any:
            traffic.calls += 1
            if traffic.stopping:
                await _refuse_stopping(context)
            request = await _request(context, method, traffic)
            try:
                return await unary(admitted(request, context), context)
            except grpc.aio.AbortError:
                raise
            except Exception as exc:
                status = _refusal(exc, method)
            # Outside the except: abort raises its own exception, which must reach gRPC.
            await context.abort_with_status(status)
            raise AssertionError("abort_with_status returned")  # pragma: no cover

        # Served as a stream of requests, of which the one is read with a time limit: a
        # call whose request never comes is ended instead of held (gRPC would wait).
        return grpc.stream_unary_rpc_method_handler(
            unary_behavior if histogram is None else _timed(unary_behavior, histogram),
            request_deserializer=deserializer,
            response_serializer=handler.response_serializer,
        )
    if handler.unary_stream is not None:
        # An async generator on grpc.aio.
        streaming: Any = handler.unary_stream

        async def stream_behavior(requests: Any, context: Context) -> AsyncIterator[Any]:
            traffic.calls += 1
            if traffic.stopping:
                await _refuse_stopping(context)
            request = await _request(context, method, traffic)
            try:
                async for reply in streaming(admitted(request, context), context):
                    yield reply
                return
            except grpc.aio.AbortError:
                raise
            except Exception as exc:
                status = _refusal(exc, method)
            await context.abort_with_status(status)

        return grpc.stream_stream_rpc_method_handler(
            stream_behavior if histogram is None else _timed_stream(stream_behavior, histogram),
            request_deserializer=deserializer,
            response_serializer=handler.response_serializer,
        )
    raise TypeError(f"{method}: only unary requests are served")


_Unary = Callable[[Any, Context], Awaitable[Any]]
_Streaming = Callable[[Any, Context], AsyncIterator[Any]]


def _timed(behavior: _Unary, histogram: Histogram) -> _Unary:
    """The behaviour, its duration counted into `histogram` however it ends."""
    clock = time.perf_counter
    observe = histogram.observe

    async def timed(requests: Any, context: Context) -> Any:
        started = clock()
        try:
            return await behavior(requests, context)
        finally:
            observe(clock() - started)

    return timed


def _timed_stream(behavior: _Streaming, histogram: Histogram) -> _Streaming:
    """The streaming behaviour, timed until its last reply (or its refusal)."""
    clock = time.perf_counter
    observe = histogram.observe

    async def timed(requests: Any, context: Context) -> AsyncIterator[Any]:
        started = clock()
        try:
            async for reply in behavior(requests, context):
                yield reply
        finally:
            observe(clock() - started)

    return timed


async def _request(context: Context, method: str, traffic: Traffic) -> Any:
    """The call's one request, once it has arrived (within REQUEST_SECONDS)."""
    task = asyncio.current_task()
    assert task is not None
    if traffic._sweeper is None:
        traffic.watch()
    waiting = traffic.waiting
    waiting[task] = traffic.sweeps
    try:
        request = await context.read()
    except asyncio.CancelledError:
        if task not in traffic.late:
            raise  # the client went away, or the server stops
        traffic.late.discard(task)
        task.uncancel()
        await context.abort(
            grpc.StatusCode.DEADLINE_EXCEEDED,
            f"The request to {method} did not arrive within {REQUEST_SECONDS:g} s of the "
            "call; the call is ended.",
        )
    finally:
        waiting.pop(task, None)
    if request is grpc.aio.EOF:
        await context.abort(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"The call to {method} carried no request.",
        )
    return request


async def _refuse_stopping(context: Context) -> None:
    await context.abort(
        grpc.StatusCode.UNAVAILABLE,
        "The OfficeStatus License Server is stopping; try again in a moment.",
    )


class _Capture:
    """Stands in for the server while a generated function registers a servicer."""

    def __init__(self) -> None:
        self.service = ""
        self.handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}

    def add_generic_rpc_handlers(self, handlers: object) -> None:
        """Ignored: the same handlers also arrive by name below."""

    def add_registered_method_handlers(
        self, service: str, handlers: Mapping[str, grpc.RpcMethodHandler[Any, Any]]
    ) -> None:
        self.service = service
        self.handlers = dict(handlers)


def register(
    server: grpc.aio.Server,
    add_servicer: AddServicer,
    servicer: object,
    *,
    token: AdminToken | None = None,
    traffic: Traffic | None = None,
    max_request_bytes: int | None = None,
    times: CallTimes | None = None,
) -> str:
    """Register `servicer` through its generated `add_servicer` function, every method
    wrapped; with `token`, every method needs it; with `max_request_bytes`, a larger
    request is refused unparsed; with `times`, each call's duration is counted by method.
    Returns the service's full name."""
    capture = _Capture()
    add_servicer(servicer, capture)
    if not capture.handlers:
        raise RuntimeError(f"{add_servicer.__name__} registered no methods")
    traffic = traffic or Traffic()
    short = capture.service.rsplit(".", 1)[-1]
    handlers = {
        name: _guard(
            handler,
            f"/{capture.service}/{name}",
            token,
            traffic,
            max_request_bytes,
            None if times is None else times.histogram(short, name),
        )
        for name, handler in capture.handlers.items()
    }
    # Generic only: see the top of this module.
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(capture.service, handlers),)
    )
    return capture.service


class GenericOnly:
    """Stands in for the server while a generated function registers a servicer of
    someone else's (health checking, reflection): its generic handlers reach the server,
    its registered method handlers do not (see the top of this module)."""

    def __init__(self, server: grpc.aio.Server) -> None:
        self._server = server

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        self._server.add_generic_rpc_handlers(handlers)

    def add_registered_method_handlers(
        self, service: str, handlers: Mapping[str, grpc.RpcMethodHandler[Any, Any]]
    ) -> None:
        """Ignored: the generic handlers serve the same methods."""
