"""What every HTTP provider client shares: a pooled session, timeouts, and the mapping of transport
failures and error statuses onto the taxonomy of `prices.providers.base`.

Clients never retry: one call is one HTTP request (Yahoo's crumb dance excepted). Retries, backoff
and pacing belong to the price service, which decides from the class of the error raised here.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3
from django.conf import settings
from requests.adapters import HTTPAdapter

from prices.providers.base import PermanentError, PriceProvider, RateLimitedError, TransientError

# Connections kept per host: a worker process running batch tasks in threads may have this many
# requests in flight to one provider; beyond it urllib3 opens (and drops) extra connections.
POOL_MAXSIZE = 16
# requests' timeout bounds each socket operation, so a server trickling one byte at a time never
# trips it; reading the body stops once the whole call has taken this multiple of the timeout.
TOTAL_DEADLINE_FACTOR = 3
# A quote batch or 20 years of daily bars is well under a megabyte; anything this large is garbage.
MAX_BODY_BYTES = 20 * 1024 * 1024
USER_AGENT = "Folio/0.1 (self-hosted portfolio tracker)"


class HttpProvider(PriceProvider):
    """A provider spoken to over HTTP: one pooled client per instance, and a clock tests can freeze.
    `base_url`, `api_key` and `timeout` override settings (tests point clients at stub servers)."""

    user_agent: str = ""  # "" = HttpClient's own

    def __init__(
        self,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        options = {"user_agent": self.user_agent} if self.user_agent else {}
        self._http = HttpClient(self.name, base_url=base_url, api_key=api_key, timeout=timeout, **options)
        self._clock = clock or (lambda: datetime.now(UTC))


@dataclass(frozen=True)
class Reply:
    """A fully read HTTP response (the session's connection is already back in the pool)."""

    status: int
    headers: Mapping[str, str]  # case-insensitive
    body: bytes
    encoding: str

    @property
    def text(self) -> str:
        try:
            return self.body.decode(self.encoding, errors="replace")
        except LookupError:  # a charset Python does not know
            return self.body.decode("utf-8", errors="replace")

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "").split(";")[0].strip().lower()


class HttpClient:
    """One provider's pooled session. `base_url`, `api_key` and `timeout` default to
    `settings.PROVIDERS[provider]` and `settings.PROVIDER_TIMEOUT_SECONDS`; an empty `api_key`
    means "send no key" even when settings have one."""

    def __init__(
        self,
        provider: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float | None = None,
        user_agent: str = USER_AGENT,
    ) -> None:
        config = settings.PROVIDERS.get(provider, {})
        self.provider = provider
        self.base_url = (base_url or config.get("base_url") or "").rstrip("/")
        if not self.base_url:
            raise PermanentError(f"{provider}: no base_url configured")
        self.api_key: str | None = (config.get("api_key") if api_key is None else api_key) or None
        self.timeout = float(settings.PROVIDER_TIMEOUT_SECONDS if timeout is None else timeout)
        self.session = requests.Session()
        # max_retries=0: a retry here would be invisible to the rate-limit bucket and the backoff.
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=POOL_MAXSIZE, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers["User-Agent"] = user_agent

    def url(self, path: str) -> str:
        """`path` below the base URL; an absolute URL is used as it is."""
        if urlsplit(path).scheme:
            return path
        return f"{self.base_url}/{path.lstrip('/')}"

    def get(
        self,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        query: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        """One GET. `query` is a pre-encoded query string for APIs whose syntax `params` cannot
        express (Stooq's bare `&h` flag). Raises only for transport failures: status codes and
        bodies are for the caller to classify (see `raise_for_status`)."""
        url = self.url(path)
        if query:
            url = f"{url}{'&' if '?' in url else '?'}{query}"
        deadline = time.monotonic() + self.timeout * TOTAL_DEADLINE_FACTOR
        try:
            with self.session.get(
                url, params=params, headers=headers, timeout=self.timeout, stream=True
            ) as response:
                body = _read_body(response, deadline, self.provider)
                return Reply(
                    status=response.status_code,
                    headers=response.headers,
                    body=body,
                    encoding=response.encoding or "utf-8",
                )
        except (
            requests.exceptions.InvalidURL,
            requests.exceptions.MissingSchema,
            requests.exceptions.InvalidSchema,
        ) as exc:
            raise PermanentError(f"{self.provider}: bad URL: {self.redact(exc)}") from None
        except requests.exceptions.RequestException as exc:
            # Timeouts, refused connections, resets, truncated bodies: the server may do better
            # next time. `from None` because the chained exception would print the key.
            raise TransientError(
                f"{self.provider}: {type(exc).__name__}: {self.redact(exc)}"
            ) from None

    def redact(self, text: object) -> str:
        """`text` without the API key (Alpha Vantage, for one, echoes the key in its messages)."""
        text = str(text)
        return text.replace(self.api_key, "***") if self.api_key else text

    def snippet(self, reply: Reply, limit: int = 200) -> str:
        """The start of a body, on one line and redacted, for an error message."""
        return self.redact(" ".join(reply.text.split()))[:limit]

    def raise_for_status(self, reply: Reply) -> None:
        """The status-only part of the taxonomy, for whatever the provider-specific checks left."""
        status = reply.status
        if status < 400:
            return
        if status == 429:
            raise RateLimitedError(
                f"{self.provider}: HTTP 429 {self.snippet(reply)}",
                retry_after=retry_after_parse(reply.headers.get("Retry-After")),
            )
        if status >= 500 or status == 408:
            raise TransientError(f"{self.provider}: HTTP {status} {self.snippet(reply)}")
        if looks_like_html(reply):
            # A CDN or bot-protection page, not the API's answer: it may let us through later.
            raise TransientError(f"{self.provider}: HTTP {status} with an HTML page")
        raise PermanentError(f"{self.provider}: HTTP {status} {self.snippet(reply)}")

    def json(self, reply: Reply) -> Any:
        """The body as JSON with every non-integer number as an exact Decimal. HTML, empty or
        malformed (e.g. truncated) bodies are TransientError: the next answer may be whole."""
        if looks_like_html(reply):
            raise TransientError(f"{self.provider}: HTML page where JSON was expected")
        try:
            # Bytes, not text: json detects UTF-8/16/32 itself, whatever the charset header says.
            return json.loads(
                reply.body,
                parse_float=Decimal,
                parse_constant=Decimal,  # NaN / Infinity: rejected later by price_parse
            )
        except (ValueError, UnicodeDecodeError):
            raise TransientError(
                f"{self.provider}: malformed JSON: {self.snippet(reply)!r}"
            ) from None

    def text(self, reply: Reply) -> str:
        """The body as text for CSV APIs; an HTML page is never data."""
        if looks_like_html(reply):
            raise TransientError(f"{self.provider}: HTML page where CSV was expected")
        return reply.text

    def close(self) -> None:
        self.session.close()


def _read_body(response: requests.Response, deadline: float, provider: str) -> bytes:
    """The whole body, checking the deadline after every read. `read1` returns whatever has
    arrived (iter_content would block until a full chunk), so a trickle is noticed in time."""
    chunks: list[bytes] = []
    size = 0
    try:
        while chunk := response.raw.read1(65536, decode_content=True):
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise TransientError(f"{provider}: response larger than {MAX_BODY_BYTES} bytes")
            if time.monotonic() > deadline:
                raise TransientError(f"{provider}: body not complete within the deadline")
    except urllib3.exceptions.HTTPError as exc:
        # Below requests' wrapping: read timeouts, truncated bodies, broken gzip.
        raise requests.exceptions.ConnectionError(exc) from exc
    return b"".join(chunks)


def retry_after_parse(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP-date (RFC 9110).
    None when absent or unreadable; never negative."""
    if not value or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP-date is always GMT
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def looks_like_html(reply: Reply) -> bool:
    """An error page, bot wall or consent page where the API's own JSON or CSV was expected."""
    if reply.content_type in ("text/html", "application/xhtml+xml"):
        return True
    return reply.body.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"<"


def price_parse(value: object) -> Decimal | None:
    """A positive, finite Decimal, or None for null, zero, negative or non-numeric values (a
    provider's placeholder must never be stored as a price)."""
    if value is None or isinstance(value, bool | float):
        return None  # HttpClient.json never yields floats; refusing them keeps it so
    if isinstance(value, dict):  # Yahoo's formatted numbers: {"raw": 1.5, "fmt": "1.50"}
        return price_parse(value.get("raw"))
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    if not number.is_finite() or number <= 0:
        return None
    return number


def text_field(value: object) -> str:
    """A text field of a provider's answer, trimmed; "" when absent or not text."""
    return value.strip() if isinstance(value, str) else ""


def list_field(data: object, key: str, *, http: HttpClient, reply: Reply, what: str) -> list:
    """The answer's list under `key`; any other shape is garbage (retried), never "nothing found"."""
    rows = data.get(key) if isinstance(data, dict) else None
    if not isinstance(rows, list):
        raise TransientError(f"{http.provider}: unexpected {what} body {http.snippet(reply)!r}")
    return rows


def utc_from_unix(value: object) -> datetime | None:
    """A timezone-aware UTC datetime from Unix seconds, or None when missing or implausible."""
    if isinstance(value, dict):
        value = value.get("raw")
    if value is None or isinstance(value, bool | float):
        return None
    try:
        seconds = int(Decimal(str(value)))
    except (InvalidOperation, ValueError):
        return None
    if seconds <= 0:
        return None
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def unique(symbols: list[str]) -> list[str]:
    """Symbols in their first-seen order without duplicates (one request never asks twice)."""
    return list(dict.fromkeys(symbols))


def check_batch_size(symbols: list[str], limit: int, provider: str) -> None:
    if len(symbols) > limit:
        # A caller bug, not a provider failure: batching is the price service's job.
        raise ValueError(f"{provider}: {len(symbols)} symbols in one request, at most {limit}")
