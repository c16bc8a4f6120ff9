"""A lean HTTP/1.1 keep-alive transport for the channels' ``httpx.AsyncClient``.

Profiling the sender at 1,000 messages/s showed about 60 % of its CPU in httpcore, anyio
and h11 (pool bookkeeping, a socket-readability probe through anyio before every reuse,
h11's event machinery), several times the cost of everything else a message needs. The
channels post one small request per message to one or a few gateways, so this transport
keeps only what they use: a pool of idle connections per origin (at most
``max_connections`` requests in flight), ``Content-Length`` and chunked responses, TLS
through ``ssl``. httpx still builds the requests and reads the responses, so the channels
and their tests are unchanged.

A connection is reused only while its peer has not closed it (EOF seen by the event loop)
and for at most ``keepalive_expiry`` seconds of idleness, before common gateways drop
theirs. A failed request is never re-sent here: the job's retry policy decides, so a
message is not posted twice by the transport.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass, field

import httpx

Origin = tuple[str, str, int]


@dataclass(slots=True)
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    idle_since: float = field(default_factory=time.monotonic)

    def usable(self, expiry: float) -> bool:
        return (
            not self.reader.at_eof()
            and not self.writer.is_closing()
            and time.monotonic() - self.idle_since < expiry
        )

    def close(self) -> None:
        self.writer.close()


class KeepAliveTransport(httpx.AsyncBaseTransport):
    def __init__(
        self,
        *,
        max_connections: int = 64,
        keepalive_expiry: float = 2.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: dict[Origin, list[_Connection]] = {}
        self._expiry = keepalive_expiry
        self._ssl = ssl_context

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send one request on an idle (or new) connection and read the whole response."""
        url = request.url
        port = url.port or (443 if url.scheme == "https" else 80)
        origin: Origin = (url.scheme, url.host, port)
        timeouts = request.extensions.get("timeout", {})
        body = await request.aread()
        head = [request.method.encode(), b" ", url.raw_path, b" HTTP/1.1\r\n"]
        for name, value in request.headers.raw:
            head += (name, b": ", value, b"\r\n")
        head.append(b"\r\n")
        try:
            status, headers, content = await self.exchange(
                origin, b"".join(head) + body, request.method, timeouts.get("connect"),
                timeouts.get("read"),
            )  # fmt: skip
        except httpx.TransportError as exc:
            exc.request = request
            raise
        return httpx.Response(
            status, headers=headers, content=content, request=request,
            extensions={"http_version": b"HTTP/1.1"},
        )  # fmt: skip

    async def exchange(
        self,
        origin: Origin,
        data: bytes,
        method: str,
        connect_s: float | None,
        read_s: float | None,
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """Write one whole request (head and body, already encoded) and read its response:
        (status, headers, body). The channels' fast path: no ``httpx`` models, which cost
        more CPU per message than the rest of the sender; raises ``httpx.TransportError``s."""
        async with self._slots:
            conn = await self._connection(origin, connect_s)
            try:
                async with asyncio.timeout(read_s):  # no extra task per request (wait_for)
                    status, headers, content, keep = await _exchange(conn, data, method)
            except TimeoutError as exc:
                conn.close()
                raise httpx.ReadTimeout(str(exc) or "read timeout") from exc
            except (
                OSError,
                asyncio.IncompleteReadError,
                asyncio.LimitOverrunError,
                ValueError,
            ) as exc:
                conn.close()
                raise httpx.ReadError(repr(exc)) from exc
            except BaseException:
                conn.close()
                raise
            if keep:
                conn.idle_since = time.monotonic()
                self._idle.setdefault(origin, []).append(conn)
            else:
                conn.close()
        return status, headers, content

    async def _connection(self, origin: Origin, connect_s: float | None) -> _Connection:
        idle = self._idle.get(origin)
        while idle:
            conn = idle.pop()
            if conn.usable(self._expiry):
                return conn
            conn.close()
        scheme, host, port = origin
        context = None
        if scheme == "https":
            context = self._ssl or ssl.create_default_context()
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, ssl=context), connect_s
            )
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(f"connect to {host}:{port} timed out") from exc
        except OSError as exc:
            raise httpx.ConnectError(repr(exc)) from exc
        return _Connection(reader, writer)

    async def aclose(self) -> None:
        """Close every idle connection."""
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
        self._idle.clear()


async def _exchange(
    conn: _Connection, data: bytes, method: str
) -> tuple[int, list[tuple[bytes, bytes]], bytes, bool]:
    conn.writer.write(data)
    await conn.writer.drain()
    return await _read_response(conn.reader, method)


async def _read_response(
    reader: asyncio.StreamReader, method: str
) -> tuple[int, list[tuple[bytes, bytes]], bytes, bool]:
    """(status, headers, body, connection reusable) of the next response."""
    headers: list[tuple[bytes, bytes]] = []
    while True:
        # the whole head at once: one read per response, not one per header line
        lines = (await reader.readuntil(b"\r\n\r\n")).split(b"\r\n")
        status_line = lines[0]
        parts = status_line.split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
            raise ValueError(f"bad status line {status_line[:80]!r}")
        status = int(parts[1])
        headers = []
        length: int | None = None
        chunked, keep = False, parts[0] == b"HTTP/1.1"
        for line in lines[1:-2]:
            name, _, value = line.partition(b":")
            name, value = name.strip(), value.strip()
            headers.append((name, value))
            lower = name.lower()
            if lower == b"content-length":
                length = int(value)
            elif lower == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif lower == b"connection":
                keep = b"close" not in value.lower() and (keep or b"keep-alive" in value.lower())
        if 100 <= status < 200 and status != 101:
            continue  # an interim response (100 Continue): the real one follows
        break
    if method == "HEAD" or status in (204, 304):
        return status, headers, b"", keep
    if chunked:
        body = bytearray()
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            body += await reader.readexactly(size + 2)
            del body[-2:]
        while await reader.readuntil(b"\r\n") != b"\r\n":
            pass  # trailers
        # httpx must not de-chunk again
        headers = [(n, v) for n, v in headers if n.lower() != b"transfer-encoding"]
        return status, headers, bytes(body), keep
    if length is not None:
        return status, headers, await reader.readexactly(length), keep
    return status, headers, await reader.read(), False
