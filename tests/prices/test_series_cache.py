"""A process keeps the packed series it read (prices/series.py) and is sent only the rows whose revision
changed; whatever changed the closes, its next read is the price rows as they are."""

from datetime import date
from decimal import Decimal as D

import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from prices import series
from prices.models import Instrument, PriceHistory, PriceSeries
from prices.series import (
    price_series_cache_clear,
    price_series_cache_stats,
    price_series_load,
    price_series_runs_load,
)
from tests.factories import InstrumentFactory, closes_upsert

pytestmark = [pytest.mark.skipif(connection.vendor != "postgresql", reason="the series are kept on Postgres"),
              pytest.mark.django_db(transaction=True)]

START = date(2022, 1, 1)


@pytest.fixture(autouse=True)
def cold_cache():
    price_series_cache_clear()
    yield
    price_series_cache_clear()


def _read(instruments, start=START) -> list[tuple[int, str, int]]:
    ids, days, micros = price_series_load(instrument_ids=[i.pk for i in instruments], start=start)
    return list(zip(ids.tolist(), days.astype("M8[D]").astype(str).tolist(), micros.tolist(), strict=True))


def _rows(instruments, start=START) -> list[tuple[int, str, int]]:
    """The price rows themselves: each instrument's closes from `start` on and its last one before."""
    out = []
    for instrument in sorted(instruments, key=lambda i: i.pk):
        rows = list(PriceHistory.objects.filter(instrument=instrument).order_by("date").values_list("date", "close"))
        before = [row for row in rows if row[0] < start][-1:]
        out += [(instrument.pk, day.isoformat(), int(close * 1_000_000))
                for day, close in before + [row for row in rows if row[0] >= start]]
    return out


def _sent() -> int:
    return price_series_cache_stats()["last_sent_rows"]


@pytest.fixture
def two():
    aapl, msft = InstrumentFactory(symbol="AAPL"), InstrumentFactory(symbol="MSFT")
    for instrument, base in ((aapl, 100), (msft, 300)):
        closes_upsert(instrument, {date(2021, 12, 30): f"{base - 1}", date(2022, 3, 1): f"{base}",
                                   date(2023, 3, 1): f"{base + 1}", date(2023, 3, 2): f"{base + 1}.5",
                                   date(2024, 3, 1): f"{base + 2}.5"})
    return aapl, msft


def test_a_second_read_is_sent_only_the_year_a_new_day_changed(two):
    aapl, msft = two
    # given a first read: every row sent (3 years and the seed's last close, per instrument)
    first = _read(two)
    assert first == _rows(two)
    assert _sent() == 8
    assert price_series_cache_stats()["instruments"] == 2
    # when nothing changed, the next read is sent no bytes, and is the same
    assert _read(two) == first
    assert _sent() == 0
    # when a new day's close lands, only that year's row of that instrument is sent
    closes_upsert(aapl, {date(2024, 3, 4): "103.25"})
    assert _read(two) == _rows(two)
    assert _sent() == 1
    assert (aapl.pk, "2024-03-04", 103_250_000) in _read(two)
    assert _sent() == 0
    closes_upsert(msft, {date(2024, 3, 4): "303"})
    assert _read(two) == _rows(two)
    assert _sent() == 1


def test_a_read_where_nothing_changed_asks_the_index_alone(two):
    # given a first read kept, and the series' visibility map set as autovacuum sets it
    first = price_series_runs_load(instrument_ids=[i.pk for i in two], start=START)
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM {PriceSeries._meta.db_table}")
    # when the same read is made again, nothing changed
    with CaptureQueriesContext(connection) as context:
        again = price_series_runs_load(instrument_ids=[i.pk for i in two], start=START)
    # then it is the kept arrays, and Postgres was asked one question about the series, answered (as
    # for a table of thousands of rows, where the planner picks the index by itself) from their unique
    # index alone, which holds each row's revision: no row visited (the lookup of new rows' bytes never
    # runs), the counts alone sent
    assert all(a is b for a, b in zip(again, first, strict=True))
    asked = [q["sql"] for q in context.captured_queries if f"FROM {PriceSeries._meta.db_table} " in q["sql"]]
    assert len(asked) == 1
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
        cursor.execute("SET enable_bitmapscan = off")
        # A parallel plan's costing can spread the disabled sequential scans' penalty over its workers (seen once
        # in a database whose series table had been made again and grown by earlier tests: a Parallel Append of
        # two sequential scans of 8 rows): never the plan of the question on a real table, so not asked about.
        cursor.execute("SET max_parallel_workers_per_gather = 0")
        try:
            cursor.execute(f"EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) {asked[0]}")
            plan = "\n".join(row[0] for row in cursor.fetchall())
            cursor.execute(asked[0])
            assert cursor.fetchall() == [(None, 8, 0, None, None)]  # 8 rows named, none new
        finally:
            cursor.execute("RESET enable_seqscan")
            cursor.execute("RESET enable_bitmapscan")
            cursor.execute("RESET max_parallel_workers_per_gather")
    scans = [line.strip() for line in plan.splitlines()
             if " on prices_priceseries" in line and "(never executed)" not in line]
    assert scans and all(line.startswith("->  Index Only Scan using priceseries_instrument_year_uniq")
                         or line.startswith("Index Only Scan using priceseries_instrument_year_uniq")
                         for line in scans), plan
    assert plan.count("Heap Fetches: 0") == len(scans), plan


def test_a_backfill_a_correction_and_deleted_closes_are_seen_by_the_next_read(two):
    aapl, msft = two
    _read(two)
    # a backfill of an old year re-packs every year from it on: those rows are sent again
    closes_upsert(aapl, {date(2022, 1, 3): "98", date(2021, 12, 31): "97"})
    assert _read(two) == _rows(two)
    assert _sent() == 4  # 2022, 2023, 2024 and the seed of 2021 of AAPL
    # a past close corrected by hand (no service on the way)
    PriceHistory.objects.filter(instrument=msft, date=date(2023, 3, 1)).update(close=D("311.000001"))
    assert _read(two) == _rows(two)
    assert (msft.pk, "2023-03-01", 311_000_001) in _read(two)
    # a year's closes deleted: its row is gone, and so is it from the read
    PriceHistory.objects.filter(instrument=aapl, date__year=2023).delete()
    assert not PriceSeries.objects.filter(instrument=aapl, year=2023).exists()
    assert _read(two) == _rows(two)
    assert [day for iid, day, _ in _read(two) if iid == aapl.pk] == [
        "2021-12-31", "2022-01-03", "2022-03-01", "2024-03-01"]
    # a series row written by hand, even with the same bytes, has a new revision: sent again
    PriceSeries.objects.filter(instrument=msft, year=2022).update(days=PriceSeries.objects.get(
        instrument=msft, year=2022).days)
    assert _read(two) == _rows(two)
    assert _sent() == 1


def test_an_instrument_deleted_is_gone_from_the_next_read(two):
    aapl, msft = two
    _read(two)
    Instrument.objects.filter(pk=msft.pk).delete()
    assert _read(two) == _rows([aapl])
    assert {iid for iid, _, _ in _read(two)} == {aapl.pk}
    assert price_series_cache_stats()["instruments"] == 1  # what it held of MSFT let go


def test_a_truncate_of_the_price_rows_empties_the_series_and_the_next_read(two):
    _read(two)
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {PriceHistory._meta.db_table}")
    assert not PriceSeries.objects.exists()
    assert _read(two) == []
    assert price_series_cache_stats()["instruments"] == 0


def test_the_close_before_the_start_whatever_was_held_of_its_year(two):
    aapl, msft = two
    # the seed year held as its last close only, then needed whole, then as a seed again, then whole again:
    # each start is a read of its own, kept apart
    for start in (date(2024, 1, 1), date(2023, 1, 1), date(2024, 1, 1), date(2023, 6, 1), date(2019, 1, 1)):
        assert _read(two, start) == _rows(two, start)
    assert _read(two, date(2024, 1, 1)) == [(aapl.pk, "2023-03-02", 101_500_000), (aapl.pk, "2024-03-01", 102_500_000),
                                            (msft.pk, "2023-03-02", 301_500_000), (msft.pk, "2024-03-01", 302_500_000)]
    assert _sent() == 0  # that start's read is kept: its rows (the 2023 seeds cut) unchanged, none sent
    # a read ending before a date cuts what it holds without changing it
    ids, days, _ = price_series_load(instrument_ids=[aapl.pk], start=START, before=date(2023, 3, 2))
    assert days.astype("M8[D]").astype(str).tolist() == ["2021-12-30", "2022-03-01", "2023-03-01"]
    assert _read([aapl]) == _rows([aapl])


def test_held_up_to_the_bound_least_recently_read_instrument_dropped_first(settings):
    a, b, c = (InstrumentFactory(symbol=s) for s in ("AAA", "BBB", "CCC"))
    for n, instrument in enumerate((a, b, c)):
        closes_upsert(instrument, {date(2024, 1, 2 + day): f"{10 * n + day}.5" for day in range(20)})
    # a read of one instrument keeps 20 closes (16 bytes each as arrays) and ~300 bytes more: two fit in
    # 1.5 kB, not three
    settings.PRICE_SERIES_CACHE_MB = 1.5 / 1024
    _read([a]), _read([b])
    assert price_series_cache_stats()["instruments"] == 2
    _read([c])  # AAA, read least recently, goes
    assert price_series_cache_stats()["instruments"] == 2
    assert _read([b]) == _rows([b]) and _sent() == 0
    assert _read([a]) == _rows([a]) and _sent() == 1
    # a read bigger than the bound (~1.4 kB against 1 kB): whole all the same, and not kept
    settings.PRICE_SERIES_CACHE_MB = 1 / 1024
    assert _read([a, b, c]) == _rows([a, b, c])
    assert price_series_cache_stats()["bytes"] <= 1024
    assert _read([a, b, c]) == _rows([a, b, c]) and _sent() == 3
    # none kept at 0
    settings.PRICE_SERIES_CACHE_MB = 0
    assert _read([a, b, c]) == _rows([a, b, c])
    assert price_series_cache_stats()["instruments"] == 0
    assert _read([a, b, c]) == _rows([a, b, c]) and _sent() == 3


@pytest.mark.parametrize("row", ["AAPL", "MSFT"])  # MSFT 2024's revision is the highest the read names
def test_a_revision_handed_out_again_after_the_sequence_is_set_back_is_not_taken_for_the_kept_one(two, row):
    aapl, msft = two
    _read(two)
    # a data-only restore's setval (or the migration undone and done again) sets the revisions back: the next
    # write of a series row may be given the very revision this process keeps for the row's old bytes
    kept = PriceSeries.objects.get(instrument=aapl if row == "AAPL" else msft, year=2024).revision
    with connection.cursor() as cursor:
        cursor.execute("SELECT setval('prices_priceseries_revision_seq', %s, false)", [kept])
    assert _read(two) == _rows(two)  # read again before the write: what it keeps must not outlive it
    closes_upsert(aapl, {date(2024, 3, 4): "103.25"})
    assert PriceSeries.objects.get(instrument=aapl, year=2024).revision == kept
    assert _read(two) == _rows(two)
    assert (aapl.pk, "2024-03-04", 103_250_000) in _read(two)
    # (MSFT: two rows now share that revision) and when another row changes, the read is made again right
    closes_upsert(msft, {date(2023, 3, 3): "301.75"})
    assert _read(two) == _rows(two)


def test_a_new_day_joins_each_instruments_unchanged_years_as_one_slice(monkeypatch):
    """A read made again after a new day's closes takes each instrument's kept years between the start's
    and the end's as one slice of the kept arrays, not one array per year; what it keeps of the rows
    (their revisions, where their closes are) serves the next reads as a whole read's would."""
    pair = [InstrumentFactory(symbol="AAPL"), InstrumentFactory(symbol="MSFT")]
    for n, instrument in enumerate(pair):
        closes_upsert(instrument, {date(year, month, 3 + n): f"{year - 2000}{month}.{n}5"
                                   for year in range(2018, 2025) for month in (2, 7, 11)})
    start, before = date(2019, 6, 1), date(2024, 10, 1)
    decoded = []
    decode = series._decode
    monkeypatch.setattr(series, "_decode", lambda chunks, *args, **kwargs: decoded.append(len(chunks.ids)) or decode(
        chunks, *args, **kwargs))

    def read() -> list:
        ids, days, micros = price_series_load(instrument_ids=[i.pk for i in pair], start=start, before=before)
        return list(zip(ids.tolist(), days.astype("M8[D]").astype(str).tolist(), micros.tolist(), strict=True))

    def rows() -> list:
        return [row for row in _rows(pair, start) if row[1] < before.isoformat()]

    assert read() == rows()
    assert decoded == [14]  # a whole read: the seed year and 2019 to 2024 of each, one chunk per row
    # a new day: per instrument, 2024 sent; the seed year (cut to its last close) and 2019 (the start's
    # year) apart; 2020 to 2023 as one slice
    closes_upsert(pair[0], {date(2024, 9, 2): "24.75"})
    closes_upsert(pair[1], {date(2024, 9, 3): "24.85"})
    assert read() == rows()
    assert decoded[1:] == [2 * 4]
    assert (pair[0].pk, "2024-09-02", 24_750_000) in read()
    assert _sent() == 0  # kept as made again: nothing changed, nothing sent
    # and made again from what it keeps after a past year's correction, and after the end moved
    PriceHistory.objects.filter(instrument=pair[1], date=date(2021, 7, 4)).update(close=D("21.5"))
    assert read() == rows()
    # (AAPL as above; MSFT: the seed, 2019, 2020 alone, and 2021 to 2024 sent, one chunk each)
    assert decoded[-1] == 4 + 7
    before = date(2024, 12, 31)
    assert read() == rows()
    assert decoded[-1] == 2 * 4  # nothing sent: 2024, cut at the old end, is whole now
    assert (pair[0].pk, "2024-11-03", 2411_050_000) in read()


def test_kept_years_no_longer_side_by_side_are_not_joined():
    """A series row deleted by itself (not through the price rows, whose triggers re-pack every later year):
    the kept years on either side of it no longer follow each other in the kept arrays, so the read made
    again must not take them as one slice — it equals a fresh read of the series as they are."""
    pair = [InstrumentFactory(symbol="AAPL"), InstrumentFactory(symbol="MSFT")]
    for n, instrument in enumerate(pair):
        closes_upsert(instrument, {date(year, month, 3 + n): f"{year - 2000}{month}.{n}5"
                                   for year in range(2018, 2025) for month in (2, 7, 11)})
    start, ids = date(2019, 6, 1), [i.pk for i in pair]

    def read() -> list:
        found, days, micros = price_series_load(instrument_ids=ids, start=start)
        return list(zip(found.tolist(), days.astype("M8[D]").astype(str).tolist(), micros.tolist(), strict=True))

    read()  # kept: 2019 to 2024 of each, side by side
    PriceSeries.objects.filter(instrument=pair[1], year=2021).delete()
    closes_upsert(pair[1], {date(2024, 12, 2): "24.5"})  # a new day: 2024 sent, the rest kept
    made_again = read()
    price_series_cache_clear()
    fresh = read()
    assert made_again == fresh
    assert not any(row[0] == pair[1].pk and row[1].startswith("2021") for row in fresh)
    assert (pair[1].pk, "2024-12-02", 24_500_000) in fresh


def test_the_days_are_kept_as_four_byte_day_numbers_whichever_way_a_read_is_made(two):
    # (a chart worker keeps 1.26 M closes of 500 holdings × 10 years: as datetime64 their days were 5 MB more)
    aapl, _ = two
    ids = [i.pk for i in two]
    whole = price_series_runs_load(instrument_ids=ids, start=START, before=date(2023, 3, 2))
    kept = price_series_runs_load(instrument_ids=ids, start=START, before=date(2023, 3, 2))
    closes_upsert(aapl, {date(2024, 3, 4): "103.25"})
    remade = price_series_runs_load(instrument_ids=ids, start=START, before=date(2024, 3, 5))
    for _, _, days, _ in (whole, kept, remade):
        assert days.dtype == np.dtype("i4")
    assert remade[2].astype("M8[D]").astype(str).tolist() == [row[1] for row in _rows(two)]


def test_each_read_names_the_read_it_was_made_from_and_the_first_day_it_may_differ_from(two):
    aapl, msft = two
    ids = [i.pk for i in two]

    def read(before=None):
        arrays, lineage = series.price_series_runs_read(instrument_ids=ids, start=START, before=before)
        return arrays, lineage

    # a first read is whole; the same again is the very arrays, named as the same read
    whole, first = read()
    assert first.read is not None and first.previous is None
    same, again = read()
    assert same is whole and again == (first.read, first.read, None)

    # a close of 2024 written: made again from the kept read, the same before 1 January 2024, row for row
    closes_upsert(aapl, {date(2024, 3, 4): "103.25"})
    remade, after = read()
    assert after.read not in (None, first.read) and after.previous == first.read
    assert after.changed_from == date(2024, 1, 1)
    cut = int(np.datetime64("2024-01-01", "D").astype("i4"))
    for k in range(len(whole[0])):
        old_days, new_days = (a[2][a[1][k]:a[1][k + 1]] for a in (whole, remade))
        old_micros, new_micros = (a[3][a[1][k]:a[1][k + 1]] for a in (whole, remade))
        assert np.array_equal(old_days[old_days < cut], new_days[new_days < cut])
        assert np.array_equal(old_micros[old_days < cut], new_micros[new_days < cut])
    assert len(remade[2]) == len(whole[2]) + 1

    # a correction of MSFT's 2022: from 1 January 2022 (its later years re-packed too)
    closes_upsert(msft, {date(2022, 3, 1): "299.5"})
    _, corrected = read()
    assert corrected.previous == after.read and corrected.changed_from == date(2022, 1, 1)
    # every close of MSFT's 2022 deleted: a kept row no longer named, which the rows sent do not say: read whole,
    # made from no kept read
    PriceHistory.objects.filter(instrument=msft, date__year=2022).delete()
    deleted_arrays, deleted = read()
    assert deleted.read is not None and deleted.previous is None and deleted.changed_from is None
    assert deleted_arrays[2].astype("M8[D]").astype(str).tolist() == [row[1] for row in _rows(two)]
    # a read ending elsewhere: from that end's year
    _, ending = read(before=date(2023, 3, 2))
    assert ending.previous == deleted.read and ending.changed_from == date(2023, 1, 1)
