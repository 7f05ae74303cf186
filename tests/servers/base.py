"""What the local provider servers share: a real HTTP server on 127.0.0.1 in a daemon thread."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self


class LocalServer:
    """start() / stop(), or use it as a context manager; `url` is its address plus `PATH`."""

    PATH = ""
    THREAD_NAME = "local-server"

    def _listen(self, host: str, port: int) -> None:
        self._server = ThreadingHTTPServer((host, port), self._handler())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}{self.PATH}"

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._server.serve_forever, name=self.THREAD_NAME, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def serve_until_interrupted(self) -> None:
        """For a manual run (`python -m tests.servers....`): serve until Ctrl-C, then stop."""
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            self.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
