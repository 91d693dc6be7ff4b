"""Chart data through a real worker: 202 → progress → 200, regenerated after edits, last good kept."""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from decimal import Decimal
from io import StringIO

import psycopg
import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone
from django_redis import get_redis_connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from charts.cache import (
    ANSWER_FORMAT,
    CHART_LAYOUT,
    Making,
    chart_data_get,
    chart_data_store,
    chart_making_release,
    chart_making_take,
    chart_progress_get,
)
from charts.services import chart_regeneration_request
from charts.tasks import generate_chart_data_task
from portfolio.cache import portfolio_version_get, portfolio_versions_bump
from prices.models import PriceHistory
from prices.series import price_series_cache_clear, price_series_cache_stats
from tests.charts.factories import held_portfolio
from tests.factories import InstrumentFactory, PriceFactory, TransactionFactory, closes_upsert
from tests.reliability.procs import database_url_of_test
from tests.worker import worker_settle

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("no_debounce")]


@pytest.fixture
def portfolio(owner):
    return held_portfolio(owner, symbol="CHRT")


def poll(client: APIClient, url: str, until, timeout: float = 20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = client.get(url)
        if until(response):
            return response
        time.sleep(0.1)
    raise AssertionError(f"{url} never got there: {response.status_code} {response.json()}")


def test_pending_then_progress_then_ready(worker, client, portfolio):
    url = f"/api/dashboard-chart-data/{portfolio.pk}/?range=1M"

    first = client.get(url)

    assert first.status_code == 202
    assert first.json() == {"status": "pending", "progress_url": f"/api/chart-generator-progress/{portfolio.pk}/"}
    progress = poll(client, first.json()["progress_url"], lambda r: r.json()["state"] == "SUCCESS").json()
    assert (progress["done"], progress["total"], progress["percent"]) == (3, 3, 100.0)
    ready = client.get(url)
    assert ready.status_code == 200
    body = ready.json()
    assert (body["status"], body["range"], body["outdated"]) == ("ready", "1M", False)
    today = timezone.localdate()
    series = {point["date"]: (point["value"], point["invested"]) for point in body["series"]}
    assert series[(today - timedelta(days=4)).isoformat()] == ("1000.00", "1000.00")
    assert series[(today - timedelta(days=3)).isoformat()] == ("1100.00", "1000.00")
    assert series[(today - timedelta(days=2)).isoformat()] == ("1100.00", "1000.00")  # carried forward
    assert series[(today - timedelta(days=1)).isoformat()] == ("1200.00", "1000.00")


def test_a_transaction_edit_bumps_the_version_and_regenerates(worker, client, portfolio):
    client.get(f"/api/dashboard-chart-data/{portfolio.pk}/")
    poll(client, f"/api/chart-generator-progress/{portfolio.pk}/", lambda r: r.json()["state"] == "SUCCESS")
    version = portfolio_version_get(portfolio_id=portfolio.pk)
    tx = portfolio.transactions.get()

    response = client.patch(f"/api/portfolios/{portfolio.pk}/transactions/{tx.pk}/", {"quantity": "20"},
                            format="json")

    assert response.status_code == 200
    assert portfolio_version_get(portfolio_id=portfolio.pk) == version + 1
    # the edit itself queued the regeneration: no chart request needed to trigger it
    data = None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        data = chart_data_get(portfolio_id=portfolio.pk)
        if data and data["version"] >= version + 1:
            break
        time.sleep(0.1)
    assert data["version"] >= version + 1
    assert data["ranges"]["1M"][-1]["invested"] == "2000.00"
    # (the edit also asked for the closes of the holding's sparkline months, which a backfill may write meanwhile —
    # today's too once today's session has closed: one more regeneration, and the line then ends on today's close)
    today = timezone.localdate()

    def ends_on_the_latest_close(response) -> bool:
        if response.status_code != 200 or response.json()["outdated"]:
            return False
        todays = PriceHistory.objects.filter(instrument__symbol="CHRT", date=today).values_list("close", flat=True)
        latest = todays.first() or Decimal("120")
        return response.json()["series"][-1] == {"date": today.isoformat(), "value": f"{20 * latest:.2f}",
                                                 "invested": "2000.00"}

    body = poll(client, f"/api/dashboard-chart-data/{portfolio.pk}/?range=1M", ends_on_the_latest_close).json()
    series = {point["date"]: (point["value"], point["invested"]) for point in body["series"]}
    assert series[(today - timedelta(days=1)).isoformat()] == ("2400.00", "2000.00")


def test_an_outdated_chart_is_served_marked_while_a_new_one_is_made(client, portfolio):
    chart_data_store(portfolio_id=portfolio.pk, version=-1, data={"ranges": {"1Y": [{"date": "2024-01-02",
                     "value": "1.00", "invested": "1.00"}]}})
    body = client.get(f"/api/dashboard-chart-data/{portfolio.pk}/?range=1Y").json()
    assert (body["status"], body["outdated"], body["series"][0]["value"]) == ("ready", True, "1.00")
    assert 0 <= body["age_seconds"] < 60
    progress = client.get(f"/api/chart-generator-progress/{portfolio.pk}/").json()
    # its regeneration is queued (a worker left running by an earlier test may already be on it)
    assert progress["state"] in ("PENDING", "PROGRESS", "SUCCESS") and progress["total"] == 3


def test_a_failed_generation_keeps_the_last_good_chart(worker, client, portfolio):
    chart_data_store(portfolio_id=portfolio.pk, version=-1, data={"ranges": {"1Y": []}})
    # A history no service would accept (selling more than held), as only a direct DB write makes it.
    tx = portfolio.transactions.get()
    TransactionFactory(portfolio=portfolio, instrument=tx.instrument, type="SELL", date=tx.date,
                       quantity=Decimal("50"), price=Decimal("1"))
    chart_regeneration_request(portfolio_ids=[portfolio.pk])
    progress = poll(client, f"/api/chart-generator-progress/{portfolio.pk}/",
                    lambda r: r.json()["state"] in ("SUCCESS", "FAILURE")).json()
    assert progress["state"] == "FAILURE"
    assert "OversellError" in progress["error"]
    body = client.get(f"/api/dashboard-chart-data/{portfolio.pk}/?range=1Y").json()
    assert (body["status"], body["outdated"]) == ("ready", True)
    assert chart_data_get(portfolio_id=portfolio.pk)["version"] == -1


def test_bad_range_is_a_400_naming_it(client, portfolio):
    response = client.get(f"/api/dashboard-chart-data/{portfolio.pk}/?range=2W")
    assert response.status_code == 400
    assert "range" in response.json()


def test_chart_endpoints_are_owner_scoped(client, portfolio):
    stranger = APIClient()
    stranger.credentials(HTTP_AUTHORIZATION="Token " + Token.objects.create(
        user=get_user_model().objects.create_user("dave", password="x")).key)
    for url in (f"/api/dashboard-chart-data/{portfolio.pk}/", f"/api/chart-generator-progress/{portfolio.pk}/"):
        assert stranger.get(url).status_code == 404
        assert APIClient().get(url).status_code == 401
        assert client.get(url).status_code in (200, 202)


def test_generate_charts_command_runs_here_or_queues(client, portfolio):
    out = StringIO()
    call_command("generate_charts", "--portfolio", str(portfolio.pk), stdout=out, stderr=StringIO())
    assert "Generated charts of 1 portfolio." in out.getvalue()
    data = chart_data_get(portfolio_id=portfolio.pk)
    assert data["version"] == portfolio_version_get(portfolio_id=portfolio.pk)
    assert data["ranges"]["1M"][-1]["value"] == "1200.00"
    queued = StringIO()
    call_command("generate_charts", "--queue", stdout=queued, stderr=StringIO())
    assert "Queued 1 chart regeneration " in queued.getvalue()
    with pytest.raises(CommandError, match="No portfolio 999999"):
        call_command("generate_charts", "--portfolio", "999999", stdout=StringIO(), stderr=StringIO())


@contextmanager
def generations_held() -> Iterator[None]:
    """Any generation a worker runs meanwhile waits in its first step (the transactions table locked)."""
    with psycopg.connect(database_url_of_test()) as blocker:
        blocker.execute("LOCK TABLE portfolio_transaction IN ACCESS EXCLUSIVE MODE")
        yield


def test_a_chart_key_of_another_shape_is_replaced_not_a_500(client, portfolio):
    # a string where the chart's hash belongs (whatever put it there): read as no chart, replaced when generated
    get_redis_connection("default").set(f"folio:chart:{portfolio.pk}:data:l{CHART_LAYOUT}",
                                        '{"version": 0, "ranges": {}}')
    with generations_held():  # (see the next test)
        assert client.get(f"/api/dashboard-chart-data/{portfolio.pk}/").status_code == 202
        assert client.get(f"/api/portfolios/{portfolio.pk}/performance/").status_code == 202
    call_command("generate_charts", "--portfolio", str(portfolio.pk), stdout=StringIO(), stderr=StringIO())
    assert client.get(f"/api/dashboard-chart-data/{portfolio.pk}/?range=1M").status_code == 200


def test_a_chart_cached_in_an_older_layout_is_made_again_not_misread(client, portfolio):
    # given what Folio cached before sparklines were keyed by instrument id (layout 1: by symbol, no "layout"
    # field) for the portfolio's present versions, today: its chart data and its answer with the sparklines
    portfolio.refresh_from_db()
    today = timezone.localdate().isoformat()
    old = {"version": str(portfolio.history_version), "generated_at": "1.0", "as_of": f'"{today}"',
           "range:1M": f'[{{"date": "{today}", "value": "9.99", "invested": "9.99"}}]', "allocation": "{}",
           "warnings": "[]", "live": "null", "sparklines": f'{{"CHRT": [{{"date": "{today}", "close": "9.99"}}]}}'}
    redis = get_redis_connection("default")
    redis.hset(f"folio:chart:{portfolio.pk}:data", mapping=old)
    redis.set(f"folio:chart:{portfolio.pk}:answer:h{portfolio.history_version}:d{portfolio.data_version}:{today}:"
              "1M:sparklines", b'1.0\n,"series":[],"sparklines":{"CHRT":[]}}', ex=60)
    url = f"/api/dashboard-chart-data/{portfolio.pk}/?range=1M&include=sparklines"

    # when the chart is read, it is no chart yet: neither cached part is sent (the generation a read queues held
    # in its first step meanwhile: the module's worker, started by an earlier test, would otherwise make the chart
    # before the next read when this thread is slow)
    with generations_held():
        assert client.get(url).status_code == 202
        assert client.get(f"/api/portfolios/{portfolio.pk}/performance/").status_code == 202
        assert chart_data_get(portfolio_id=portfolio.pk) is None

    # then the generation replaces it, and the sparklines are by instrument id
    call_command("generate_charts", "--portfolio", str(portfolio.pk), stdout=StringIO(), stderr=StringIO())
    body = client.get(url).json()
    closes = PriceHistory.objects.filter(instrument__symbol="CHRT").order_by("date").values_list("date", flat=True)
    assert [day.isoformat() for day in closes] == [
        (timezone.localdate() - timedelta(days=n)).isoformat() for n in (4, 3, 1)]
    assert body["sparklines"] == {str(portfolio.transactions.get().instrument_id): [
        {"date": day.isoformat(), "close": close} for day, close in zip(closes, ("100", "110", "120"), strict=True)]}
    assert body["series"][-1]["value"] == "1200.00"


def test_deleting_a_portfolio_deletes_its_chart_data_of_every_layout(client, portfolio):
    # given its chart generated, beside what an earlier layout left (layout 1's key had no suffix)
    call_command("generate_charts", "--portfolio", str(portfolio.pk), stdout=StringIO(), stderr=StringIO())
    redis = get_redis_connection("default")
    keys = [f"folio:chart:{portfolio.pk}:data"] + [
        f"folio:chart:{portfolio.pk}:data:l{layout}" for layout in range(2, CHART_LAYOUT + 1)]
    for key in keys[:-1]:
        redis.hset(key, mapping={"version": "0"})
    assert [redis.exists(key) for key in keys] == [1] * len(keys)
    # when its owner deletes it, then none is left to expire
    assert client.delete(f"/api/portfolios/{portfolio.pk}/").status_code == 204
    assert [redis.exists(key) for key in keys] == [0] * len(keys)


def _generated_at(portfolio_id: int) -> float | None:
    data = chart_data_get(portfolio_id=portfolio_id)
    return data and data["generated_at"]


def test_with_no_chart_at_all_the_generation_is_queued_at_once_and_a_debounced_one_then_skips(
        worker, client, portfolio, settings):
    # given a regeneration already waiting out a long debounce (what a write's own request does)
    settings.CHART_DEBOUNCE_SECONDS = 6
    assert chart_regeneration_request(portfolio_ids=[portfolio.pk]) == [portfolio.pk]
    url = f"/api/dashboard-chart-data/{portfolio.pk}/?range=1M"
    asked = time.monotonic()

    # when the page asks for the chart, there being none to serve meanwhile
    first = client.get(url)

    # then it is generated at once, not after the debounce
    assert first.status_code == 202
    ready = poll(client, url, lambda r: r.status_code == 200, timeout=10)
    assert time.monotonic() - asked < 4
    assert ready.json()["outdated"] is False and ready.json()["series"][-1]["value"] == "1200.00"
    generated_at = _generated_at(portfolio.pk)
    # and the debounced run, finding the chart current, leaves it as it is
    time.sleep(max(0.0, asked + 6 - time.monotonic()))
    worker_settle()
    assert _generated_at(portfolio.pk) == generated_at
    assert chart_progress_get(portfolio_id=portfolio.pk)["state"] == "SUCCESS"


def test_a_run_marks_what_it_makes_unless_another_run_makes_it_or_a_newer_one_or_it_is_made(portfolio):
    today, yesterday = timezone.localdate(), timezone.localdate() - timedelta(days=1)
    redis = get_redis_connection("default")

    def take(version: int, day: date = today, unless_made: bool = True) -> Making:
        return chart_making_take(portfolio_id=portfolio.pk, version=version, day=day, seconds=60,
                                 unless_made=unless_made)

    def mark() -> bytes | None:
        return redis.get(f"folio:chart:{portfolio.pk}:making")

    # given a run making version 5 of today's chart
    five = take(5)
    assert five.held.startswith(f"5@{today.isoformat()} ") and not five.made and mark() == five.held.encode()

    # then another run of version 5, an older version's (it read the version just before a write, and reached
    # its mark late) or yesterday's takes nothing, even regardless of a chart made: the mark stays the first's
    assert [take(5), take(4), take(5, day=yesterday), take(4, unless_made=False)] == [Making(None, False)] * 4
    assert mark() == five.held.encode()
    # and a newer version's run takes it over (the older run may still be going)
    six = take(6)
    assert six.held.startswith(f"6@{today.isoformat()} ") and mark() == six.held.encode()

    # when that run has stored its chart and dropped its mark
    chart_data_store(portfolio_id=portfolio.pk, version=6, data={"as_of": today.isoformat(), "ranges": {"1M": []}})
    chart_making_release(portfolio_id=portfolio.pk, held=six.held)

    # then a run of that version (or an older one) finds it made, in the same step, and marks nothing: checked
    # apart, a run that found no chart and then no mark (the other finishing in between) made it again
    assert [take(6), take(5)] == [Making(None, True)] * 2 and mark() is None
    # but a regeneration asked for regardless, or a newer version's run, takes the mark
    forced = take(6, unless_made=False)
    assert forced.held.startswith("6@") and mark() == forced.held.encode()
    chart_making_release(portfolio_id=portfolio.pk, held=forced.held)
    assert take(7).held.startswith("7@") and mark().startswith(b"7@")
    redis.delete(f"folio:chart:{portfolio.pk}:making")
    # and a chart made yesterday is not today's
    chart_data_store(portfolio_id=portfolio.pk, version=7, data={"as_of": yesterday.isoformat(), "ranges": {}})
    assert take(7).held.startswith(f"7@{today.isoformat()} ")

    # and after midnight, yesterday's run's mark is taken over by today's run of its version
    redis.delete(f"folio:chart:{portfolio.pk}:making")
    take(8, day=yesterday)
    assert take(8).held.startswith(f"8@{today.isoformat()} ")
    # and a later day's mark of an older version holds no run of a newer version back (the run a write queued
    # just before midnight, behind a run of the version before the write that reached the new day first)
    assert take(10, day=yesterday).held.startswith(f"10@{yesterday.isoformat()} ")
    redis.delete(f"folio:chart:{portfolio.pk}:making")


def test_an_outdated_chart_is_regenerated_after_the_debounce_not_at_once(worker, client, portfolio, settings):
    settings.CHART_DEBOUNCE_SECONDS = 3
    chart_data_store(portfolio_id=portfolio.pk, version=-1, data={"ranges": {"1M": []}})
    url = f"/api/dashboard-chart-data/{portfolio.pk}/?range=1M"

    assert client.get(url).json()["outdated"] is True

    time.sleep(1.5)
    assert chart_data_get(portfolio_id=portfolio.pk)["version"] == -1  # still waiting out the debounce
    body = poll(client, url, lambda r: r.json()["outdated"] is False, timeout=15).json()
    assert body["series"][-1]["value"] == "1200.00"


def test_polls_while_a_generation_runs_queue_nothing_more(worker, client, portfolio):
    url = f"/api/dashboard-chart-data/{portfolio.pk}/?range=1M"
    redis = get_redis_connection("default")
    claims = [f"folio:chart:{portfolio.pk}:scheduled", f"folio:chart:{portfolio.pk}:prompt"]
    # given a generation held in its first step (the transactions table locked by the test)
    with generations_held():
        assert client.get(url).status_code == 202
        poll(client, f"/api/chart-generator-progress/{portfolio.pk}/", lambda r: r.json()["state"] == "PROGRESS")

        # when the page keeps polling meanwhile
        for _ in range(5):
            assert client.get(url).status_code == 202
            time.sleep(0.1)

        # then nothing more was claimed or queued: the one generation is all the worker holds
        assert redis.exists(*claims) == 0
        assert (redis.llen("charts"), redis.hlen("unacked")) == (0, 1)

        # unless its mark has lasted its minute (its worker may be lost): then a poll asks again
        assert 0 < redis.ttl(f"folio:chart:{portfolio.pk}:making") <= 60
        redis.pexpire(f"folio:chart:{portfolio.pk}:making", 1)
        time.sleep(0.01)
        assert client.get(url).status_code == 202
        deadline = time.monotonic() + 10
        while redis.hlen("unacked") < 2:
            assert time.monotonic() < deadline, "no second generation was queued"
            time.sleep(0.05)
    assert poll(client, url, lambda r: r.status_code == 200).json()["outdated"] is False
    worker_settle()
    assert redis.exists(*claims) == 0


def _answers(portfolio_id: int) -> list[bytes]:
    return sorted(get_redis_connection("default").keys(f"folio:chart:{portfolio_id}:answer:*"))


def test_a_current_answer_is_sent_as_cached_until_a_version_moves(worker, client, portfolio):
    url = f"/api/dashboard-chart-data/{portfolio.pk}/?range=1M"
    client.get(url)
    made = poll(client, url, lambda r: r.status_code == 200).json()
    assert made["outdated"] is False and made["series"][-1]["value"] == "1200.00"  # today at the last close

    again = client.get(url).json()

    assert [key.decode().split(":", 3)[3] for key in _answers(portfolio.pk)] == [
        f"answer:l{CHART_LAYOUT}:a{ANSWER_FORMAT}:h{_history(portfolio)}:"
        f"d{portfolio_version_get(portfolio_id=portfolio.pk)}:{timezone.localdate().isoformat()}:1M:"]
    assert {**again, "age_seconds": None} == {**made, "age_seconds": None}
    # a quote of today (its data version moves, its history does not): the next answer is at that quote
    PriceFactory(instrument=portfolio.transactions.get().instrument, date=timezone.localdate(), close=Decimal("130"))
    portfolio_versions_bump(portfolio_ids=[portfolio.pk], since=timezone.localdate())
    moved = client.get(url).json()
    assert moved["outdated"] is False and moved["series"][-1]["value"] == "1300.00"
    assert moved["series"][:-1] == made["series"][:-1] and moved["allocation"]["total"] == "1300.00"
    assert len(_answers(portfolio.pk)) == 2


def _history(portfolio) -> int:
    portfolio.refresh_from_db()
    return portfolio.history_version


def test_an_answer_with_a_benchmark_is_not_cached(worker, client, portfolio):
    # its benchmark's close of today moves no version of the portfolio
    benchmark = InstrumentFactory(symbol="BNCH")
    PriceFactory(instrument=benchmark, date=timezone.localdate() - timedelta(days=4), close=Decimal("50"))
    portfolio.benchmark = benchmark
    portfolio.save(update_fields=["benchmark"])
    url = f"/api/dashboard-chart-data/{portfolio.pk}/?range=1M"
    client.get(url)
    body = poll(client, url, lambda r: r.status_code == 200).json()
    assert body["outdated"] is False and body["benchmark"]["symbol"] == "BNCH"
    assert client.get(url).json()["benchmark"]["symbol"] == "BNCH"
    assert _answers(portfolio.pk) == []


def test_the_worker_keeps_the_closes_it_read_and_its_next_generation_sees_every_change(worker, portfolio):
    # The worker's process keeps each instrument's packed closes between generations (prices/series.py),
    # asking Postgres which changed: a changed close, deleted closes and a TRUNCATE are all in the next one.
    if connection.vendor != "postgresql":
        pytest.skip("the series are kept on Postgres")
    instrument = portfolio.transactions.get().instrument
    today = timezone.localdate()

    def generated() -> dict[int, str]:
        enqueued = time.time()
        generate_chart_data_task.delay(portfolio.pk, even_if_current=True)
        # Until a generation finished after the enqueue (this one, or a regeneration the change queued: both
        # read the closes as they are now). An empty queue alone is no proof: the worker may have taken the
        # task off it and not yet recorded it as running.
        deadline = time.monotonic() + 30
        while not ((p := chart_progress_get(portfolio_id=portfolio.pk)) and p["state"] == "SUCCESS"
                   and p["updated_at"] >= enqueued):
            assert time.monotonic() < deadline, f"no generation finished since the enqueue: {p}"
            time.sleep(0.02)
        worker_settle()
        points = chart_data_get(portfolio_id=portfolio.pk)["ranges"]["1M"]
        return {(today - date.fromisoformat(p["date"])).days: p["value"] for p in points if p["date"] >= (
            today - timedelta(days=4)).isoformat()}

    price_series_cache_clear()
    assert generated() == {4: "1000.00", 3: "1100.00", 2: "1100.00", 1: "1200.00", 0: "1200.00"}
    # kept by the worker's process (a leftover task of an earlier test may keep another portfolio's too)
    assert instrument.pk in price_series_cache_stats()["instrument_ids"]
    closes_upsert(instrument, {today - timedelta(days=1): "130"})
    assert generated() == {4: "1000.00", 3: "1100.00", 2: "1100.00", 1: "1300.00", 0: "1300.00"}
    PriceHistory.objects.filter(instrument=instrument, date=today - timedelta(days=3)).delete()
    assert generated() == {4: "1000.00", 3: "1000.00", 2: "1000.00", 1: "1300.00", 0: "1300.00"}
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {PriceHistory._meta.db_table}")
    # no close left: every day at the trade's price, 100
    assert generated() == {4: "1000.00", 3: "1000.00", 2: "1000.00", 1: "1000.00", 0: "1000.00"}
    assert instrument.pk not in price_series_cache_stats()["instrument_ids"]
