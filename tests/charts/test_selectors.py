"""What the chart computation is given: transactions, closes as arrays, FX series; in constant queries."""

from datetime import date
from decimal import Decimal as D

import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from charts.selectors import PriceRows, _rows_iterated, chart_inputs_load, close_micros
from prices.models import PriceHistory
from prices.series import day_numbers, price_series_load
from tests.charts.factories import FxRateFactory, closes_create
from tests.factories import InstrumentFactory, PortfolioFactory, TransactionFactory

pytestmark = pytest.mark.django_db


def test_closes_from_the_first_transaction_on_plus_the_last_one_before(portfolio):
    # given closes before, on and after the first transaction (Thu 4 Jan), for two instruments
    aaa = InstrumentFactory(symbol="AAA")
    bbb = InstrumentFactory(symbol="BBB")
    TransactionFactory(portfolio=portfolio, instrument=bbb, date=date(2024, 1, 4))
    TransactionFactory(portfolio=portfolio, instrument=aaa, date=date(2024, 1, 8))
    closes_create(instrument=aaa, closes={date(2023, 12, 29): "9", date(2024, 1, 2): "10", date(2024, 1, 5): "11",
                                          date(2024, 1, 8): "12.125"})
    closes_create(instrument=bbb, closes={date(2024, 1, 4): "20", date(2024, 1, 5): "21"})
    unrelated = InstrumentFactory(symbol="ZZZ")
    closes_create(instrument=unrelated, closes={date(2024, 1, 5): "1"})

    inputs = chart_inputs_load(portfolio=portfolio)

    prices = inputs.prices
    assert prices.instrument_ids.tolist() == [aaa.pk, aaa.pk, aaa.pk, bbb.pk, bbb.pk]
    assert prices.days.astype("M8[D]").astype(str).tolist() == ["2024-01-02", "2024-01-05", "2024-01-08",
                                                                "2024-01-04", "2024-01-05"]
    assert prices.closes.tolist() == [10.0, 11.0, 12.125, 20.0, 21.0]
    # the same closes exactly, in millionths, for the figures computed in Decimal
    assert prices.micros.tolist() == [10_000_000, 11_000_000, 12_125_000, 20_000_000, 21_000_000]
    # the days as int32 days since 1970 (half a datetime64: the chart worker keeps them between generations)
    assert (prices.closes.dtype, prices.micros.dtype, prices.days.dtype) == (np.float64, np.int64, np.dtype("i4"))
    assert [tx.date for tx in inputs.transactions] == [date(2024, 1, 4), date(2024, 1, 8)]
    assert set(inputs.instruments) == {aaa.pk, bbb.pk}
    # each instrument's rows are one run, its id kept once
    assert (prices.instruments.tolist(), prices.starts.tolist()) == ([aaa.pk, bbb.pk], [0, 3, 5])


def test_the_runs_of_instruments_with_and_without_closes():
    prices = PriceRows.of(np.array([3, 3, 5, 9, 9, 9]), np.arange(6, dtype="i4"), np.arange(6))
    lo, hi = prices.rows_of(np.array([1, 3, 4, 5, 9, 10]))
    # 1, 4 and 10 have no closes: an empty run where they would be
    assert list(zip(lo.tolist(), hi.tolist(), strict=True)) == [(0, 0), (0, 2), (2, 2), (2, 3), (3, 6), (6, 6)]
    empty = PriceRows.empty()
    lo, hi = empty.rows_of(np.array([1, 2]))
    assert (lo.tolist(), hi.tolist(), empty.instrument_ids.tolist()) == ([0, 0], [0, 0], [])


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the packed series are Postgres's")
def test_packed_series_and_portable_price_paths_agree():
    aaa = InstrumentFactory(symbol="AAA")
    bbb = InstrumentFactory(symbol="BBB")
    closes_create(instrument=aaa, closes={date(2024, 1, d): f"{d}.25" for d in range(2, 20)})
    closes_create(instrument=bbb, closes={date(2024, 1, d): f"{d * 3}" for d in range(5, 9)})
    rows = (
        PriceHistory.objects.filter(instrument_id__in=[aaa.pk, bbb.pk], date__gte=date(2024, 1, 3))
        .order_by("instrument_id", "date")
        .values_list("instrument_id", "date", close_micros())
    )

    # The series also carry each instrument's last close before the start: AAA's of 2 January.
    packed, iterated = price_series_load(instrument_ids=[aaa.pk, bbb.pk], start=date(2024, 1, 3)), _rows_iterated(rows)

    assert [a.dtype for a in packed] == [a.dtype for a in iterated]
    assert [a[1:].tolist() for a in packed] == [a.tolist() for a in iterated]
    assert packed[1][0] == day_numbers(date(2024, 1, 2)) and packed[2][0] == 2_250_000
    assert len(iterated[0]) == 17 + 4
    assert iterated[1][0] == day_numbers(date(2024, 1, 3)) and iterated[2][0] == 3_250_000


def test_closes_are_exact_where_a_double_is_not(portfolio):
    # given a close a double cannot hold exactly (0.1 + 0.2 is not 0.3 in floating point)
    aaa = InstrumentFactory(symbol="AAA")
    TransactionFactory(portfolio=portfolio, instrument=aaa, date=date(2024, 1, 2))
    closes_create(instrument=aaa, closes={date(2024, 1, 2): "12345678.123457"})

    prices = chart_inputs_load(portfolio=portfolio).prices

    assert prices.micros.tolist() == [12_345_678_123_457]
    assert D(int(prices.micros[0])).scaleb(-6) == D("12345678.123457")
    assert prices.closes[0] == float("12345678.123457")


def test_fx_series_for_each_currency_either_direction_and_minor_units():
    portfolio = PortfolioFactory(base_currency="USD")
    sap = InstrumentFactory(symbol="SAP", currency="EUR")
    vod = InstrumentFactory(symbol="VOD.L", currency="GBp")
    TransactionFactory(portfolio=portfolio, instrument=sap, date=date(2024, 1, 3), currency="EUR")
    TransactionFactory(portfolio=portfolio, instrument=vod, date=date(2024, 1, 3), currency="GBP")
    FxRateFactory(base="EUR", quote="USD", date=date(2023, 12, 1), rate=D("1.0"))  # superseded
    FxRateFactory(base="EUR", quote="USD", date=date(2024, 1, 2), rate=D("1.1"))  # the last before: kept
    FxRateFactory(base="USD", quote="EUR", date=date(2024, 1, 4), rate=D("0.8"))  # the other way round
    FxRateFactory(base="EUR", quote="USD", date=date(2024, 1, 5), rate=D("1.3"))  # direct ...
    FxRateFactory(base="USD", quote="EUR", date=date(2024, 1, 5), rate=D("0.5"))  # ... wins over inverse
    FxRateFactory(base="USD", quote="GBP", date=date(2024, 1, 3), rate=D("0.8"))
    FxRateFactory(base="USD", quote="JPY", date=date(2024, 1, 3), rate=D("150"))  # not needed

    fx = chart_inputs_load(portfolio=portfolio).fx

    assert set(fx) == {"EUR", "GBp", "GBP"}
    assert fx["EUR"].dates.astype(str).tolist() == ["2024-01-02", "2024-01-04", "2024-01-05"]
    assert fx["EUR"].rates == (D("1.1"), D("1.25"), D("1.3"))
    assert fx["GBP"].rates == (D("1.25"),)
    assert fx["GBp"].rates == (D("0.0125"),)


def test_the_base_currency_and_its_minor_unit_convert_by_a_fixed_factor():
    portfolio = PortfolioFactory(base_currency="GBP")
    vod = InstrumentFactory(symbol="VOD.L", currency="GBp")
    TransactionFactory(portfolio=portfolio, instrument=vod, date=date(2024, 1, 3), currency="GBP")

    with CaptureQueriesContext(connection) as queries:
        fx = chart_inputs_load(portfolio=portfolio).fx

    assert fx["GBP"].rates == (D("1"),)
    assert fx["GBp"].rates == (D("0.01"),)
    assert fx["GBp"].dates.astype(str).tolist() == ["0001-01-01"]  # holds on any date
    # No FX query when every currency is the base's: the transactions, their instruments, then the closes
    # (packed series on Postgres, after the series table's identity for the process's cache of them;
    # elsewhere the rows and the last close before them); on Postgres the portfolio's replay version first
    # (what the chart worker keeps the transactions by: portfolio_transactions_reload).
    assert len(queries) == 4 + (connection.vendor == "postgresql")


def _portfolio_with(holdings: int):
    portfolio = PortfolioFactory()
    for n in range(holdings):
        instrument = InstrumentFactory(symbol=f"C{holdings}X{n}", currency="EUR" if n % 2 else "USD")
        TransactionFactory(portfolio=portfolio, instrument=instrument, date=date(2024, 1, 3),
                           currency=instrument.currency)
        TransactionFactory(portfolio=portfolio, instrument=instrument, date=date(2024, 1, 5), type="SELL",
                           quantity=D("1"), currency=instrument.currency)
        closes_create(instrument=instrument, closes={date(2024, 1, 2): "99", date(2024, 1, 3): "100",
                                                     date(2024, 1, 4): "101"})
    FxRateFactory(base="EUR", quote="USD", date=date(2024, 1, 2), rate=D("1.1"))
    FxRateFactory(base="EUR", quote="USD", date=date(2024, 1, 4), rate=D("1.2"))
    return portfolio


def test_query_count_does_not_grow_with_holdings():
    counts = []
    for size in (5, 50):
        portfolio = _portfolio_with(size)
        with CaptureQueriesContext(connection) as queries:
            inputs = chart_inputs_load(portfolio=portfolio)
        assert len(inputs.instruments) == size
        assert len(inputs.prices.closes) == 3 * size  # the seed of 2 Jan, then 3 and 4 Jan
        counts.append(len(queries))
    assert counts[0] == counts[1] == 6 + (connection.vendor == "postgresql")  # the replay version: as above
