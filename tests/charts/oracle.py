"""An independent reference for the chart and performance tests: a portfolio valued day by day in exact
fractions, straight from the definitions in docs/holdings.md — never from the code under test.

Deliberately naive (every question is answered by scanning every transaction and close again), so that
it is easy to check by reading: the product's engine (Decimal replay, numpy grid, step-row look-ups) shares
none of it. It covers portfolios whose positions can all be valued (every held instrument has an
observation and its currency a rate); the left-out rules are tested by hand elsewhere.
"""

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from fractions import Fraction


@dataclass(frozen=True)
class Deal:
    """One transaction as a test writes it (amounts as strings, read exactly)."""

    day: date
    symbol: str
    kind: str  # BUY, SELL, DIVIDEND, FEE, SPLIT
    quantity: str = "0"
    price: str = "0"
    fee: str = "0"
    currency: str | None = None  # of price and fee; the instrument's when None


class Book:
    """symbols: symbol -> instrument currency; closes: symbol -> {day: close}; rates: currency -> {day: base
    units per unit} (a currency absent from it is the base currency); deals in date, then entry order."""

    def __init__(self, *, symbols: dict[str, str], closes: dict[str, dict[date, str]] | None = None,
                 rates: dict[str, dict[date, str]] | None = None, deals: list[Deal]) -> None:
        self.symbols = symbols
        self.closes = {s: {d: Fraction(c) for d, c in rows.items()} for s, rows in (closes or {}).items()}
        self.rates = {c: {d: Fraction(r) for d, r in rows.items()} for c, rows in (rates or {}).items()}
        self.deals = deals

    def rate(self, currency: str, day: date) -> Fraction | None:
        if currency not in self.rates:
            return Fraction(1)
        known = [d for d in self.rates[currency] if d <= day]
        return self.rates[currency][max(known)] if known else None

    def held(self, symbol: str, day: date) -> Fraction:
        quantity = Fraction(0)
        for deal in self.deals:
            if deal.symbol != symbol or deal.day > day:
                continue
            if deal.kind == "BUY":
                quantity += Fraction(deal.quantity)
            elif deal.kind == "SELL":
                quantity -= Fraction(deal.quantity)
            elif deal.kind == "SPLIT":
                quantity *= Fraction(deal.quantity)
        return quantity

    def price(self, symbol: str, day: date) -> Fraction | None:
        """Latest observation on or before `day` — close, or trade at its price converted into the
        instrument's currency; the close wins its day, the day's last trade wins over earlier ones — then
        divided by every split after the observation's day up to `day`."""
        observed: tuple[date, Fraction] | None = None
        closes = {d: c for d, c in self.closes.get(symbol, {}).items() if d <= day}
        if closes:
            observed = (max(closes), closes[max(closes)])
        for deal in self.deals:  # in order: a later trade of the same day replaces an earlier one
            if deal.symbol != symbol or deal.kind not in ("BUY", "SELL") or deal.day > day:
                continue
            if Fraction(deal.price) == 0 or (observed and observed[0] > deal.day):
                continue
            if observed and observed[0] == deal.day and deal.day in closes:
                continue  # the close is the end of that day
            currency = deal.currency or self.symbols[symbol]
            if currency == self.symbols[symbol]:
                price = Fraction(deal.price)
            else:
                price = Fraction(deal.price) * self.rate(currency, deal.day) / self.rate(self.symbols[symbol], deal.day)
            observed = (deal.day, price)
        if observed is None:
            return None
        price = observed[1]
        for deal in self.deals:
            if deal.symbol == symbol and deal.kind == "SPLIT" and observed[0] < deal.day <= day:
                price /= Fraction(deal.quantity)
        return price

    def value(self, day: date) -> Fraction:
        total = Fraction(0)
        for symbol, currency in self.symbols.items():
            quantity = self.held(symbol, day)
            if quantity:
                total += quantity * self.price(symbol, day) * self.rate(currency, day)
        return total

    def flows(self, day: date) -> tuple[Fraction, Fraction]:
        """(money in, money out) of a day, each transaction at its trade price and its day's rate."""
        money_in = money_out = Fraction(0)
        for deal in self.deals:
            if deal.day != day or deal.kind == "SPLIT":
                continue
            rate = self.rate(deal.currency or self.symbols[deal.symbol], day)
            amount, fee = Fraction(deal.quantity) * Fraction(deal.price) * rate, Fraction(deal.fee) * rate
            if deal.kind == "BUY":
                money_in += amount + fee
            elif deal.kind == "FEE":
                money_in += fee
            else:  # SELL, DIVIDEND
                money_out += amount - fee
        return money_in, money_out

    def fees(self, first: date, last: date) -> Fraction:
        return sum((Fraction(d.fee) * self.rate(d.currency or self.symbols[d.symbol], d.day)
                    for d in self.deals if first <= d.day <= last), Fraction(0))

    def net_performance(self, base: date, last: date) -> Fraction:
        """V_e − V_b − money in + money out over the days after `base` up to `last`."""
        total = self.value(last) - self.value(base)
        for day in _days(base + timedelta(days=1), last):
            money_in, money_out = self.flows(day)
            total += money_out - money_in
        return total

    def twr(self, base: date, last: date) -> Fraction | None:
        """Π (1 + r_d) − 1 over the days after `base` up to `last`, the day's net flow F = in − out at work from
        its start when money came in, until its end when it went out: V_d / (V_{d−1} + F) or (V_d − F) / V_{d−1};
        days with nothing at work (V_{d−1} + max(F, 0) <= 0, or nothing the day before and nothing at the day's end)
        skipped; None when every day is."""
        growth, counted, previous = Fraction(1), False, self.value(base)
        for day in _days(base + timedelta(days=1), last):
            value = self.value(day)
            money_in, money_out = self.flows(day)
            flow = money_in - money_out
            if previous + max(flow, 0) > 0 and (previous > 0 or value > 0):
                growth *= (value + max(-flow, 0)) / (previous + max(flow, 0))
                counted = True
            previous = value
        return growth - 1 if counted else None


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def cents(amount: Fraction) -> str:
    """An exact amount rounded half-even to cents, as the product writes money."""
    with localcontext(prec=60):
        return str((Decimal(amount.numerator) / Decimal(amount.denominator)).quantize(Decimal("0.01"), ROUND_HALF_EVEN))


def matches_rate(written: str | None, exact: Fraction | None) -> bool:
    """A rate written with 6 decimals is the exact one, rounded (1e-12 of slack for float64's last bits)."""
    if written is None or exact is None:
        return written is None and exact is None
    return abs(Fraction(written) - exact) <= Fraction(1, 2_000_000) + Fraction(1, 10**12)
