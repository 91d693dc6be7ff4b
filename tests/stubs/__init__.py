"""Loopback HTTP stubs of the market-data providers (see server.py)."""

from tests.stubs.server import (
    CSV,
    HTML,
    JSON,
    TEXT,
    RecordedRequest,
    StubResponse,
    StubServer,
    csv_response,
    html_response,
    json_response,
    text_response,
)

__all__ = [
    "CSV",
    "HTML",
    "JSON",
    "TEXT",
    "RecordedRequest",
    "StubResponse",
    "StubServer",
    "csv_response",
    "html_response",
    "json_response",
    "text_response",
]
