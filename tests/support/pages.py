"""A local HTTP server standing in for a public site (an API, a web page): loopback only, in a
thread of the test process, so flows reach it through the egress policy's allow-list."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# What a GET of a path answers: (content type, body).
Page = Callable[[str], tuple[str, bytes]]


class PageServer:
    """Answers each GET with ``page(path)``, 200, and records the paths asked for."""

    def __init__(self, page: Page) -> None:
        self.paths: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                owner.paths.append(self.path)
                kind, body = page(self.path)
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@contextmanager
def serving(page: Page) -> Iterator[PageServer]:
    """A ``PageServer`` for the block; shut down after it."""
    server = PageServer(page)
    try:
        yield server
    finally:
        server.close()
