"""Loopback look-alikes of Frankfurter (FX) and CoinGecko (crypto) that compute their answers by date,
for whole-system tests where workers fetch history: any date range gets rates or prices in the providers'
exact wire formats, from functions a test sets. CoinGecko's `/search` finds the coins of `world.coins`
(id -> (name, ticker); bitcoin and ethereum by default) by id, name or ticker.

    with WorldStub(rate_of=lambda base, quote, day: Decimal("0.9")).running() as world:
        settings.PROVIDERS = {**settings.PROVIDERS, "frankfurter": {"base_url": world.url + "/v1", ...}}
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

RateOf = Callable[[str, str, date], Decimal | None]  # (base, quote, day) -> rate, None: no such currency
CoinPriceOf = Callable[[str, date], Decimal | None]  # (coin id, day) -> USD price, None: unknown coin


class WorldStub:
    def __init__(self, *, rate_of: RateOf | None = None, coin_price_of: CoinPriceOf | None = None,
                 today: date | None = None) -> None:
        self.rate_of = rate_of or (lambda base, quote, day: None)
        self.coin_price_of = coin_price_of or (lambda coin, day: None)
        self.today = today
        self.coins: dict[str, tuple[str, str]] = {"bitcoin": ("Bitcoin", "BTC"), "ethereum": ("Ethereum", "ETH"),
                                                  "wrapped-bitcoin": ("Wrapped Bitcoin", "WBTC")}
        self.requests: list[str] = []
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._httpd is not None
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @contextmanager
    def running(self) -> Iterator[WorldStub]:
        handler = type("WorldHandler", (_Handler,), {"world": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._httpd.shutdown()
            self._httpd.server_close()
            thread.join(timeout=2)

    def today_get(self) -> date:
        return self.today or datetime.now(UTC).date()

    # --- Frankfurter: /v1/<start>..<end>?base=&symbols= and /v1/latest

    def fx_series(self, start: date, end: date, base: str, symbols: list[str]) -> tuple[int, dict]:
        end = min(end, self.today_get())
        # ECB business days; a start that is not one begins with the last one before it (rate in force).
        first = start
        while first.weekday() >= 5:
            first -= timedelta(days=1)
        days = [first + timedelta(days=n) for n in range((end - first).days + 1)]
        days = [d for d in days if d.weekday() < 5]
        rates = {}
        for day in days:
            row = {quote: self.rate_of(base, quote, day) for quote in symbols}
            if any(value is None for value in row.values()):
                return 404, {"message": "not found"}
            rates[day.isoformat()] = {quote: float(value) for quote, value in row.items()}
        return 200, {"amount": 1.0, "base": base, "start_date": days[0].isoformat() if days else start.isoformat(),
                     "end_date": days[-1].isoformat() if days else end.isoformat(), "rates": rates}

    # --- CoinGecko: /coins/<id>/market_chart?vs_currency=usd&days=N&interval=daily

    def coin_chart(self, coin: str, days: int) -> tuple[int, dict]:
        today = self.today_get()
        points = []
        for back in range(days, -1, -1):
            day = today - timedelta(days=back)
            price = self.coin_price_of(coin, day)
            if price is None:
                return 404, {"error": "coin not found"}
            stamp = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)
            points.append([stamp, float(price)])
        return 200, {"prices": points, "market_caps": [[p[0], 1e9] for p in points],
                     "total_volumes": [[p[0], 1e7] for p in points]}

    def coin_search(self, query: str) -> tuple[int, dict]:
        wanted = query.strip().lower()
        coins = [{"id": coin_id, "name": name, "api_symbol": coin_id, "symbol": ticker, "market_cap_rank": rank,
                  "thumb": f"https://coin-images.coingecko.com/coins/images/{rank}/thumb/{coin_id}.png",
                  "large": f"https://coin-images.coingecko.com/coins/images/{rank}/large/{coin_id}.png"}
                 for rank, (coin_id, (name, ticker)) in enumerate(sorted(self.coins.items()), start=1)
                 if wanted in coin_id or wanted in name.lower() or ticker.lower().startswith(wanted)]
        return 200, {"coins": coins, "exchanges": [], "icos": [], "categories": [], "nfts": []}

    def coin_prices(self, ids: list[str]) -> tuple[int, dict]:
        now = datetime.now(UTC)
        body = {}
        for coin in ids:
            price = self.coin_price_of(coin, now.date())
            if price is not None:  # unknown ids are absent
                body[coin] = {"usd": float(price), "last_updated_at": int(now.timestamp())}
        return 200, body


class _Handler(BaseHTTPRequestHandler):
    world: WorldStub
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        path = unquote(parts.path)
        with self.world._lock:
            self.world.requests.append(self.path)
        symbols = [s for s in query.get("symbols", "").split(",") if s]
        if path.startswith("/v1/") and ".." in path:
            start, end = path.removeprefix("/v1/").split("..")
            status, body = self.world.fx_series(date.fromisoformat(start), date.fromisoformat(end),
                                                query.get("base", "EUR"), symbols)
        elif path == "/v1/latest":
            status, body = self.world.fx_series(self.world.today_get(), self.world.today_get(),
                                                query.get("base", "EUR"), symbols)
            if status == 200:
                day, rates = sorted(body["rates"].items())[-1]
                body = {"amount": 1.0, "base": body["base"], "date": day, "rates": rates}
        elif path.startswith("/api/v3/coins/") and path.endswith("/market_chart"):
            status, body = self.world.coin_chart(path.split("/")[4], int(query.get("days", "1")))
        elif path == "/api/v3/search":
            status, body = self.world.coin_search(query.get("query", ""))
        elif path == "/api/v3/simple/price":
            status, body = self.world.coin_prices([i for i in query.get("ids", "").split(",") if i])
        else:
            status, body = 404, {"error": "no such path"}
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
