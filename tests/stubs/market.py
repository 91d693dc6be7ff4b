"""A loopback stand-in for Yahoo Finance that answers by symbol, for whole-system tests and benches.

Where `StubServer` plays scripted replies per path (client tests), `MarketStub` computes them: any
batch of symbols gets a quote per known symbol in Yahoo's exact v7 format (behind the cookie +
crumb handshake), history comes from v8 charts, and failures can be injected per symbol or per
request number. It counts requests and the most it served at once, so tests can assert batching,
pacing and real concurrency.

Splits: `market.splits["AAPL"] = [(date(2026, 6, 10), 2, 1)]` makes 10 June the first session after
a 2-for-1 split. Like Yahoo, charts then carry closes adjusted for every split that has happened by
the stub's `today` (whatever the requested window) and list, under `events.splits`, only the splits
dated inside the window. Each symbol trades at `stub_price(symbol)` after its splits, so its actual
close before a 2:1 split is twice that (`close_on`) and every adjusted close is `stub_price`.

What it is: `market.currencies["NESN.SW"] = "CHF"` and `market.types["NESN.SW"] = "EQUITY"` set the
currency and type its quotes (`currency`, `quoteType`) and charts (`meta.currency`,
`meta.instrumentType`) state; by default USD, charts say EQUITY and quotes name no type.

Search and profiles: `market.names["AAPL"] = "Apple Inc."` lists a symbol for `v1/finance/search` (matched
by symbol prefix or name, as Yahoo's exact format; no news), and `market.profiles["AAPL"] = {"sector": …,
"industry": …, "country": …}` (or `{"sectorWeightings": {"technology": 0.3}}` for a fund) is what
`v10/finance/quoteSummary` answers behind the crumb; an unknown prefix gets Yahoo's 404 body.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from math import floor
from urllib.parse import parse_qs, unquote, urlsplit

CRUMB = "Xk2sFh0bR7q"
COOKIE = "A3=d=AQABBStub; Path=/; HttpOnly"


def stub_price(symbol: str) -> str:
    """A stable, symbol-specific price with cents, as Yahoo would send it (a JSON number)."""
    return f"{100 + sum(map(ord, symbol)) % 900}.{sum(map(ord, symbol)) % 97:02d}"


def bar_stamp(day: date) -> int:
    """Yahoo stamps a New York session's bar (and a split's event) at its 09:30 open."""
    return int(datetime(day.year, day.month, day.day, 14, 30, tzinfo=UTC).timestamp())


def _six_places(value: Fraction) -> Decimal:
    """A positive price rounded half up to the 6 places of a stored close."""
    return Decimal(floor(value * 10**6 + Fraction(1, 2))).scaleb(-6)


@dataclass
class Injected:
    """A reply forced on the Nth quote request (1-based), instead of the computed one."""

    status: int
    body: str
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


class MarketStub:
    def __init__(self, *, latency: float = 0.0) -> None:
        self.latency = latency  # seconds each quote/chart request takes
        self.unknown_prefix = "ZZ"  # symbols Yahoo silently leaves out of v7 answers
        self.failing_symbols: set[str] = set()  # any batch holding one of these answers 500
        self.injected: dict[int, Injected] = {}  # quote request number -> forced reply
        self.on_quote: Callable[[list[str]], None] | None = None
        # symbol -> [(ex-date, numerator, denominator)]: (date(2026, 6, 10), 2, 1) is a 2-for-1 split
        # whose first post-split session is 10 June; (d, 1, 10) a 1-for-10 reverse split.
        self.splits: dict[str, list[tuple[date, int, int]]] = {}
        self.today: date | None = None  # the stub's clock (None: today in UTC); later splits have not happened
        # When its quotes say they were made (regularMarketTime; None: now). A quote belongs to the session of
        # its time on New York's clock, which is the day before the UTC date from 00:00 to 04:00/05:00 UTC.
        self.quote_time: datetime | None = None
        # (symbol, day) -> what it traded at that day, in today's shares (after every split so far); quotes
        # are today's. Default: stub_price, the same every day.
        self.price_of: Callable[[str, date], Decimal] | None = None
        # symbol -> what Yahoo says it is: its currency (default USD) and its type (quote `quoteType`,
        # chart `meta.instrumentType`; default: charts say EQUITY, quotes say nothing).
        self.currencies: dict[str, str] = {}
        self.types: dict[str, str] = {}
        self.names: dict[str, str] = {}  # symbol -> long name, what search finds
        self.profiles: dict[str, dict] = {}  # symbol -> assetProfile fields, or {"sectorWeightings": {...}}
        self.search_requests: list[str] = []
        self.profile_requests: list[str] = []
        self.quote_requests: list[list[str]] = []
        self.chart_requests: list[str] = []
        self.request_times: list[float] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._httpd is not None
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @contextmanager
    def running(self) -> Iterator[MarketStub]:
        handler = type("MarketHandler", (_Handler,), {"market": self})
        self._httpd = _Server(("127.0.0.1", 0), handler)
        thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._httpd.shutdown()
            self._httpd.server_close()
            thread.join(timeout=2)

    # --- the market

    def today_get(self) -> date:
        return self.today or datetime.now(UTC).date()

    def _done_splits(self, symbol: str) -> list[tuple[date, int, int]]:
        """The symbol's splits that have happened by the stub's today."""
        return [split for split in self.splits.get(symbol, []) if split[0] <= self.today_get()]

    def _split_factor(self, symbol: str, day: date) -> Fraction:
        """How many of today's shares one share held on `day` became."""
        factor = Fraction(1)
        for ex_date, numerator, denominator in self._done_splits(symbol):
            if ex_date > day:
                factor *= Fraction(numerator, denominator)
        return factor

    def _base_price(self, symbol: str, day: date) -> Decimal:
        """The price in today's shares (after every split that has happened)."""
        return self.price_of(symbol, day) if self.price_of else Decimal(stub_price(symbol))

    def _quote_price(self, symbol: str) -> Decimal:
        return self._base_price(symbol, self.today_get()) if self.price_of else Decimal(stub_price(symbol))

    def close_on(self, symbol: str, day: date) -> Decimal:
        """What `symbol` actually closed at on `day` (6 places, half up), before any adjustment."""
        return _six_places(Fraction(self._base_price(symbol, day)) * self._split_factor(symbol, day))

    def adjusted_close_on(self, symbol: str, day: date) -> Decimal:
        """The close of `day` as Yahoo's chart sends it today: divided by every later split."""
        actual = Fraction(self._base_price(symbol, day)) * self._split_factor(symbol, day)
        return _six_places(actual / self._split_factor(symbol, day))

    # --- replies

    def quote_reply(self, symbols: list[str]) -> tuple[int, str, str, dict[str, str]]:
        with self._lock:
            self.quote_requests.append(symbols)
            self.request_times.append(time.monotonic())
            number = len(self.quote_requests)
        if number in self.injected:
            forced = self.injected[number]
            return forced.status, forced.body, forced.content_type, forced.headers
        if self.failing_symbols & set(symbols):
            return 500, "<html><body>Internal Server Error</body></html>", "text/html", {}
        now = int((self.quote_time or datetime.now(UTC)).timestamp())
        result = [
            {"symbol": symbol, "currency": self.currencies.get(symbol, "USD"), "marketState": "REGULAR",
             "exchangeTimezoneName": "America/New_York", "regularMarketPrice": float(self._quote_price(symbol)),
             "regularMarketChange": 0.01, "regularMarketPreviousClose": 100.0, "regularMarketTime": now,
             **({"quoteType": self.types[symbol]} if symbol in self.types else {})}
            for symbol in symbols if not symbol.startswith(self.unknown_prefix)
        ]
        # json.dumps writes a float's shortest form: 123.45 goes on the wire as exactly 123.45.
        return 200, json.dumps({"quoteResponse": {"result": result, "error": None}}), "application/json", {}

    @staticmethod
    def quote_json(prices: dict[str, float]) -> str:
        """A v7 quote answer with exactly these prices (for `Injected`: one absurd value among good ones)."""
        now = int(datetime.now(UTC).timestamp())
        result = [
            {"symbol": symbol, "currency": "USD", "marketState": "REGULAR",
             "exchangeTimezoneName": "America/New_York", "regularMarketPrice": price,
             "regularMarketChange": 0.01, "regularMarketPreviousClose": 100.0, "regularMarketTime": now}
            for symbol, price in prices.items()
        ]
        return json.dumps({"quoteResponse": {"result": result, "error": None}})

    def search_reply(self, query: str) -> tuple[int, str, str, dict[str, str]]:
        with self._lock:
            self.search_requests.append(query)
        wanted = query.strip().lower()
        quotes = [
            {"exchange": "NMS", "shortname": name[:30], "quoteType": self.types.get(symbol, "EQUITY"), "symbol": symbol,
             "index": "quotes", "score": 20000.0, "typeDisp": self.types.get(symbol, "Equity").title(),
             "longname": name, "exchDisp": "NASDAQ", "isYahooFinance": True}
            for symbol, name in sorted(self.names.items())
            if not symbol.startswith(self.unknown_prefix)
            and (symbol.lower().startswith(wanted) or wanted in name.lower())
        ]
        body = {"explains": [], "count": len(quotes), "quotes": quotes, "news": [], "nav": [], "lists": [],
                "researchReports": [], "totalTime": 12}
        return 200, json.dumps(body), "application/json", {}

    def profile_reply(self, symbol: str) -> tuple[int, str, str, dict[str, str]]:
        with self._lock:
            self.profile_requests.append(symbol)
        if symbol.startswith(self.unknown_prefix):
            error = {"code": "Not Found", "description": f"Quote not found for symbol: {symbol}"}
            return 404, json.dumps({"quoteSummary": {"result": None, "error": error}}), "application/json", {}
        facts = dict(self.profiles.get(symbol, {}))
        weights = facts.pop("sectorWeightings", None)
        result: dict = {"price": {"currency": self.currencies.get(symbol, "USD"),
                                  "quoteType": self.types.get(symbol, "EQUITY"), "symbol": symbol}}
        if facts:
            result["assetProfile"] = {**facts, "maxAge": 86400}
        if weights is not None:
            result["topHoldings"] = {"maxAge": 1, "sectorWeightings": [
                {key: {"raw": value, "fmt": f"{value * 100:.2f}%"}} for key, value in weights.items()]}
        return 200, json.dumps({"quoteSummary": {"result": [result], "error": None}}), "application/json", {}

    def chart_reply(self, symbol: str, period1: int, period2: int,
                    events: str = "") -> tuple[int, str, str, dict[str, str]]:
        with self._lock:
            self.chart_requests.append(symbol)
        if symbol.startswith(self.unknown_prefix):
            body = {"chart": {"result": None, "error": {"code": "Not Found",
                                                       "description": "No data found, symbol may be delisted"}}}
            return 404, json.dumps(body), "application/json", {}
        start = datetime.fromtimestamp(period1, UTC).date()
        end = datetime.fromtimestamp(period2, UTC).date()
        days = [start + timedelta(days=n) for n in range((end - start).days + 1)]
        days = [d for d in days if d.weekday() < 5]
        stamps = [bar_stamp(d) for d in days]
        # json.dumps writes a float's shortest form, so these go on the wire as their decimal digits.
        closes = [float(self.adjusted_close_on(symbol, d)) for d in days]
        result = {
            "meta": {"currency": self.currencies.get(symbol, "USD"), "symbol": symbol, "exchangeName": "NYQ",
                     "instrumentType": self.types.get(symbol, "EQUITY"),
                     "gmtoffset": -18000, "timezone": "EST", "exchangeTimezoneName": "America/New_York",
                     "regularMarketPrice": closes[-1] if closes else None, "priceHint": 2, "dataGranularity": "1d"},
            "timestamp": stamps,
            "indicators": {"quote": [{"close": closes, "open": closes, "high": closes, "low": closes,
                                      "volume": [1000] * len(days)}],
                           "adjclose": [{"adjclose": closes}]},
        }
        splits = {
            str(bar_stamp(ex_date)): {"date": bar_stamp(ex_date), "numerator": numerator,
                                      "denominator": denominator, "splitRatio": f"{numerator}:{denominator}"}
            for ex_date, numerator, denominator in self._done_splits(symbol)
            if period1 <= bar_stamp(ex_date) <= period2
        }
        # Yahoo lists events only when asked (`events=div,splits`), and only those inside the window.
        if splits and {"split", "splits"} & set(events.split(",")):
            result["events"] = {"splits": splits}
        body = {"chart": {"result": [result], "error": None}}
        return 200, json.dumps(body), "application/json", {}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def handle_error(self, request: object, client_address: object) -> None:
        pass


class _Handler(BaseHTTPRequestHandler):
    market: MarketStub
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: with Nagle on, the body waits for the client's delayed
    # ACK (~40 ms on Linux), which would add to every request on top of `latency`.
    disable_nagle_algorithm = True

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        path = unquote(parts.path)
        market = self.market
        with market._lock:
            market.in_flight += 1
            market.max_in_flight = max(market.max_in_flight, market.in_flight)
        try:
            if path == "/v1/test/getcrumb":
                self._send(200, CRUMB, "text/plain", {"Set-Cookie": COOKIE})
                return
            if market.latency:
                time.sleep(market.latency)
            if path == "/v1/finance/search":
                self._send(*market.search_reply(query.get("q", "")))
                return
            if path == "/v7/finance/quote" or path.startswith("/v10/finance/quoteSummary/"):
                if query.get("crumb") != CRUMB:
                    body = '{"finance":{"result":null,"error":{"code":"Unauthorized","description":"Invalid Crumb"}}}'
                    self._send(401, body, "application/json", {})
                    return
                if path.startswith("/v10/"):
                    self._send(*market.profile_reply(path.rsplit("/", 1)[1]))
                    return
                self._send(*market.quote_reply([s for s in query.get("symbols", "").split(",") if s]))
                return
            if path.startswith("/v8/finance/chart/"):
                self._send(*market.chart_reply(path.rsplit("/", 1)[1], int(query["period1"]),
                                               int(query["period2"]), query.get("events", "")))
                return
            self._send(404, '{"error":"no such path"}', "application/json", {})
        finally:
            with market._lock:
                market.in_flight -= 1

    def _send(self, status: int, body: str, content_type: str, headers: dict[str, str]) -> None:
        payload = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)
