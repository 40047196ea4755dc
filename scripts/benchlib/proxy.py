"""A TCP proxy in front of PostgreSQL that counts round trips, and can add latency to each.

A round trip starts when the client, having asked for an answer and got one, sends again.
The client asks with the protocol's own markers (Sync, Flush, a simple Query, the startup
and SSL requests), read from its message stream. Counting bursts of bytes instead was
flaky: a batch the kernel splits in two, with the server answering the first half before
the second arrives, counted twice, so the count depended on this machine's load.
"""

from __future__ import annotations

import selectors
import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["RoundTripProxy"]

_ASKS = frozenset(b"SHQp")
"""Frontend messages after which the client waits: Sync, Flush, Query, a password."""
_REQUESTS = (80877103, 80877104)  # SSLRequest, GSSENCRequest: untyped, before the startup


class _ClientStream:
    """Splits the client's bytes into protocol messages and says where it waits."""

    def __init__(self) -> None:
        self._pending = bytearray()
        self._started = False
        self._requested = False
        self.opaque = False
        """TLS or GSS encryption was agreed: each burst of bytes is taken as a message."""

    def answered(self, data: bytes) -> None:
        """See the server's answer: to an encryption request, a yes makes the stream opaque."""
        if self._requested:
            self._requested = False
            self.opaque = data[:1] in (b"S", b"G")

    def asks(self, data: bytes) -> list[bool]:
        """For each message completed by `data`: whether the client waits after it."""
        if self.opaque:
            return [True]
        self._pending += data
        found: list[bool] = []
        while True:
            started = self._started
            if len(self._pending) < (5 if started else 8):
                return found
            if started:
                length = struct.unpack("!i", self._pending[1:5])[0] + 1
                kind_asks = self._pending[0] in _ASKS
            else:  # untyped: length, then the request or protocol code
                length, code = struct.unpack("!ii", self._pending[:8])
                kind_asks = True
            if len(self._pending) < length:
                return found
            if not started:
                self._requested = code in _REQUESTS
                self._started = not self._requested
            del self._pending[:length]
            found.append(kind_asks)


class RoundTripProxy:
    """Forwards 127.0.0.1:`port` to `upstream`, counting client turns on every connection."""

    def __init__(self, upstream: tuple[str, int], delay: float = 0.0) -> None:
        self.sent = bytearray()
        """Everything the clients sent, to look for a statement in."""
        self._upstream = upstream
        self._delay = delay
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._turns = 0
        self._closed = False
        self._clients: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def turns(self) -> int:
        """Round trips counted so far, over every connection."""
        with self._lock:
            return self._turns

    @contextmanager
    def counting(self) -> Iterator[list[int]]:
        """Yields a one-item list that holds the round trips made inside the block."""
        box = [0]
        start = self.turns
        yield box
        box[0] = self.turns - start

    def cut(self) -> None:
        """End every open connection without a word to the client, as a proxy or a
        firewall dropping idle connections does."""
        with self._lock:
            clients, self._clients = self._clients, []
        for client in clients:
            client.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        """Stop accepting; open connections end with their clients."""
        self._closed = True
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self._upstream)
            with self._lock:
                self._clients.append(client)
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()

    def _pump(self, client: socket.socket, server: socket.socket) -> None:
        selector = selectors.DefaultSelector()
        selector.register(client, selectors.EVENT_READ, server)
        selector.register(server, selectors.EVENT_READ, client)
        stream = _ClientStream()
        waiting, answered = True, True  # a new connection's first message opens a turn
        try:
            while True:
                for key, _ in selector.select():
                    source: socket.socket = key.fileobj  # type: ignore[assignment]
                    data = source.recv(1 << 16)
                    if not data:
                        return
                    if source is client:
                        self.sent += data
                        for asks in stream.asks(data):
                            if waiting and answered:
                                with self._lock:
                                    self._turns += 1
                                if self._delay:
                                    time.sleep(self._delay)
                                waiting = answered = False
                            if asks:
                                waiting, answered = True, False
                    else:
                        stream.answered(data)
                        answered = waiting
                    key.data.sendall(data)
        except OSError:
            return
        finally:
            selector.close()
            client.close()
            server.close()
