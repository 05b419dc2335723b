"""Requests that are not protobuf of the expected type: refused as INVALID_ARGUMENT.

grpcio would answer UNKNOWN with a Python exception's text; a client (or a fuzzer)
sending bytes that do not parse deserves a canonical code and a sentence instead. Every
method's deserializer is wrapped here, in one place, for both services.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from officestatus_server.errors import InvalidInput
from officestatus_server.rpc.errors import Context, to_status

OUR_SERVICES = "/officestatus."


@dataclass(frozen=True)
class _Malformed:
    """Stands in for a request that did not parse."""

    error: InvalidInput


def _safe(deserializer: Callable[[bytes], Any], method: str) -> Callable[[bytes], Any]:
    def parse(data: bytes) -> Any:
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


class MalformedRequests(grpc.aio.ServerInterceptor):
    """Turns requests that do not parse into INVALID_ARGUMENT (REQUEST_MALFORMED)."""

    def __init__(self) -> None:
        # One wrapped handler per method, made at its first call: not one per call.
        self._wrapped: dict[str, grpc.RpcMethodHandler[Any, Any] | None] = {}

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        """Wrap the handler's deserializer; the handler itself is unchanged."""
        method = details.method or "?"
        if method in self._wrapped:
            return self._wrapped[method]
        handler = await continuation(details)
        wrapped = self._wrap(handler, method)
        if handler is not None and method.startswith(OUR_SERVICES):
            self._wrapped[method] = wrapped
        return wrapped

    def _wrap(
        self, handler: grpc.RpcMethodHandler[Any, Any] | None, method: str
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        # Only our own services: their stream handlers are async generators, which is
        # what the wrapper below assumes (grpc's health Watch writes to its context).
        if (
            handler is None
            or handler.request_deserializer is None
            or not method.startswith(OUR_SERVICES)
        ):
            return handler
        parse = _safe(handler.request_deserializer, method)
        if handler.unary_unary is not None:
            unary = handler.unary_unary

            async def unary_behavior(request: Any, context: Context) -> Any:
                if isinstance(request, _Malformed):
                    await context.abort_with_status(to_status(request.error))
                return await unary(request, context)  # type: ignore[arg-type]

            return grpc.unary_unary_rpc_method_handler(
                unary_behavior,
                request_deserializer=parse,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            # grpc.aio handlers are async generators; the stubs type them as sync.
            streaming: Any = handler.unary_stream

            async def stream_behavior(request: Any, context: Context) -> AsyncIterator[Any]:
                if isinstance(request, _Malformed):
                    await context.abort_with_status(to_status(request.error))
                async for reply in streaming(request, context):
                    yield reply

            return grpc.unary_stream_rpc_method_handler(
                stream_behavior,
                request_deserializer=parse,
                response_serializer=handler.response_serializer,
            )
        return handler
