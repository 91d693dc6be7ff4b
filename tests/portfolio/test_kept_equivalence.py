"""The kept replay (portfolio/kept.py) gives exactly the valuation a replay gives: a round trip of its text, and a
differential fuzz of random portfolios valued three ways — always replaying (`_valuation_of`), the first read
(replays and keeps) and the second (from the kept replay) — then once more after one random write.

Equality is of every Decimal's str (sign, exponent and NaN included: Decimal("1.0") == Decimal("1")), of every
field and of the order of the holdings, the closed positions and each dict.

The differential runs KEPT_FUZZ_CASES portfolios (default 300) from KEPT_FUZZ_SEED (default fixed); for more:
KEPT_FUZZ_CASES=5000 KEPT_FUZZ_SEED=7 pytest tests/portfolio/test_kept_equivalence.py -k differential
"""

import dataclasses
import os
import random
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_DOWN, Decimal

from django.db import connection
from django.test.utils import CaptureQueriesContext
from hypothesis import given, settings
from hypothesis import strategies as st

from portfolio.cash import portfolio_transactions_load
from portfolio.holdings import TRADE, Observation, split_applied
from portfolio.kept import LAYOUT, KeptPosition, Replay, replay_decode, replay_encode
from portfolio.models import Account, KeptReplay, Portfolio, Transaction, TransactionType
from portfolio.selectors import _valuation_of, portfolio_accounts_valuation_get, portfolio_valuation_get
from prices.models import FxRate, Instrument, PriceHistory, Provider
from tests.factories import PortfolioFactory, UserFactory

# --- What is compared: every value as text, Decimals by str, records by field name, dicts and lists in order.


def canonical(value):
    """`value` as plain nested tuples in which two Decimals are equal only when their str are (NaN, -0, the
    exponent), a bool is no int, and every dict and list keeps its order."""
    if isinstance(value, Decimal):
        return ("Decimal", str(value))
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int):
        return ("int", value)
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, date):
        return (type(value).__name__, value.isoformat())
    if isinstance(value, dict):
        return ("dict", tuple((canonical(k), canonical(v)) for k, v in value.items()))
    if hasattr(value, "_fields"):  # a NamedTuple
        return ("record", tuple((name, canonical(getattr(value, name))) for name in value._fields))
    if dataclasses.is_dataclass(value):
        return ("record", tuple((f.name, canonical(getattr(value, f.name))) for f in dataclasses.fields(value)))
    if isinstance(value, list | tuple):
        return (type(value).__name__, tuple(canonical(v) for v in value))
    raise TypeError(f"nothing to compare {value!r} by")


def first_difference(a, b, path="") -> str | None:
    """Where two canonical values first differ, to name it in a failure."""
    if type(a) is not type(b) or not isinstance(a, tuple) or len(a) != len(b):
        return None if a == b else f"{path}: {a!r} != {b!r}"
    for index, (x, y) in enumerate(zip(a, b, strict=True)):
        if (found := first_difference(x, y, f"{path}[{index}]")) is not None:
            return found
    return None


# --- 1. The round trip of a replay's text.

SHAPES = [Decimal(text) for text in (
    "NaN", "-NaN", "sNaN", "NaN12", "Infinity", "-Infinity", "0", "-0", "0E-10", "-0E-10", "0E+5", "1E+3", "1",
    "1.0", "1.000000", "-1.5", "12.3450000000", "0.0000000001", "1E-30", "9.99E+40",
    "1234567890123456789.0123456789", "-9999999999999999999999999999", "12345678901234567890123456789012.5")]
decimals = st.one_of(
    st.sampled_from(SHAPES),
    st.decimals(allow_nan=True, allow_infinity=True),
    # Any digits (more than a context's 28) at any exponent, either sign: made from the tuple, never rounded.
    st.builds(lambda sign, digits, exponent: Decimal((sign, tuple(digits), exponent)),
              st.integers(0, 1), st.lists(st.integers(0, 9), min_size=1, max_size=34), st.integers(-40, 40)),
)
ids = st.integers(1, 10**15)
account_ids = st.one_of(st.none(), st.integers(1, 10**12))
currencies = st.sampled_from(["USD", "EUR", "GBP", "GBp", "ZAc", "JPY", "CHF"])
days = st.dates()


@st.composite
def replays(draw) -> Replay:
    positions = draw(st.dictionaries(ids, st.tuples(decimals, decimals, decimals, decimals, decimals, st.booleans()),
                                     max_size=6))
    return Replay(
        positions={pk: KeptPosition(pk, *fields) for pk, fields in positions.items()},
        trades={pk: [Observation(day, price, TRADE)]
                for pk, (day, price) in draw(st.dictionaries(ids, st.tuples(days, decimals), max_size=6)).items()},
        splits=draw(st.dictionaries(ids, st.lists(st.tuples(days, decimals), min_size=1, max_size=3), max_size=4)),
        cash=draw(st.dictionaries(st.tuples(account_ids, currencies), decimals, max_size=5)),
        account_quantities=draw(st.dictionaries(account_ids, st.dictionaries(ids, decimals, max_size=4),
                                                max_size=4)),
        cash_ids=draw(st.dictionaries(currencies, ids, max_size=4)),
        base_currency=draw(st.sampled_from(["USD", "GBP", "EUR", "JPY"])),
    )


@settings(max_examples=400, deadline=None, derandomize=True)
@given(replay=replays())
def test_a_replay_read_back_is_the_replay_written_digit_for_digit(replay):
    text = replay_encode(replay)
    back = replay_decode(text)
    assert back is not None
    difference = first_difference(canonical(back), canonical(replay))
    assert difference is None, difference
    assert all(type(p) is KeptPosition for p in back.positions.values())
    assert all(type(o) is Observation for rows in back.trades.values() for o in rows)
    assert replay_encode(back) == text  # and written again, the same text


def test_a_replay_of_every_odd_shape_at_once_reads_back():
    """The shapes the brief names, each in every place a Decimal is kept, with None and several accounts."""
    odd = [Decimal(t) for t in ("NaN", "-0", "1E+3", "1234567890123456789.0123456789", "0E-10", "-0.00")]
    replay = Replay(
        positions={7: KeptPosition(7, odd[3], odd[0], odd[1], odd[2], odd[4], True),
                   3: KeptPosition(3, odd[4], odd[5], odd[2], odd[1], odd[0], False)},
        trades={7: [Observation(date(2024, 2, 29), odd[3], TRADE)], 3: [Observation(date(1, 1, 1), odd[4], TRADE)]},
        splits={7: [(date(2024, 1, 2), odd[2]), (date(2024, 1, 3), odd[4])]},
        cash={(None, "GBP"): odd[1], (12, "EUR"): odd[3], (11, "GBP"): odd[4]},
        account_quantities={None: {7: odd[5]}, 12: {3: odd[3], 7: odd[1]}, 11: {}},
        cash_ids={"GBP": 99, "EUR": 98},
        base_currency="GBP",
    )
    back = replay_decode(replay_encode(replay))
    assert first_difference(canonical(back), canonical(replay)) is None
    assert [str(v) for v in back.positions[7]] == ["7", "1234567890123456789.0123456789", "NaN", "-0", "1E+3",
                                                   "0E-10", "True"]
    assert list(back.positions) == [7, 3] and list(back.cash) == [(None, "GBP"), (12, "EUR"), (11, "GBP")]


def test_a_replay_kept_under_another_layout_reads_as_none():
    text = replay_encode(Replay({}, {}, {}, {}, {}, {}, "USD"))
    assert replay_decode(text) is not None
    assert text.startswith(f"{LAYOUT}\t")
    assert replay_decode(text.replace(str(LAYOUT), str(LAYOUT + 1), 1)) is None


# --- 2. The differential: random portfolios valued by replaying, by the first read and from the kept replay.

SEED = int(os.environ.get("KEPT_FUZZ_SEED", "20240605"))
CASES = int(os.environ.get("KEPT_FUZZ_CASES", "300"))
NOW = datetime(2024, 6, 5, 23, tzinfo=UTC)  # a Wednesday evening
TODAY = NOW.date()
START = date(2024, 1, 1)
INSTRUMENT_CURRENCIES = ("USD", "EUR", "GBp")
TRADE_CURRENCIES = ("USD", "EUR", "GBP", "GBp")
BASES = ("USD", "GBP", "EUR")
PAIRS = (("USD", "EUR"), ("USD", "GBP"), ("EUR", "GBP"))
RATIOS = [Decimal(r) for r in ("2", "3", "0.5", "1.5", "10", "0.1", "4", "1")]
B = TransactionType


def _day(rng: random.Random, low: date = START, high: date = TODAY) -> date:
    return low + timedelta(days=rng.randint(0, (high - low).days))


def _amount(rng: random.Random, *, whole: int, places: int, zero: bool = False) -> Decimal:
    """A positive amount (or 0 when allowed and drawn) of up to `whole` digits before the point and `places`
    after, of every shape: 5, 5.0, 0.0000001, 123456789012.123456."""
    if zero and rng.random() < 0.08:
        return Decimal("0") if rng.random() < 0.5 else Decimal("0.00")
    while True:
        digits = rng.choice((1, 1, 2, 3, 4, whole)) if whole else 0
        scale = rng.choice((0, 0, 1, 2, places))
        value = Decimal(rng.randint(0, 10 ** digits - 1) * 10 ** scale + rng.randint(0, 10 ** scale - 1)).scaleb(-scale)
        if value > 0:
            return value


def _rates_write(rng: random.Random) -> None:
    """The FX rates, anew: each pair stored one way or the other (or both, on some days), from a first day that
    some trades come before (their amounts have no rate yet), with gaps; now and then a pair with none at all."""
    FxRate.objects.all().delete()
    rows = []
    for one, other in PAIRS:
        if rng.random() < 0.1:
            continue
        first = _day(rng, START, date(2024, 4, 1))
        stored = sorted({first} | {_day(rng, first) for _ in range(rng.randint(0, 6))})
        base, quote = (one, other) if rng.random() < 0.5 else (other, one)
        for day in stored:
            rows.append(FxRate(base=base, quote=quote, date=day, rate=_amount(rng, whole=2, places=10)))
            if rng.random() < 0.15:  # the inverse pair too: the direct one wins its day
                rows.append(FxRate(base=quote, quote=base, date=day, rate=_amount(rng, whole=2, places=10)))
    FxRate.objects.bulk_create(rows)


def _portfolio_write(rng: random.Random, case: int, user) -> Portfolio:
    portfolio = PortfolioFactory(owner=user, name=f"Fuzz {case}", base_currency=rng.choice(BASES))
    default = Account.objects.get(portfolio=portfolio)  # tracks no cash, as the factories' default
    broker = Account.objects.create(portfolio=portfolio, name="Broker", currency=rng.choice(BASES), tracks_cash=True)
    extra = (Account.objects.create(portfolio=portfolio, name="Second", currency="EUR", tracks_cash=True)
             if rng.random() < 0.3 else broker)

    instruments = []
    prices = []
    for j in range(rng.randint(1, 5)):
        currency = rng.choice(INSTRUMENT_CURRENCIES)
        manual = rng.random() < 0.25
        instrument = Instrument.objects.create(
            symbol=f"Z{case}X{j}", currency=currency, exchange_mic="XLON" if currency == "GBp" else "XNYS",
            owner=user if manual else None, provider=Provider.MANUAL if manual else Provider.SIMULATED)
        instruments.append(instrument)
        if not manual and rng.random() < 0.8:  # closes: some older than the trades, some newer
            for day in {_day(rng) for _ in range(rng.randint(1, 4))}:
                prices.append(PriceHistory(instrument=instrument, date=day, close=_amount(rng, whole=5, places=6),
                                           source=Provider.SIMULATED))
    PriceHistory.objects.bulk_create(prices)

    held = {i.pk: Decimal("0") for i in instruments}
    rows = []
    for day in sorted(_day(rng) for _ in range(rng.randint(0, 30))):
        instrument = rng.choice(instruments)
        account = rng.choices((default, broker, extra, None), weights=(4, 5, 2, 1))[0]
        currency = instrument.currency if rng.random() < 0.8 else rng.choice(TRADE_CURRENCIES)
        fee = _amount(rng, whole=2, places=6, zero=True) if rng.random() < 0.4 else Decimal("0")
        kind = rng.choices((B.BUY, B.SELL, B.SPLIT, B.DIVIDEND, B.FEE, B.DEPOSIT, B.WITHDRAWAL, B.INTEREST),
                           weights=(10, 6, 1, 2, 1, 3, 2, 1))[0]
        quantity, price = _amount(rng, whole=rng.choice((3, 3, 12)), places=10), _amount(rng, whole=4, places=6,
                                                                                             zero=True)
        if kind == B.SELL:
            sellable = [i for i in instruments if held[i.pk] > 0]
            if not sellable:
                kind = B.BUY
            else:
                instrument = rng.choice(sellable)
                whole = held[instrument.pk]
                quantity = (whole if rng.random() < 0.35 else whole * Decimal(rng.random())).quantize(
                    Decimal("1E-10"), ROUND_DOWN)
                if quantity <= 0:
                    continue
        if kind == B.BUY:
            pass
        elif kind == B.SPLIT:
            quantity, price, fee = rng.choice(RATIOS), Decimal("0"), Decimal("0")
        elif kind == B.FEE:
            quantity, price, fee = Decimal("0"), Decimal("0"), _amount(rng, whole=3, places=6)
        elif kind in (B.DEPOSIT, B.WITHDRAWAL, B.INTEREST):
            instrument = None
            account = rng.choices((broker, extra, default, None), weights=(6, 2, 1, 1))[0]
            quantity, price = (Decimal("1"), _amount(rng, whole=5, places=2)) if rng.random() < 0.8 else (
                quantity, price)
            if kind != B.INTEREST:
                fee = Decimal("0")
        if instrument is not None and kind in (B.BUY, B.SELL, B.SPLIT):
            now_held = held[instrument.pk]
            now_held = (now_held + quantity if kind == B.BUY else now_held - quantity if kind == B.SELL
                        else split_applied(now_held, quantity))
            if now_held >= Decimal("1E+17"):
                continue  # beyond what a quantity can store: not written
            held[instrument.pk] = now_held
        rows.append(Transaction(portfolio=portfolio, account=account, instrument=instrument, type=kind, date=day,
                                quantity=quantity, price=price, fee=fee, currency=currency))
    Transaction.objects.bulk_create(rows)  # in date order: their ids are the entry order
    portfolio.refresh_from_db()
    return portfolio


def _write_one_thing(rng: random.Random, portfolio: Portfolio) -> str:
    """One write of what the replay reads (or of a close, which it does not): what a kept replay must notice."""
    what = rng.choice(("buy", "delete last", "fee changed", "tracks cash", "fx insert", "fx update", "fx delete",
                       "base currency", "instrument currency", "close"))
    transactions = Transaction.objects.filter(portfolio=portfolio).order_by("date", "id")
    instruments = list(Instrument.objects.filter(transactions__portfolio=portfolio).distinct().order_by("id"))
    if what == "buy" or (not instruments and what in ("instrument currency", "close")):
        instrument = rng.choice(instruments) if instruments else Instrument.objects.create(
            symbol=f"Z{portfolio.pk}NEW", currency=rng.choice(INSTRUMENT_CURRENCIES))
        Transaction.objects.create(portfolio=portfolio, account=Account.objects.filter(portfolio=portfolio).last(),
                                   instrument=instrument, type=B.BUY, date=_day(rng), quantity=Decimal("3"),
                                   price=Decimal("7.5"), fee=Decimal("0.25"), currency=rng.choice(TRADE_CURRENCIES))
    elif what == "delete last" and (last := transactions.last()) is not None:
        last.delete()
    elif what == "fee changed" and (tx := transactions.filter(fee__gt=0).first()) is not None:
        Transaction.objects.filter(pk=tx.pk).update(fee=tx.fee + Decimal("1.5"))
    elif what == "tracks cash":
        account = rng.choice(list(Account.objects.filter(portfolio=portfolio).order_by("id")))
        Account.objects.filter(pk=account.pk).update(tracks_cash=not account.tracks_cash)
    elif what == "fx insert":
        one, other = rng.choice(PAIRS)
        FxRate.objects.update_or_create(base=one, quote=other, date=_day(rng), defaults={"rate": Decimal("1.2345")})
    elif what == "fx update" and (rate := FxRate.objects.order_by("date", "id").first()) is not None:
        FxRate.objects.filter(pk=rate.pk).update(rate=rate.rate * 2)
    elif what == "fx delete" and (rate := FxRate.objects.order_by("date", "id").first()) is not None:
        rate.delete()
    elif what == "base currency":
        Portfolio.objects.filter(pk=portfolio.pk).update(
            base_currency=rng.choice([b for b in BASES if b != portfolio.base_currency]))
    elif what == "instrument currency":
        instrument = rng.choice(instruments)
        Instrument.objects.filter(pk=instrument.pk).update(
            currency=rng.choice([c for c in INSTRUMENT_CURRENCIES if c != instrument.currency]))
    elif what == "close":
        PriceHistory.objects.update_or_create(instrument=rng.choice(instruments), date=TODAY,
                                              defaults={"close": Decimal("42.42"), "source": Provider.SIMULATED})
    return what


def _three_ways(portfolio_id: int, label: str):
    """The valuation replayed (the path before kept replays), by the first read and by the second, equal to the
    last digit; the second read from the kept replay (no transaction read)."""
    base = Portfolio.objects.values_list("base_currency", flat=True).get(pk=portfolio_id)
    replayed = _valuation_of(portfolio_transactions_load(portfolio_id=portfolio_id, latest=True),
                             base_currency=base, now=NOW)
    header = Portfolio(pk=portfolio_id, base_currency=base)
    first = portfolio_valuation_get(portfolio=header, now=NOW)
    version, stored_at = KeptReplay.objects.values_list("version", "state_version").get(portfolio_id=portfolio_id)
    assert stored_at == version, label
    with CaptureQueriesContext(connection) as queries:
        second = portfolio_valuation_get(portfolio=header, now=NOW)
    assert not any(Transaction._meta.db_table + " t" in q["sql"] for q in queries.captured_queries), label
    _, _, dashboard = portfolio_accounts_valuation_get(portfolio_id=portfolio_id, now=NOW)
    # The day's trades the dashboard reads beside the replay (for its day change) are no part of the replay's
    # valuation: tests/portfolio/test_dashboard.py checks them.
    dashboard = replace(dashboard, traded_today={})

    expected = canonical(replayed)
    for name, valuation in (("first read", first), ("kept", second), ("dashboard's", dashboard)):
        difference = first_difference(canonical(valuation), expected)
        assert difference is None, f"{label}, {name}: {difference}"
        assert valuation == replayed, f"{label}, {name}"
    return replayed


def test_differential_the_kept_replay_values_random_portfolios_exactly_as_replaying_does(db):
    rng = random.Random(SEED)
    user = UserFactory(username="fuzz")
    seen = {"holdings": 0, "closed": 0, "fx_missing": 0, "cost unknown": 0, "trade priced": 0, "cash": 0,
            "accounts": 0, "unpriced": 0}
    writes: dict[str, int] = {}
    for case in range(CASES):
        _rates_write(rng)
        portfolio = _portfolio_write(rng, case, user)
        label = f"seed {SEED} case {case}"
        valuation = _three_ways(portfolio.pk, label)
        holdings = valuation.holdings
        seen["holdings"] += len(holdings)
        seen["closed"] += len(valuation.closed)
        seen["fx_missing"] += valuation.fx_missing_count
        seen["cost unknown"] += sum(1 for h in holdings if h.cost_basis is None)
        seen["trade priced"] += sum(1 for h in holdings if h.price_source == TRADE)
        seen["unpriced"] += valuation.unpriced_count
        seen["cash"] += len(valuation.cash)
        seen["accounts"] += len(valuation.account_quantities) > 1
        what = _write_one_thing(rng, portfolio)
        writes[what] = writes.get(what, 0) + 1
        _three_ways(portfolio.pk, f"{label} after {what}")
    # The portfolios reach every case the comparison is about (a fuzz that never made one proves nothing of it).
    if CASES >= 100:
        assert all(seen.values()), seen
        assert len(writes) == 10, writes


def test_a_truncate_of_the_fx_rates_outdates_the_kept_replay(portfolio):
    """A kept EUR buy's cost, converted at a rate the TRUNCATE removed, is not served again."""
    sap = Instrument.objects.create(symbol="SAP", currency="EUR")  # no close: valued at its own trade
    FxRate.objects.create(base="EUR", quote="USD", date=date(2024, 1, 2), rate=Decimal("1.1"))
    Transaction.objects.create(portfolio=portfolio, instrument=sap, type=B.BUY, date=date(2024, 1, 2),
                               quantity=Decimal("10"), price=Decimal("100"), currency="EUR")
    assert portfolio_valuation_get(portfolio=portfolio, now=NOW).holdings[0].cost_basis == Decimal("1100")
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {FxRate._meta.db_table}")
    replayed = _valuation_of(portfolio_transactions_load(portfolio_id=portfolio.pk, latest=True),
                             base_currency="USD", now=NOW)
    assert replayed.holdings[0].cost_basis is None  # no rate on the trade's day any more
    assert canonical(portfolio_valuation_get(portfolio=portfolio, now=NOW)) == canonical(replayed)
