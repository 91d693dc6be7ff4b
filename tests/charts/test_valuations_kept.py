"""A generation reuses the exact valuations of the last one only for days valued from exactly the same inputs,
and answers byte for byte as a generation from nothing kept (charts/valuations_kept.py, charts.compute._Valuer)."""

import json
import tracemalloc
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal as D

import numpy as np
import pytest
from django.utils import timezone

from charts.cache import chart_data_get
from charts.compute import chart_data_compute, chart_series_compute
from charts.performance import _INVESTED_SUMS as INVESTED_SUMS
from charts.performance import _PAST_RANGES as PAST_RANGES
from charts.performance import past_ranges_kept, performance_with_live_compute
from charts.selectors import chart_inputs_load
from charts.services import chart_data_generate
from charts.valuations_kept import (
    BYTES_PER_DAY_OF_BOOK,
    BYTES_PER_LOADED_ROW,
    BYTES_PER_PAST_RANGE,
    BYTES_PER_TRANSACTION,
    valuations_kept_clear,
    valuations_kept_get,
    valuations_kept_put,
    valuations_size,
)
from prices import series as series_module
from prices.market_calendar import sessions_between
from prices.models import FxRate
from tests.charts.factories import FxRateFactory, closes_create
from tests.factories import InstrumentFactory, TransactionFactory, closes_upsert
from tests.portfolio.test_history import (  # noqa: F401 (fixtures)
    api,
    buy,
    current_chart,
    portfolio_of,
    providers,
    stock_price,
    wait_for,
)
from tests.worker import worker_settle

pytestmark = pytest.mark.django_db

TODAY = date(2024, 6, 14)  # a Friday
FIRST = date(2022, 3, 1)


def weekdays(start: date, end: date) -> list[date]:
    return [start + timedelta(days=k) for k in range((end - start).days + 1)
            if (start + timedelta(days=k)).weekday() < 5]


@pytest.fixture
def holdings(portfolio):
    """A USD and a EUR stock bought in 2022 and 2023, with a dividend and a partial sale, closing every weekday up
    to yesterday; EUR rates every weekday."""
    usd, eur = InstrumentFactory(symbol="USDS"), InstrumentFactory(symbol="EURS", currency="EUR")
    TransactionFactory(portfolio=portfolio, instrument=usd, date=FIRST, quantity=D("10"), price=D("50"))
    TransactionFactory(portfolio=portfolio, instrument=eur, date=date(2023, 2, 6), quantity=D("7"),
                       price=D("31.5"), currency="EUR")
    TransactionFactory(portfolio=portfolio, instrument=usd, type="SELL", date=date(2023, 11, 20),
                       quantity=D("4"), price=D("61.25"))
    days = weekdays(FIRST, TODAY - timedelta(days=1))
    closes_create(instrument=usd, closes={day: str(D(50) + D(day.toordinal() % 23) / 4) for day in days})
    closes_create(instrument=eur, closes={day: str(D(30) + D(day.toordinal() % 17) / 8) for day in days
                                          if day >= date(2023, 2, 6)})
    for day in days:
        FxRateFactory(base="EUR", quote="USD", date=day, rate=D("1.05") + D(day.toordinal() % 9) / 100)
    return usd, eur


def generated(portfolio, known=None, *, today=TODAY):
    """One generation as the worker makes it: the series (reusing `known`, its transactions as loaded included),
    then every part it stores, as JSON."""
    inputs = chart_inputs_load(portfolio=portfolio, closes_before=today, kept=known.loaded if known else None)
    series = chart_series_compute(inputs, today=today, known=known)
    data = chart_data_compute(inputs, today=today, series=series)
    performance, live = performance_with_live_compute(inputs, today=today, series=series)
    answer = json.dumps({"data": data, "performance": performance, "live": live}, sort_keys=True, default=str)
    return series, answer


def past_ranges(series) -> dict:
    """The figures of the ranges that ended before today the generation kept with its book, by their inputs' digest
    (a copy: the next generation replaces them)."""
    return dict(series.book.made[PAST_RANGES])


def reused(series, known) -> set[date]:
    """The days whose valuation is the very one `known` held."""
    return {day for day, (_, snapshot) in series.valuer.valued.items()
            if day in known.by_date and known.by_date[day][1] is snapshot}


def test_only_the_days_valued_from_the_same_inputs_are_reused_and_the_chart_is_as_made_from_nothing(
        portfolio, holdings):
    usd, _ = holdings
    first, answer = generated(portfolio)
    known = first.kept()
    valued = set(known.by_date)
    assert TODAY in valued and date(2023, 12, 31) in valued and len(valued) > 8

    # nothing changed (the chart made again the same day): every valuation reused, the same chart
    again, same = generated(portfolio, known)
    assert reused(again, known) == valued and same == answer

    # yesterday's close corrected (a new day's closes are the same kind of write): the days valued from it are
    # valued anew, every day before it is reused, and the chart is exactly the one made from nothing kept
    yesterday = TODAY - timedelta(days=1)
    closes_upsert(usd, {yesterday: "99.5"})
    corrected, answer_corrected = generated(portfolio, known)
    assert reused(corrected, known) == {day for day in valued if day < yesterday}
    assert answer_corrected == generated(portfolio)[1] != answer
    # and the past calendar years' figures (2022, 2023: ended before today) are the very ones measured before
    past = past_ranges(first)
    assert sorted(figures["end"] for figures in past.values()) == ["2022-12-31", "2023-12-31"]
    assert past_ranges(corrected) == past and all(
        past_ranges(corrected)[digest] is figures for digest, figures in past.items())
    assert corrected.snapshots[len(corrected.days) - 1].valued.total_value \
        != first.snapshots[len(first.days) - 1].valued.total_value

    # the EUR rate of Friday 29 December 2023 corrected: the days valued at it (until the next rate, on Monday: 31
    # December, the base of YTD) are valued anew, every other day is reused
    known = corrected.kept()
    rate_day, next_rate_day = date(2023, 12, 29), date(2024, 1, 1)
    FxRate.objects.filter(base="EUR", quote="USD", date=rate_day).update(rate=D("1.3"))
    rated, answer_rated = generated(portfolio, known)
    at_that_rate = {day for day in valued if rate_day <= day < next_rate_day}
    assert date(2023, 12, 31) in at_that_rate
    assert reused(rated, known) == valued - at_that_rate
    assert answer_rated == generated(portfolio)[1] != answer_corrected
    # 2023's figures are measured again (its last days' rate moved), 2022's are taken again
    (digest_2022, figures_2022), = ((d, f) for d, f in past.items() if f["end"] == "2022-12-31")
    assert past_ranges(rated)[digest_2022] is figures_2022
    (figures_2023,) = (f for f in past_ranges(rated).values() if f["end"] == "2023-12-31")
    assert all(figures_2023 is not figures for figures in past.values())

    # the close of the Friday before the EUR buy corrected: 2023's value line moves inside the year, its ends (31
    # Dec 2022 and 2023) do not: its figures are measured again all the same (the time-weighted return, whose
    # factors on either side of the buy do not cancel, is another), 2022's are taken again
    known = rated.kept()
    closes_upsert(usd, {date(2023, 2, 3): "80"})
    mid_year, answer_mid_year = generated(portfolio, known)
    assert answer_mid_year == generated(portfolio)[1] != answer_rated
    (remeasured,) = (f for f in past_ranges(mid_year).values() if f["end"] == "2023-12-31")
    assert (remeasured["value_start"], remeasured["value"]) == (figures_2023["value_start"], figures_2023["value"])
    assert remeasured["time_weighted_return"] != figures_2023["time_weighted_return"]
    assert past_ranges(mid_year)[digest_2022] is figures_2022
    rated, answer_rated = mid_year, answer_mid_year

    # the first trade's quantity edited (the same trade, day and price: only the replayed positions differ), then a
    # trade dated in the past: the positions every day shares changed, nothing is reused
    known = rated.kept()
    portfolio.transactions.filter(date=FIRST).update(quantity=D("12"))
    edited, answer_edited = generated(portfolio, known)
    assert reused(edited, known) == set()
    assert answer_edited == generated(portfolio)[1] != answer_rated
    known = edited.kept()
    TransactionFactory(portfolio=portfolio, instrument=usd, date=date(2024, 2, 1), quantity=D("3"), price=D("55"))
    traded, answer_traded = generated(portfolio, known)
    assert reused(traded, known) == set()
    assert answer_traded == generated(portfolio)[1] != answer_edited


def test_the_book_is_taken_again_only_when_made_from_exactly_the_same_transactions_rates_and_instruments(
        portfolio, holdings):
    usd, eur = holdings
    first, answer = generated(portfolio)
    kept = first.kept()
    assert kept.book is first.book and len(first.book.transactions) == 3

    # the chart made again the same day, then yesterday's close corrected (what a new day's closes do to the
    # transactions: nothing): the very book, and the chart made from nothing kept
    again, same = generated(portfolio, kept)
    assert again.book is kept.book and same == answer
    closes_upsert(usd, {TODAY - timedelta(days=1): "99.5"})
    corrected, answer_corrected = generated(portfolio, kept)
    assert corrected.book is kept.book and answer_corrected == generated(portfolio)[1] != answer
    # and the transactions as loaded were taken again, not read (portfolio_transactions_reload)
    assert corrected.loaded.expansion is kept.loaded.expansion and corrected.loaded.version is not None

    # the rate of the EUR trade's day corrected: its amounts in the base currency are made at it, so the book is
    # made anew (a rate of another day, looked up by no transaction, leaves it: the test above)
    kept = corrected.kept()
    assert ("EUR", date(2023, 2, 6)) in kept.book.rates_used
    FxRate.objects.filter(base="EUR", quote="USD", date=date(2023, 2, 6)).update(rate=D("1.2"))
    rated, answer_rated = generated(portfolio, kept)
    assert rated.book is not kept.book and answer_rated == generated(portfolio)[1] != answer_corrected
    assert rated.book.replay.flows.effects[1].amount != kept.book.replay.flows.effects[1].amount

    # a fee edited: the same trades otherwise, made anew
    kept = rated.kept()
    portfolio.transactions.filter(date=FIRST).update(fee=D("1.5"))
    fee, answer_fee = generated(portfolio, kept)
    assert fee.book is not kept.book and answer_fee == generated(portfolio)[1] != answer_rated
    assert fee.loaded.expansion is not kept.loaded.expansion and fee.loaded.version > kept.loaded.version

    # a transaction saved unchanged (the version moves, the rows are the same): loaded anew, the book taken again
    # with the new rows, so what is kept holds one copy of them, as its size counts (review r31)
    kept = fee.kept()
    portfolio.transactions.get(date=FIRST).save()
    saved, answer_saved = generated(portfolio, kept)
    assert saved.loaded.version > kept.loaded.version and saved.loaded.expansion is not kept.loaded.expansion
    assert saved.book.replay is kept.book.replay and answer_saved == answer_fee
    assert saved.kept().book.transactions is saved.kept().loaded.transactions

    # the USD stock given another currency by its provider: made anew (its trades now convert from USD to GBP)
    kept = fee.kept()
    FxRateFactory(base="GBP", quote="USD", date=date(2020, 1, 2), rate=D("1.25"))
    type(usd).objects.filter(pk=usd.pk).update(currency="GBP")
    moved, answer_moved = generated(portfolio, kept)
    assert moved.book is not kept.book and answer_moved == generated(portfolio)[1] != answer_fee


def same_bits(a, b) -> bool:
    return a.shape == b.shape and np.array_equal(np.ascontiguousarray(a).view("u8"), np.ascontiguousarray(b).view("u8"))


def same_grid(made, fresh) -> bool:
    """The grids of two generations are the same to the bit."""
    return (same_bits(made.value, fresh.value) and same_bits(made.value_local, fresh.value_local)
            and np.array_equal(made.left_out, fresh.left_out) and same_bits(made.held_today, fresh.held_today)
            and np.array_equal(made.priced_today, fresh.priced_today)
            and np.array_equal(made.value_gaps, fresh.value_gaps) and made.entries == fresh.entries)


def test_the_grid_keeps_its_days_before_the_first_whose_closes_or_rates_changed_to_the_bit(portfolio, holdings):
    usd, eur = holdings
    first, answer = generated(portfolio)
    assert first.grid.kept_days == 0 and first.grid_kept is not None
    kept = first.kept()

    # the chart made again the same day: the very grid
    again, same = generated(portfolio, kept)
    assert again.grid.kept_days == len(again.days) and same == answer

    # yesterday's close corrected (a new day's closes are the same write): this year's series rows are read
    # again, every day before 1 January is the kept grid's, and the grid is a whole one's to the bit
    closes_upsert(usd, {TODAY - timedelta(days=1): "99.5"})
    corrected, answer_corrected = generated(portfolio, kept)
    assert corrected.grid.kept_days == (date(2024, 1, 1) - FIRST).days
    fresh, answer_fresh = generated(portfolio)
    assert fresh.grid.kept_days == 0 and same_grid(corrected.grid, fresh.grid) and answer_corrected == answer_fresh
    assert not same_bits(corrected.grid.value, first.grid.value)

    # the EUR rate of Friday 29 December 2023 corrected: the days from it on are made again, in both currencies
    kept = corrected.kept()
    FxRate.objects.filter(base="EUR", quote="USD", date=date(2023, 12, 29)).update(rate=D("1.3"))
    rated, answer_rated = generated(portfolio, kept)
    assert rated.grid.kept_days == (date(2023, 12, 29) - FIRST).days
    fresh, answer_fresh = generated(portfolio)
    assert same_grid(rated.grid, fresh.grid) and answer_rated == answer_fresh != answer_corrected
    assert rated.grid.value_local.shape[1] == 2

    # a close of 2022 corrected: fewer than half the days left as they were, the grid is made whole
    kept = rated.kept()
    closes_upsert(usd, {date(2022, 6, 1): "40"})
    early, answer_early = generated(portfolio, kept)
    fresh, answer_fresh = generated(portfolio)
    assert early.grid.kept_days == 0 and same_grid(early.grid, fresh.grid) and answer_early == answer_fresh


def from_nothing(portfolio, *, today=TODAY):
    """A generation from nothing kept at all: no valuations, and a process reading the closes for the first time."""
    kept_reads = series_module._SERIES_CACHE
    series_module._SERIES_CACHE = series_module._SeriesCache()
    try:
        return generated(portfolio, today=today)
    finally:
        series_module._SERIES_CACHE = kept_reads


@pytest.mark.parametrize("later", [0, 1, 4])
def test_a_one_currency_portfolio_of_twenty_holdings_keeps_its_grid_to_the_bit_day_after_day(portfolio, later):
    # given 20 USD stocks in a USD portfolio (one currency: most portfolios), one large position and small ones,
    # closing every weekday up to yesterday: enough columns in a block for a matrix product's kernel to sum a
    # day's row otherwise when it has fewer rows beside it
    days = weekdays(FIRST, TODAY - timedelta(days=1))
    stocks = []
    for n in range(20):
        stock = InstrumentFactory(symbol=f"S{n}")
        quantity = D(100000) if n == 0 else D("3.7") + n
        TransactionFactory(portfolio=portfolio, instrument=stock, date=FIRST, quantity=quantity, price=D("20"))
        closes_upsert(stock, {day: str(round(D(20) + D((day.toordinal() * (n + 3)) % 997) / 7, 6)) for day in days})
        stocks.append(stock)
    made, _ = generated(portfolio)

    # when a close of this year is corrected the same day, or a later day comes with its closes
    today = TODAY + timedelta(days=later)
    closes_upsert(stocks[1], {date(2024, 2, 1): "31.37"})
    for n, stock in enumerate(stocks):
        closes_upsert(stock, {day: str(round(D(21) + D((day.toordinal() * (n + 5)) % 991) / 7, 6))
                              for day in weekdays(TODAY, today - timedelta(days=1))})
    reused, answer = generated(portfolio, made.kept(), today=today)

    # then the days before 1 January are kept, and the grid and the chart are those made from nothing kept
    assert reused.grid.kept_days == (date(2024, 1, 1) - FIRST).days
    fresh, answer_fresh = from_nothing(portfolio, today=today)
    assert same_grid(reused.grid, fresh.grid) and answer == answer_fresh


def test_a_grid_that_left_a_holding_out_is_not_kept_and_the_next_one_is_made_whole(portfolio, holdings):
    # given a GBP holding without a single GBP rate: left out of the value every day it is held
    usd, _ = holdings
    gbp = InstrumentFactory(symbol="GBPS", currency="GBP")
    TransactionFactory(portfolio=portfolio, instrument=gbp, date=date(2024, 3, 1), quantity=D("4"), price=D("20"),
                       currency="GBP")
    closes_create(instrument=gbp, closes={day: "21" for day in weekdays(date(2024, 3, 1), TODAY - timedelta(days=1))})
    first, _ = generated(portfolio)
    assert first.grid.left_out.any() and first.grid_kept is None

    # when yesterday's close is corrected: the grid is made whole, and is a whole one's
    closes_upsert(usd, {TODAY - timedelta(days=1): "99.5"})
    again, answer = generated(portfolio, first.kept())
    fresh, answer_fresh = generated(portfolio)
    assert again.grid.kept_days == 0 and same_grid(again.grid, fresh.grid) and answer == answer_fresh


def test_a_new_day_takes_the_book_again_with_its_invested_line_carried_unless_a_trade_becomes_dated(
        portfolio, holdings):
    usd, _ = holdings
    tomorrow, after = TODAY + timedelta(days=1), TODAY + timedelta(days=2)
    # a trade entered ahead of its date (the day after tomorrow): not part of the flows until then
    TransactionFactory(portfolio=portfolio, instrument=usd, date=after, quantity=D("2"), price=D("70"))
    first, _ = generated(portfolio)
    assert first.book.dated == 3 and len(first.book.invested) == len(first.days)

    # the next day: the same transactions dated, the same book but for its invested line, one day longer
    kept = first.kept()
    first_sums, first_past = first.book.made[INVESTED_SUMS], past_ranges(first)  # (the book's, made again)
    closes_upsert(usd, {TODAY: "64.25"})
    next_day, answer = generated(portfolio, kept, today=tomorrow)
    assert next_day.book.replay is kept.book.replay and next_day.book is not kept.book
    assert next_day.book.invested[:-1] == kept.book.invested and len(next_day.book.invested) == len(next_day.days)
    assert next_day.book.invested[-1] == kept.book.invested[-1] and next_day.book.invested_floats[-1] == \
        kept.book.invested_floats[-1]
    fresh, answer_fresh = generated(portfolio, today=tomorrow)
    assert answer == answer_fresh and same_grid(next_day.grid, fresh.grid)
    assert next_day.grid.kept_days == (date(2024, 1, 1) - FIRST).days  # this year's series rows, read again
    # the performance's running totals of the invested line are the kept ones (the day added moved no level), and
    # the past calendar years' figures too
    next_sums = next_day.book.made[INVESTED_SUMS]
    assert next_sums is not first_sums and next_sums.through is first_sums.through
    assert len(past_ranges(next_day)) == 2 and all(
        figures is first_past[digest] for digest, figures in past_ranges(next_day).items())

    # the day of the trade entered ahead: it is dated now (a flow, an observation), so the book is made anew
    kept = next_day.kept()
    traded, answer_traded = generated(portfolio, kept, today=after)
    assert traded.book.replay is not kept.book.replay and traded.book.dated == 4
    assert traded.book.invested[-1] == kept.book.invested[-1] + D("140")
    assert answer_traded == generated(portfolio, today=after)[1]
    assert traded.book.made[INVESTED_SUMS].through is not next_sums.through


def test_a_portfolio_with_no_close_yet_is_valued_and_its_valuations_kept_all_the_same(portfolio):
    # a new holding whose history is still being fetched: valued at its trade, no close to key a day by
    TransactionFactory(portfolio=portfolio, instrument=InstrumentFactory(symbol="NEWS"), date=date(2024, 6, 3),
                       quantity=D("2"), price=D("40"))
    first, answer = generated(portfolio)
    assert first.snapshots[len(first.days) - 1].valued.total_value == D("80")
    known = first.kept()
    again, same = generated(portfolio, known)
    assert same == answer and reused(again, known) == set(known.by_date)


def test_each_process_keeps_the_last_valuations_of_each_portfolio_within_its_setting(portfolio, holdings, settings):
    valuations_kept_clear()
    series, _ = generated(portfolio)
    valuations = series.kept()
    size = valuations_size(valuations)

    settings.CHART_KEPT_VALUATIONS_MB = 0
    valuations_kept_put(portfolio_id=portfolio.pk, valuations=valuations)
    assert valuations_kept_get(portfolio_id=portfolio.pk) is None

    settings.CHART_KEPT_VALUATIONS_MB = 1.5 * size / 1024 / 1024  # room for one portfolio's, not two
    valuations_kept_put(portfolio_id=portfolio.pk, valuations=valuations)
    assert valuations_kept_get(portfolio_id=portfolio.pk) is valuations
    valuations_kept_put(portfolio_id=portfolio.pk + 1, valuations=valuations)
    assert valuations_kept_get(portfolio_id=portfolio.pk) is None  # the least recently made went
    assert valuations_kept_get(portfolio_id=portfolio.pk + 1) is valuations
    valuations_kept_clear()


@pytest.mark.django_db(transaction=True)
def test_a_past_close_the_workers_fetch_anew_is_charted_with_the_valuations_before_it_kept(providers, api):  # noqa: F811
    # given a position bought a year ago, its history fetched by the workers from the provider, its chart made by
    # the chart worker (its threads run in this process: what it keeps is readable here)
    portfolio_id = portfolio_of(api)
    today = timezone.localdate()
    sessions = sessions_between(mic="XNYS", start=today - timedelta(days=380), end=today - timedelta(days=1))
    traded, last = sessions[5], sessions[-1]
    buy(api, portfolio_id, symbol="AAPL", date=traded, quantity="10", price=str(stock_price("AAPL", traded)))
    wait_for("the chart", current_chart(api, portfolio_id, "1M"))
    worker_settle()
    kept = valuations_kept_get(portfolio_id=portfolio_id)
    assert kept is not None and min(kept.by_date) < last <= max(kept.by_date)

    # when the provider's close of the last session before today changes and a refresh fetches it (a quote made
    # during that session: stored as its close)
    corrected = stock_price("AAPL", last) + 7
    providers.market.price_of = lambda symbol, day: corrected if day == last else stock_price(symbol, day)
    providers.market.today = last
    providers.market.quote_time = datetime.combine(last, time(18, 0), tzinfo=UTC)  # 13:00/14:00 in New York
    job = api.post("/api/prices/refresh/").json()
    wait_for("the refresh", lambda: api.get(job["progress_url"]).json()["state"] == "SUCCESS")

    # then the chart is made again with that close from that day on
    def charted() -> dict | None:
        chart = current_chart(api, portfolio_id, "1M")()
        values = {point["date"]: point["value"] for point in chart["series"]} if chart else {}
        return chart if values.get(last.isoformat()) == f"{10 * corrected:.2f}" else None

    wait_for("the chart with the corrected close", charted)
    worker_settle()
    # every valuation before that day the one the worker kept, not computed again; the days from it on anew
    again = valuations_kept_get(portfolio_id=portfolio_id)
    both = set(again.by_date) & set(kept.by_date)
    assert {day for day in both if again.by_date[day][1] is kept.by_date[day][1]} == {day for day in both
                                                                                      if day < last}
    assert any(day >= last for day in both)
    # the transactions as they were: replayed once, the book taken again
    assert again.book is kept.book
    # and the chart is exactly the one a generation from nothing kept makes
    made = chart_data_get(portfolio_id=portfolio_id)
    valuations_kept_clear()
    chart_data_generate(portfolio_id=portfolio_id)
    anew = chart_data_get(portfolio_id=portfolio_id)
    assert anew.pop("generated_at") > made.pop("generated_at") and anew == made


def test_what_is_kept_is_counted_for_its_valuations_and_its_transactions_and_a_limit_of_0_keeps_nothing(
        portfolio, settings):
    # given an active trader: 300 round trips of one instrument, nothing held at the end but one share
    stock = InstrumentFactory(symbol="TRAD")
    TransactionFactory(portfolio=portfolio, instrument=stock, date=date(2024, 1, 2), quantity=D("1"), price=D("10"))
    for k in range(300):
        day = date(2024, 1, 3) + timedelta(days=k // 2)
        TransactionFactory(portfolio=portfolio, instrument=stock, type="BUY" if k % 2 == 0 else "SELL", date=day,
                           quantity=D("5"), price=D("10") + k)
    series, _ = generated(portfolio)
    valuations = series.kept()
    # what every day was valued from, and each day's own, are digests: the valuations do not grow with the
    # transactions
    assert len(valuations.inputs) == 16 and {len(inputs) for inputs, _ in valuations.by_date.values()} == {16}
    without_book = replace(valuations, book=None)
    assert valuations_size(without_book) < 100 * 1024
    # the book does: counted per transaction and per day of its invested line, at least what it holds (the loaded
    # transactions and what the replay made of them, as tracemalloc counts them)
    book = valuations.book
    counted = 301 * BYTES_PER_TRANSACTION + len(book.invested) * BYTES_PER_DAY_OF_BOOK
    assert valuations_size(valuations) - valuations_size(without_book) == counted
    # (what the performance kept with it, its flows' totals and its invested line's, included)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        inputs = chart_inputs_load(portfolio=portfolio, closes_before=TODAY)
        made = chart_series_compute(inputs, today=TODAY)
        performance_with_live_compute(inputs, today=TODAY, series=made)
        remade = made.book
        del inputs, made
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert remade is not book and len(remade.transactions) == 301
    # and the grid, for its arrays
    assert valuations_size(valuations) - valuations_size(replace(valuations, grid=None)) == valuations.grid.nbytes \
        >= valuations.grid.value.nbytes
    assert {key if isinstance(key, str) else key[0] for key in remade.made} == {
        "flows", "codes", "trades", "invested_sums", "past_ranges"} and held <= counted

    # the transactions as loaded are the book's rows but for those of the cash types, which the book holds expanded
    # (review r32): counted a loaded row each
    assert valuations_size(valuations) == valuations_size(replace(valuations, loaded=None))  # none here
    for day in (date(2023, 12, 1), date(2023, 12, 4)):
        TransactionFactory(portfolio=portfolio, instrument=None, type="DEPOSIT", date=day, quantity=D("1"),
                           price=D("500"))
    funded = generated(portfolio)[0].kept()
    assert valuations_size(funded) - valuations_size(replace(funded, loaded=None)) == 2 * BYTES_PER_LOADED_ROW

    # a portfolio holding nothing on any day valued is counted too (never 0), and a limit of 0 keeps none at all
    settings.CHART_KEPT_VALUATIONS_MB = 0
    valuations_kept_clear()
    empty = type(valuations)(inputs=valuations.inputs, by_date={})
    assert valuations_size(empty) > 0
    valuations_kept_put(portfolio_id=portfolio.pk, valuations=empty)
    assert valuations_kept_get(portfolio_id=portfolio.pk) is None


def test_the_figures_of_the_ranges_that_ended_before_today_are_counted_with_the_book(portfolio, holdings):
    # given a portfolio held since 2022: its 2022 and 2023 figures are kept with its book
    series, _ = generated(portfolio)
    valuations = series.kept()
    assert past_ranges_kept(valuations.book) == 2
    size = valuations_size(valuations)
    figures = series.book.made.pop(PAST_RANGES)
    assert size - valuations_size(valuations) == 2 * BYTES_PER_PAST_RANGE
    # counted for at least what they hold, as tracemalloc counts a copy of them (the digests, the dicts and their
    # texts; the names of the fields are the same objects in every one)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        copied = {bytes(reversed(digest)): {name: text.encode().decode() if isinstance(text, str) else text
                                            for name, text in each.items()} for digest, each in figures.items()}
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(copied) == 2 and held <= 2 * BYTES_PER_PAST_RANGE


def test_the_book_keeps_the_totals_of_the_flows_for_the_latest_pattern_of_flows_seen_only(portfolio, holdings):
    # given a generation whose book kept the performance's totals of its flows, for the flows its value saw
    first, answer = generated(portfolio)
    made = first.book.made
    (seen,) = [key for key in made if isinstance(key, tuple)]
    # when the next one finds none for the flows it sees (kept for another pattern: a position left out then)
    made[("flows", b"another pattern")] = made.pop(seen)
    again, answer_again = generated(portfolio, first.kept())
    # then it makes them, and keeps those alone
    assert again.book.made is made and [key for key in made if isinstance(key, tuple)] == [seen]
    assert answer_again == answer
