"""The HTTP listener: off unless configured (`--http-listen`), in the gRPC server's event
loop, with routes added by whoever serves pages on it (/metrics now, the status page later).

Bounded, so that no client of it can take the loop, the memory or the open files from the
logins:

- at most `MAX_CONNECTIONS` connections at once; a further one is closed at once;
- a request line and each header line at most `MAX_LINE_BYTES`, at most `MAX_HEADERS`
  header lines, a body at most `MAX_BODY_BYTES` (aiohttp answers 400 or 413 and closes);
- a request must arrive whole (line and headers) within `REQUEST_SECONDS` of its first
  byte, or of the connection; a connection with no request is closed after
  `IDLE_SECONDS`; a handler gets `HANDLER_SECONDS` (slow clients, slowloris);
- with TLS configured for the gRPC listeners, this one speaks HTTPS with the same
  certificate and key (and client CA: mutual TLS), a handshake within `REQUEST_SECONDS`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

from aiohttp import web
from aiohttp.web_routedef import AbstractRouteDef

from officestatus_server.errors import InvalidInput

log = logging.getLogger("officestatus.http")


class _ClientFaults(logging.Filter):
    """aiohttp logs a client's malformed request (a header too long, not HTTP at all) as
    an error with a traceback: one line at debug level instead, so a hostile client
    cannot fill the log. The handlers' own errors are logged by `_bounded`."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        record.exc_info = record.exc_text = None
        return log.isEnabledFor(logging.DEBUG)


# aiohttp's own log of the connections, with the filter above.
_protocol_log = logging.getLogger("officestatus.http.protocol")
_protocol_log.addFilter(_ClientFaults())

MAX_CONNECTIONS = 64
MAX_LINE_BYTES = 4096
MAX_HEADERS = 32
MAX_BODY_BYTES = 16 * 1024
REQUEST_SECONDS = 5.0
IDLE_SECONDS = 30.0
HANDLER_SECONDS = 10.0

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class _Connection(asyncio.Protocol):
    """One client connection in front of aiohttp's own protocol: counted against the
    bound, and closed when its request does not arrive in time or it sits idle."""

    def __init__(self, inner: asyncio.Protocol, listener: HttpListener) -> None:
        self._inner = inner
        self._listener = listener
        self._transport: asyncio.Transport | None = None
        self._admitted = False
        self._timer: asyncio.TimerHandle | None = None
        # Between requests: the next byte starts the clock of a request.
        self._idle = False

    # --- asyncio.Protocol, handed on to aiohttp ------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        listener = self._listener
        if len(listener.connections) >= MAX_CONNECTIONS:
            listener.refused += 1
            transport.abort()
            return
        self._admitted = True
        listener.connections[transport] = self
        self._inner.connection_made(transport)
        self._arm(REQUEST_SECONDS)

    def data_received(self, data: bytes) -> None:
        if self._idle:
            self._idle = False
            self._arm(REQUEST_SECONDS)
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel()
        if self._admitted:
            self._listener.connections.pop(self._transport, None)  # type: ignore[arg-type]
            self._inner.connection_lost(exc)

    # --- the clock of a connection -------------------------------------------------------

    def request_started(self) -> None:
        """Its request arrived whole: the handler's own bound applies now."""
        self._idle = False
        self._cancel()

    def request_ended(self) -> None:
        """Its answer is handed to aiohttp: the connection may sit idle for a while (and
        the answer must be read within that time)."""
        self._idle = True
        self._arm(IDLE_SECONDS)

    def _arm(self, seconds: float) -> None:
        self._cancel()
        self._timer = asyncio.get_running_loop().call_later(seconds, self._expire)

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self) -> None:
        self._timer = None
        if self._transport is not None:
            self._transport.abort()


def tls_context(cert: Path, key: Path, client_ca: Path | None) -> ssl.SSLContext:
    """The gRPC listeners' TLS settings for HTTPS: this certificate and key; with
    `client_ca`, only clients with a certificate that CA signed."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key)
        if client_ca is not None:
            context.load_verify_locations(client_ca)
            context.verify_mode = ssl.CERT_REQUIRED
    except (OSError, ssl.SSLError) as exc:
        raise InvalidInput(
            f"Cannot use the TLS files for the HTTP listener: {exc}.",
            reason="TLS_FILE_UNREADABLE",
        ) from exc
    return context


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


class HttpListener:
    """The HTTP listener: add routes, then `start` on host:port; `stop` at the end."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[self._bounded])
        self._tls = tls
        self._runner: web.AppRunner | None = None
        self._servers: list[asyncio.Server] = []
        # The connections open now, by transport.
        self.connections: dict[asyncio.Transport, _Connection] = {}
        # Connections closed at once because MAX_CONNECTIONS were open.
        self.refused = 0
        self.port = 0

    @property
    def scheme(self) -> str:
        """http, or https with TLS."""
        return "https" if self._tls is not None else "http"

    def add_routes(self, routes: Iterable[AbstractRouteDef]) -> None:
        """Serve these routes too (before `start`)."""
        self.app.add_routes(routes)

    @web.middleware
    async def _bounded(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        connection = self.connections.get(request.transport)  # type: ignore[arg-type]
        if connection is not None:
            connection.request_started()
        try:
            async with asyncio.timeout(HANDLER_SECONDS):
                return await handler(request)
        except web.HTTPException:
            raise
        except Exception as exc:
            log.exception("unexpected error serving %s %s", request.method, request.path)
            raise web.HTTPInternalServerError(
                text="The server failed; its log has the details."
            ) from exc
        finally:
            if connection is not None:
                connection.request_ended()

    async def start(self, address: str) -> int:
        """Listen on host:port (port 0: a free one); returns the port."""
        runner = web.AppRunner(
            self.app,
            handle_signals=False,
            access_log=None,
            logger=_protocol_log,
            keepalive_timeout=IDLE_SECONDS,
            max_line_size=MAX_LINE_BYTES,
            max_field_size=MAX_LINE_BYTES,
            max_headers=MAX_HEADERS,
            # After an answer, what is left of a request's body is read for at most this.
            lingering_time=1.0,
        )
        await runner.setup()
        self._runner = runner
        host, port = _host_port(address)
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(
                host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
            )
        except OSError as exc:
            await self.stop()
            raise OSError(f"cannot listen on {address} (HTTP): {exc.strerror}") from exc
        # Port 0: one free port, on the first address (a name like localhost has two).
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        if port == 0:
            addresses = addresses[:1]
        try:
            for one in addresses:
                server = await loop.create_server(
                    lambda: _Connection(runner.server(), self),  # type: ignore[misc]
                    one,
                    port,
                    ssl=self._tls,
                    ssl_handshake_timeout=REQUEST_SECONDS if self._tls else None,
                    reuse_address=True,
                    backlog=MAX_CONNECTIONS,
                )
                self._servers.append(server)
                port = server.sockets[0].getsockname()[1]
        except OSError as exc:
            await self.stop()
            raise OSError(
                f"cannot listen on {address} (HTTP): the address is in use or not on this machine"
            ) from exc
        self.port = port
        return port

    async def stop(self) -> None:
        """Stop listening and close every connection."""
        for server in self._servers:
            server.close()
        for transport in list(self.connections):
            transport.abort()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await server.wait_closed()
        self._servers = []
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
