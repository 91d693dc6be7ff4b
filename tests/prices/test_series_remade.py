"""A kept series read made again from the rows named and the new ones sent (prices/series.py _named_of,
_remade_chunks, _changed_from) against a whole read of the rows as they are, and its lineage (SeriesLineage) against
the read it names, whatever was written between the two: new days, backfills, corrections, years and rows deleted,
a deletion and an insertion together, rows rewritten as they were, the start and the end moving (review r31); and
both against the price rows themselves."""

import random
from datetime import date, timedelta

import numpy as np
import pytest
from django.db import connection, transaction

from prices import series
from prices.models import PriceHistory, PriceSeries
from prices.series import price_series_cache_clear, price_series_runs_read
from tests.factories import InstrumentFactory, closes_upsert
from tests.prices.test_series_cache import _rows

pytestmark = [pytest.mark.skipif(connection.vendor != "postgresql", reason="the series are kept on Postgres"),
              pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def cold_cache():
    price_series_cache_clear()
    yield
    price_series_cache_clear()


def _whole(ids, start, before):
    return series._SeriesCache().load(instrument_ids=ids, start=start, before=before)[0]


def _by_instrument(arrays):
    instruments, starts, days, micros = arrays
    return {iid: (days[starts[k]:starts[k + 1]], micros[starts[k]:starts[k + 1]])
            for k, iid in enumerate(instruments.tolist())}


def _check_lineage(arrays, lineage, reads, start=None):
    if start is not None and lineage.changed_from is not None and lineage.changed_from <= start:
        if lineage.read is not None:
            reads[lineage.read] = arrays
        return  # every grid day remade: the carried close may differ (the seed test below)
    if lineage.read is not None:
        reads[lineage.read] = arrays
    if lineage.previous is None:
        return
    previous = reads[lineage.previous]
    if lineage.changed_from is None:
        assert all(a is b for a, b in zip(arrays, previous, strict=True)) or all(
            np.array_equal(a, b) for a, b in zip(arrays, previous, strict=True)), "changed_from None yet differs"
        return
    cut = (lineage.changed_from - date(1970, 1, 1)).days
    old, new = _by_instrument(previous), _by_instrument(arrays)
    for iid in old.keys() | new.keys():
        od, om = old.get(iid, (np.empty(0, "i4"), np.empty(0, "i8")))
        nd, nm = new.get(iid, (np.empty(0, "i4"), np.empty(0, "i8")))
        assert np.array_equal(od[od < cut], nd[nd < cut]) and np.array_equal(om[od < cut], nm[nd < cut]), \
            f"instrument {iid}: closes before {lineage.changed_from} differ from the previous read's"


@pytest.mark.parametrize("seed", range(8))
def test_every_read_made_again_is_a_whole_read_and_its_lineage_holds(seed):
    rng = random.Random(seed)
    quad = [InstrumentFactory(symbol=f"R{seed}{k}") for k in range(4)]
    for instrument in quad[:3]:  # the fourth has no rows at first
        years = sorted(rng.sample(range(2012, 2025), rng.randrange(3, 10)))  # gaps between years
        closes = {date(year, 1, 1) + timedelta(days=rng.randrange(365)): f"{rng.randrange(1, 999)}.25"
                  for year in years for _ in range(rng.randrange(1, 5))}
        if rng.random() < 0.5:
            closes[date(years[-1], 1, 1)] = "7"  # a 1 January close
        closes_upsert(instrument, closes)
    ids = [i.pk for i in quad]
    starts = [date(2018, 1, 1), date(2018, 5, 1), date(2020, 12, 31)]
    reads, mirrored = {}, True
    for step in range(50):
        instrument = rng.choice(quad)
        change = rng.randrange(9)
        if change == 5 and seed % 2 == 0:  # half the seeds keep the series a mirror of the price rows throughout
            change = 8
        if change == 0:  # a new day
            day = date(2024, 12, 1) + timedelta(days=rng.randrange(30))
            closes_upsert(instrument, {day: f"{rng.randrange(1, 999)}"})
        elif change == 1:  # a backfill or correction
            day = date(2010, 1, 1) + timedelta(days=rng.randrange(5500))
            closes_upsert(instrument, {day: f"{rng.randrange(1, 99)}.5"})
        elif change == 2:  # a year's closes deleted
            PriceHistory.objects.filter(instrument=instrument, date__year=rng.randrange(2010, 2026)).delete()
        elif change == 3:  # every close of an instrument deleted
            PriceHistory.objects.filter(instrument=instrument).delete()
        elif change == 4:  # a new year's 1 January
            closes_upsert(instrument, {date(rng.choice([2019, 2021, 2025]), 1, 1): "3.5"})
        elif change == 5:  # a series row deleted by itself (the price rows no longer all mirrored)
            row = PriceSeries.objects.filter(instrument=instrument).order_by("?").first()
            if row is not None:
                row.delete()
                mirrored = False
        elif change == 6:  # a deletion and an insertion together (the counts of rows named may not move)
            other = rng.choice(quad)
            with transaction.atomic():
                PriceHistory.objects.filter(instrument=instrument, date__year=rng.randrange(2016, 2025)).delete()
                closes_upsert(other, {date(rng.randrange(2016, 2026), 1, 1) + timedelta(days=rng.randrange(30)): "5"})
        elif change == 7:  # a series row rewritten as it is (a new revision, the same bytes)
            with connection.cursor() as cursor:
                cursor.execute(f"UPDATE {PriceSeries._meta.db_table} SET days = days WHERE instrument_id = %s "
                               "AND year = %s", [instrument.pk, rng.randrange(2010, 2026)])
        for _ in range(2):
            start = rng.choice(starts)
            before = rng.choice([None, date(2024, 12, 15), date(2024, 1, 1), date(2023, 7, 1), date(2025, 1, 2),
                                 date(2021, 1, 1)])
            arrays, lineage = price_series_runs_read(instrument_ids=ids, start=start, before=before)
            whole = _whole(ids, start, before)
            for a, b in zip(arrays, whole, strict=True):
                assert a.dtype == b.dtype and np.array_equal(a, b), (step, change, start, before)
            # and both are the price rows themselves, while the series mirror them all
            instruments, runs, days, micros = arrays
            got = list(zip(np.repeat(instruments, np.diff(runs)).tolist(),
                           days.astype("M8[D]").astype(str).tolist(), micros.tolist(), strict=True))
            assert not mirrored or got == [row for row in _rows(quad, start)
                                           if before is None or row[1] < before.isoformat()]
            _check_lineage(arrays, lineage, reads, start)


def test_a_close_added_before_the_start_in_its_year_names_a_change_on_or_before_the_start():
    """The close carried into the start changes (2010's, then one of the start's own year): the lineage names the
    start's year as changed, on or before the start, where SeriesLineage promises nothing kept the same."""
    x = InstrumentFactory(symbol="SEEDX")
    closes_upsert(x, {date(2010, 10, 8): "10", date(2018, 6, 1): "20"})
    start = date(2018, 5, 1)
    reads = {}
    arrays, lineage = price_series_runs_read(instrument_ids=[x.pk], start=start)
    _check_lineage(arrays, lineage, reads)
    closes_upsert(x, {date(2018, 2, 1): "15"})  # the close carried into the start is now this one, not 2010's
    arrays, lineage = price_series_runs_read(instrument_ids=[x.pk], start=start)
    assert lineage.changed_from == date(2018, 1, 1) <= start
    assert _by_instrument(arrays)[x.pk][0].astype("M8[D]").astype(str).tolist() == ["2018-02-01", "2018-06-01"]
    _check_lineage(arrays, lineage, reads, start)


def test_a_kept_row_deleted_and_a_new_key_written_together_keep_the_count_yet_read_right():
    x, y = InstrumentFactory(symbol="CX"), InstrumentFactory(symbol="CY")
    for instrument in (x, y):
        closes_upsert(instrument, {date(year, 3, 2): f"{year - 2000}" for year in range(2016, 2024)})
    ids, start = [x.pk, y.pk], date(2018, 5, 1)
    reads = {}
    arrays, lineage = price_series_runs_read(instrument_ids=ids, start=start)
    _check_lineage(arrays, lineage, reads)
    with transaction.atomic():
        PriceSeries.objects.filter(instrument=x, year=2020).delete()  # a kept row gone
        closes_upsert(y, {date(2024, 1, 1): "24"})  # a new key: as many rows named as kept
    arrays, lineage = price_series_runs_read(instrument_ids=ids, start=start)
    for a, b in zip(arrays, _whole(ids, start, None), strict=True):
        assert np.array_equal(a, b)
    _check_lineage(arrays, lineage, reads)
    assert lineage.previous is None  # read whole
