"""A chart's live point: today's value, allocation and the figures ending today, at read time.

The cached chart is the history of completed sessions (charts.services leaves today's closes out, and an
intraday quote refresh does not regenerate it: portfolio.cache.history_changed). Today's point is the
generation's placeholder — today valued at the last completed closes — until a request moves it to the
current valuation, the one the dashboard computes and caches per data version (portfolio.dashboard): the
last point of every range becomes the dashboard's total, the allocation is that valuation's, and the
figures ending today move with it (charts.performance.range_live_apply); the benchmark's and the
sparklines' last points are today's closes. Only the last point of a range is decoded; nothing is
regenerated.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, localcontext
from functools import cached_property, partial
from math import nan

from charts.benchmark import benchmark_return
from charts.cache import CHART_LAYOUT
from charts.compute import InstrumentInfo, allocation_json
from charts.performance import LiveBase, RangePerformance, range_live_apply, twr_live
from charts.selectors import closes_on
from charts.sparklines import price_format
from portfolio.access import PortfolioAccess
from portfolio.dashboard import dashboard_part_derive, dashboard_part_get
from portfolio.holdings import EXACT_SUMS, ZERO, money_format
from portfolio.models import Portfolio


@dataclass(frozen=True)
class LiveValuation:
    """The dashboard's valuation of today, exact, and its allocation as the chart API sends it."""

    date: str
    total_value: Decimal
    unrealized_gain: Decimal
    local: dict[str, Decimal]  # value of the positions valued by instrument currency, in that currency
    allocation: bytes  # JSON (charts.compute.Allocation)
    # JSON: instrument id -> [value, value in its currency, currency] of each position valued, exact (read only for a
    # chart whose generation could not value some of them: LivePoint.entered)
    positions: bytes = b"{}"


# The allocation is made once per data version, not per chart request (a request only splices bytes): a part
# derived from the dashboard's "live" part, stored in the dashboard's cached hash (same version, same expiry:
# the day moves with the clock, as the dashboard's staleness flags do), by the first chart request of the version
# (with the dashboard's answers when it is their miss too). The dashboard's own misses leave it out: its totals and
# holdings are not kept waiting for an allocation the chart needs. Hits and misses are counted as `chart_live`.
# The part's name carries the chart layout: an allocation of another shape cached beside the dashboard's answers
# is never read as this one.
_SEPARATOR = b"\n"
_LIVE_PART = f"chart_live:l{CHART_LAYOUT}"


# InstrumentInfo made from a tuple of its fields by tuple.__new__: a fraction of the NamedTuple constructor's cost,
# once per position of every dashboard miss.
_info_new = partial(tuple.__new__, InstrumentInfo)


def _live_json(live_part: bytes) -> bytes:
    live = json.loads(live_part)
    positions = [(_info_new(row[:6]), Decimal(row[6])) for row in live["positions"]]
    allocation = allocation_json(valued=positions, total=Decimal(live["total_value"]))
    head = {name: live[name] for name in ("date", "total_value", "unrealized_gain", "local")}
    values = {row[0]: [row[6], row[7], row[4]] for row in live["positions"]}
    return json.dumps(head).encode() + _SEPARATOR + allocation.encode() + _SEPARATOR + json.dumps(values).encode()


dashboard_part_derive(_LIVE_PART, source="live", make=_live_json, stats="chart_live")


def live_valuation_get(*, portfolio: Portfolio | PortfolioAccess) -> LiveValuation:
    """The dashboard's current valuation (cached per data version; computed on a miss)."""
    head, allocation, positions = dashboard_part_get(portfolio=portfolio, part=_LIVE_PART).split(_SEPARATOR)
    live = json.loads(head)
    return LiveValuation(date=live["date"], total_value=Decimal(live["total_value"]),
                         unrealized_gain=Decimal(live["unrealized_gain"]),
                         local={code: Decimal(value) for code, value in live["local"].items()}, allocation=allocation,
                         positions=positions)


@dataclass(frozen=True)
class LivePoint:
    """A cached chart's today (its LiveBase) and the live valuation of that same day."""

    base: LiveBase
    live: LiveValuation

    @classmethod
    def of(cls, *, base: bytes | None, live: LiveValuation | None) -> LivePoint | None:
        """None unless both are of the same day (a chart of yesterday is outdated and served as it is)."""
        if base is None or live is None:
            return None
        decoded: LiveBase | None = json.loads(base)  # null: nothing held yet, no point today
        return cls(decoded, live) if decoded is not None and decoded["date"] == live.date else None

    @property
    def value_then(self) -> Decimal:
        return Decimal(self.base["value"])

    @cached_property
    def entered(self) -> tuple[Decimal, dict[str, Decimal], set[int]]:
        """What the live valuation adds to the money that came in today: the positions left out of yesterday's
        value that it values are entries, booked at their value today as a generation counting today's quotes
        books them, not gains — less what the generation booked for them (valued today at a trade or an earlier
        close). (That total in the base currency and by currency in that currency; and the instruments held today
        that the generation could not value and the live valuation values, whose "no price" warning goes.)
        Nothing for most charts: every position valued yesterday and today."""
        entries = self.base.get("entries") or {}  # a chart generated before they were kept: none
        unvalued = self.base.get("unvalued") or []
        total, by_currency, valued_now = ZERO, {}, set()
        if not entries and not unvalued:
            return total, by_currency, valued_now
        values = json.loads(self.live.positions)
        valued_now = {instrument_id for instrument_id in unvalued if str(instrument_id) in values}
        with localcontext(EXACT_SUMS):
            for instrument_id, (booked, booked_local) in entries.items():
                if (found := values.get(instrument_id)) is not None:
                    value, local, currency = found
                    total += Decimal(value) - Decimal(booked)
                    by_currency[currency] = by_currency.get(currency, ZERO) + Decimal(local) - Decimal(booked_local)
        return total, by_currency, valued_now

    def warnings(self, raw: bytes | None) -> bytes | None:
        """The chart's warnings (cached JSON) without the "no price" of a position the live valuation values."""
        ids = self.entered[2]
        if raw is None or not ids:
            return raw
        return json.dumps([w for w in json.loads(raw)
                           if not (w["code"] == "no_price" and w.get("instrument_id") in ids)]).encode()

    def _growth_live(self, growth: float) -> float | None:
        """The benchmark comparison's growth of the portfolio (charts.performance.twr_growth_index) at today,
        its factor of today made with the live value; None when it cannot be moved."""
        twr = twr_live(growth - 1.0, previous=self.base["previous"], flow=self.base["flow"],
                       value_then=float(self.value_then), value=float(self.live.total_value),
                       entered=float(self.entered[0]))
        return None if twr is None else twr + 1.0

    def series(self, raw: bytes) -> bytes:
        """A range's points (cached JSON) with the last one — today — at the live value."""
        return _last_point_replaced(raw, date=self.live.date,
                                    change=lambda point: {**point, "value": money_format(self.live.total_value)})

    def benchmark(self, key: str, raw: bytes | None, *, close: float | None) -> bytes | None:
        """A range's benchmark comparison (cached JSON) with today's point at the live value and at the
        benchmark's `close` of today (None: it has none yet, its last completed close stays)."""
        base = self.base.get("benchmark")
        if raw is None or base is None or key not in base["ranges"]:
            return raw
        growth_start, close_start = base["ranges"][key]
        growth = self._growth_live(base["growth"])
        close = close if close is not None else base["close"]

        def moved(point: dict) -> dict:
            portfolio, benchmark = benchmark_return(
                growth=growth if growth is not None else base["growth"], growth_start=growth_start,
                close=close if close is not None else nan, close_start=close_start or close or nan)
            return {**point, "portfolio": portfolio if growth is not None else point["portfolio"],
                    "benchmark": benchmark}

        return _last_point_replaced(raw, date=self.live.date, change=moved)

    def benchmark_close(self) -> float | None:
        """The benchmark's close of today, if it has one yet (one indexed read)."""
        base = self.base.get("benchmark")
        if base is None:
            return None
        return closes_on(instrument_ids=[base["instrument_id"]], day=self.day).get(base["instrument_id"])

    def sparklines(self, raw: bytes | None) -> bytes | None:
        """The sparklines (cached JSON) ending on today's close of each instrument that has one (one indexed
        read for all); a line may then hold one point more than SPARKLINE_POINTS_MAX."""
        ids = self.base.get("sparklines", [])
        if raw is None or not ids:
            return raw
        closes = closes_on(instrument_ids=ids, day=self.day)
        if not closes:
            return raw
        lines = json.loads(raw)
        for instrument_id, close in closes.items():
            if (key := str(instrument_id)) in lines:
                lines[key] = [*(p for p in lines[key] if p["date"] != self.live.date),
                              {"date": self.live.date, "close": price_format(close)}]
        return json.dumps(lines).encode()

    @property
    def day(self) -> date:
        return date.fromisoformat(self.live.date)

    def allocation(self) -> bytes:
        return self.live.allocation

    def performance(self, key: str, figures: RangePerformance, *, flows: bytes | None) -> RangePerformance:
        """A performance range's figures, moved to the live value when the range ends today (`flows`: the
        cached XIRR flows of every range ending today, JSON)."""
        base = self.base["ranges"].get(key)
        if base is None:
            return figures
        range_flows = json.loads(flows).get(key) if flows is not None else None
        entry, entry_local, _ = self.entered
        money_today = self.base.get("money_today")
        return range_live_apply(figures, base, value_then=self.value_then, value=self.live.total_value,
                                unrealized=self.live.unrealized_gain,
                                local=self.live.local, flows=range_flows, entry=entry, entry_local=entry_local,
                                money_today=tuple(map(Decimal, money_today)) if money_today else None)


def _last_point_replaced(raw: bytes, *, date: str, change) -> bytes:
    """A JSON list of {"date", …} points with its last point changed, when that point is of `date`; only the
    last point is decoded."""
    at = raw.rfind(b'{"date"')
    if at < 0:
        return raw
    point = json.loads(raw[at:-1])
    if point["date"] != date:
        return raw
    return raw[:at] + json.dumps(change(point)).encode() + b"]"
