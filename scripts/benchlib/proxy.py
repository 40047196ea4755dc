"""A TCP proxy in front of PostgreSQL that counts round trips, and can add latency to each.

A round trip is a burst of bytes from the client that follows the server's last answer (or
opens the connection): libpq sends each batch of messages in one write and then waits, so
the count is deterministic, unlike any timing.
"""

from __future__ import annotations

import selectors
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["RoundTripProxy"]


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
        server_spoke_last = True
        try:
            while True:
                for key, _ in selector.select():
                    source: socket.socket = key.fileobj  # type: ignore[assignment]
                    data = source.recv(1 << 16)
                    if not data:
                        return
                    if source is client:
                        self.sent += data
                        if server_spoke_last:
                            with self._lock:
                                self._turns += 1
                            if self._delay:
                                time.sleep(self._delay)
                        server_spoke_last = False
                    else:
                        server_spoke_last = True
                    key.data.sendall(data)
        except OSError:
            return
        finally:
            selector.close()
            client.close()
            server.close()
