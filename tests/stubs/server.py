"""A scripted HTTP server on loopback, standing in for a market-data provider.

Each test scripts the responses of a path (status, headers, body, delays, truncation); the server
records every request it receives and the largest number it was serving at once. Real sockets,
real HTTP: the client code under test runs exactly as it does against the real provider.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

JSON = "application/json; charset=utf-8"
TEXT = "text/plain; charset=utf-8"
CSV = "text/csv"
HTML = "text/html; charset=utf-8"


@dataclass(frozen=True)
class StubResponse:
    status: int = 200
    body: str | bytes = b""
    content_type: str = JSON
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before the status line: a slow server (timeouts)
    chunks: int = 1  # the body is sent in this many pieces ...
    chunk_delay: float = 0.0  # ... with this pause before each: a trickling server
    truncate_at: int | None = None  # announce the full length, send this many bytes, hang up

    @property
    def payload(self) -> bytes:
        return self.body.encode() if isinstance(self.body, str) else self.body


def json_response(body: str, status: int = 200, **kwargs: Any) -> StubResponse:
    return StubResponse(status=status, body=body, content_type=JSON, **kwargs)


def text_response(body: str, status: int = 200, **kwargs: Any) -> StubResponse:
    return StubResponse(status=status, body=body, content_type=TEXT, **kwargs)


def csv_response(body: str, status: int = 200, **kwargs: Any) -> StubResponse:
    return StubResponse(status=status, body=body, content_type=CSV, **kwargs)


def html_response(body: str | None = None, status: int = 200, **kwargs: Any) -> StubResponse:
    page = body or (
        "<!DOCTYPE html><html><head><title>Just a moment...</title></head><body></body></html>"
    )
    return StubResponse(status=status, body=page, content_type=HTML, **kwargs)


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str  # percent-decoded, without the query
    raw_path: str  # as sent on the request line, query included
    query: dict[str, list[str]]
    headers: dict[str, str]  # names lower-cased
    client_port: int  # the same port on two requests = one kept-alive connection

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


class StubServer:
    """Start with `start()` (or the `running()` context manager), script with `route()`."""

    def __init__(self) -> None:
        self._routes: dict[str, list[StubResponse]] = {}
        self._served: dict[str, int] = {}
        self._lock = threading.Lock()
        self.requests: list[RecordedRequest] = []
        self.unrouted: list[str] = []  # requests to paths no test scripted: always a test bug
        self.in_flight = 0
        self.max_in_flight = 0
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._httpd is not None, "stub server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def route(self, path: str, *responses: StubResponse) -> None:
        """Serve `responses` to GETs of `path` in order; the last one repeats."""
        if not responses:
            raise ValueError("a route needs at least one response")
        with self._lock:
            self._routes[path] = list(responses)
            self._served[path] = 0

    def requests_to(self, path: str) -> list[RecordedRequest]:
        with self._lock:
            return [request for request in self.requests if request.path == path]

    def start(self) -> None:
        handler = type("StubHandler", (_Handler,), {"stub": self})
        self._httpd = _Server(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=2)

    @contextmanager
    def running(self) -> Iterator[StubServer]:
        self.start()
        try:
            yield self
        finally:
            self.stop()

    def _record(self, request: RecordedRequest) -> StubResponse | None:
        with self._lock:
            self.requests.append(request)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            responses = self._routes.get(request.path)
            if responses is None:
                self.unrouted.append(request.raw_path)
                return None
            index = min(self._served[request.path], len(responses) - 1)
            self._served[request.path] += 1
            return responses[index]

    def _done(self) -> None:
        with self._lock:
            self.in_flight -= 1


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a handler still sleeping out a scripted delay never blocks stop()

    def handle_error(self, request: object, client_address: object) -> None:
        # Clients that time out hang up mid-response on purpose; that is not a stub failure.
        pass


class _Handler(BaseHTTPRequestHandler):
    stub: StubServer
    protocol_version = "HTTP/1.1"  # keep-alive, so the client's connection pool is exercised
    timeout = 5  # idle keep-alive connections are dropped after this

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        request = RecordedRequest(
            method="GET",
            path=unquote(parts.path),
            raw_path=self.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={name.lower(): value for name, value in self.headers.items()},
            client_port=self.client_address[1],
        )
        response = self.stub._record(request)
        try:
            if response is None:
                response = StubResponse(
                    status=501, body=f"stub: no route for {request.path}", content_type=TEXT
                )
            self._send(response)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            self.stub._done()

    def _send(self, response: StubResponse) -> None:
        if response.delay:
            time.sleep(response.delay)
        payload = response.payload
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        if response.truncate_at is not None:
            self.send_header("Connection", "close")
        self.end_headers()
        if response.truncate_at is not None:
            self.wfile.write(payload[: response.truncate_at])
            self.wfile.flush()
            self.close_connection = True
            return
        size = -(-len(payload) // max(1, response.chunks))  # ceiling division
        for start in range(0, len(payload), max(1, size)):
            if response.chunk_delay:
                time.sleep(response.chunk_delay)
            self.wfile.write(payload[start : start + size])
            self.wfile.flush()

    def log_message(self, format: str, *args: object) -> None:
        pass  # the recorded requests are the log
