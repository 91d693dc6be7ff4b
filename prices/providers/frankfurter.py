"""Frankfurter (ECB reference rates, no key). Not a PriceProvider: it prices currencies against a
base, for converting holdings into a portfolio's currency."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from prices.providers.base import TransientError
from prices.providers.http import HttpClient, Reply, price_parse


class FrankfurterClient:
    name = "frankfurter"

    def __init__(self, *, base_url: str | None = None, timeout: float | None = None) -> None:
        self._http = HttpClient(self.name, base_url=base_url, timeout=timeout)

    def latest(self, base: str, symbols: list[str]) -> tuple[date, dict[str, Decimal]]:
        """The latest published rates: (their date, {currency: units per 1 `base`})."""
        data = self._get("/latest", base, symbols)
        day = _date(data.get("date"))
        if day is None:
            raise TransientError(f"frankfurter: no date in {str(data)[:200]!r}")
        return day, _rates(data.get("rates"))

    def series(
        self, base: str, symbols: list[str], start: date, end: date
    ) -> dict[date, dict[str, Decimal]]:
        """Rates per business day. The first date may precede `start`: when `start` is not a
        business day Frankfurter begins with the last rate published before it, which is the
        rate in force on `start`."""
        if start > end:
            return {}
        data = self._get(f"/{start.isoformat()}..{end.isoformat()}", base, symbols)
        by_date = data.get("rates")
        if not isinstance(by_date, dict):
            raise TransientError(f"frankfurter: no rates in {str(data)[:200]!r}")
        series: dict[date, dict[str, Decimal]] = {}
        for day_text, rates in sorted(by_date.items()):
            day = _date(day_text)
            if day is not None and day <= end:
                series[day] = _rates(rates)
        return series

    def _get(self, path: str, base: str, symbols: list[str]) -> dict[str, Any]:
        params = {"base": base.upper()}
        if symbols:
            params["symbols"] = ",".join(symbol.upper() for symbol in symbols)
        reply: Reply = self._http.get(path, params=params)
        # 404 {"message":"not found"} (unknown currency) and 422 (bad pair) are PermanentError.
        self._http.raise_for_status(reply)
        data = self._http.json(reply)
        if not isinstance(data, dict):
            raise TransientError(f"frankfurter: unexpected body {self._http.snippet(reply)!r}")
        return data


def _rates(raw: Any) -> dict[str, Decimal]:
    if not isinstance(raw, dict):
        raise TransientError(f"frankfurter: rates are not an object: {str(raw)[:200]!r}")
    rates = {}
    for currency, value in raw.items():
        rate = price_parse(value)
        if rate is not None:  # a null or zero rate is never a rate
            rates[str(currency).upper()] = rate
    return rates


def _date(value: Any) -> date | None:
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        return None
