"""The client's one seam to gRPC: a channel, unary calls with a deadline, errors converted.

This is the only client module that imports grpc. grpcio ships no type stubs, so every
reply is checked against the type the caller expects before it leaves this module: what
the clients get back is typed, not Any.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message

from officestatus_client._errors import (
    InvalidArgumentError,
    ServerError,
    UnavailableError,
    error_from_rpc,
)
from officestatus_client._models import TlsConfig

ReplyT = TypeVar("ReplyT", bound=Message)

# A generated stub's method: awaited with the request, a timeout and metadata.
UnaryMethod = Callable[..., Awaitable[Any]]
# A generated stub's server-streaming method: iterated asynchronously.
StreamMethod = Callable[..., AsyncIterable[Any]]

DEFAULT_TIMEOUT = 10.0

# What a caller may pass as `channel`; named here so no other module imports grpc.
Channel = grpc.aio.Channel


def _credentials(tls: TlsConfig) -> grpc.ChannelCredentials:
    def read(path: Path | None, what: str) -> bytes | None:
        if path is None:
            return None
        try:
            return path.read_bytes()
        except OSError as err:
            raise InvalidArgumentError(
                f"cannot read the TLS {what} {path}: {err.strerror}", reason="TLS_FILE_UNREADABLE"
            ) from None

    return grpc.ssl_channel_credentials(
        root_certificates=read(tls.ca, "CA certificate"),
        private_key=read(tls.key, "key"),
        certificate_chain=read(tls.cert, "certificate"),
    )


class Transport:
    """A channel to one address; closes the channel on `close()` only if it opened it."""

    def __init__(
        self,
        address: str,
        channel: Channel | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        metadata: Sequence[tuple[str, str]] = (),
        tls: TlsConfig | None = None,
    ) -> None:
        self.address = address
        self.timeout = timeout
        self._metadata = tuple(metadata)
        self._owns_channel = channel is None
        if channel is None:
            channel = (
                grpc.aio.insecure_channel(address)
                if tls is None
                else grpc.aio.secure_channel(address, _credentials(tls))
            )
        self.channel: Channel = channel
        self._closed = False

    async def call(self, method: UnaryMethod, request: Message, reply_type: type[ReplyT]) -> ReplyT:
        """Call a generated stub's unary method; raises an OfficeStatusError on failure."""
        try:
            reply = await method(request, timeout=self.timeout, metadata=self._metadata)
        except grpc.aio.AioRpcError as err:
            raise error_from_rpc(err, self.address) from err
        if not isinstance(reply, reply_type):
            raise ServerError(
                f"the server answered with {type(reply).__name__}, "
                f"not {reply_type.__name__}; it may be a different service"
            )
        return reply

    async def stream(
        self, method: StreamMethod, request: Message, reply_type: type[ReplyT]
    ) -> AsyncIterator[ReplyT]:
        """Call a generated stub's server-streaming method; yields each reply."""
        try:
            async for reply in method(request, timeout=None, metadata=self._metadata):
                if not isinstance(reply, reply_type):
                    raise ServerError(
                        f"the server answered with {type(reply).__name__}, "
                        f"not {reply_type.__name__}; it may be a different service"
                    )
                yield reply
        except grpc.aio.AioRpcError as err:
            raise error_from_rpc(err, self.address) from err

    async def wait_until_ready(self, seconds: float) -> None:
        """Wait up to `seconds` for the server to accept connections (a server just started)."""
        try:
            await asyncio.wait_for(self.channel.channel_ready(), seconds)
        except TimeoutError:
            raise UnavailableError(
                f"the license server at {self.address} did not come up within {seconds:g} s; "
                "check that it is running and listening there"
            ) from None

    async def close(self) -> None:
        """Close the channel if this transport opened it; a second call does nothing."""
        if self._closed:
            return
        self._closed = True
        if self._owns_channel:
            await self.channel.close()
