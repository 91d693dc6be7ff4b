"""Just after midnight the charts read lately are made again, through a real worker, before anyone asks."""

import json
import time
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.utils import timezone
from django_redis import get_redis_connection

from celery_app import app
from charts.cache import READ_KEY, chart_data_get, chart_data_store, chart_reads_since
from charts.services import chart_data_generate, charts_new_day_regenerate
from charts.tasks import charts_new_day_task
from monitoring.events import events_flush
from monitoring.models import MonitoringEvent
from tests.charts.factories import held_portfolio
from tests.worker import worker_settle

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("no_debounce")]

DAY = 86400


def made_yesterday(portfolio) -> None:
    """The portfolio's chart as the day before left it: made for its history version, dated yesterday."""
    chart_data_generate(portfolio_id=portfolio.pk)
    data = chart_data_get(portfolio_id=portfolio.pk)
    data["as_of"] = (timezone.localdate() - timedelta(days=1)).isoformat()
    version = data.pop("version")
    data.pop("generated_at")
    assert chart_data_store(portfolio_id=portfolio.pk, version=version, data=data)


def as_of(portfolio) -> str:
    return chart_data_get(portfolio_id=portfolio.pk)["as_of"]


def read_at(portfolio_id: int, when: float) -> None:
    get_redis_connection("default").zadd(READ_KEY, {str(portfolio_id): when})


def test_a_chart_read_marks_its_portfolio_as_read_and_a_deleted_portfolio_loses_its_mark(worker, client, owner):
    portfolio = held_portfolio(owner, symbol="MRKD")
    url = f"/api/dashboard-chart-data/{portfolio.pk}/?range=1M"
    redis = get_redis_connection("default")
    before = time.time()

    # a read with no chart yet (202) marks it as surely as one served
    assert client.get(url).status_code == 202
    first = redis.zscore(READ_KEY, str(portfolio.pk))
    assert before <= first <= time.time()
    deadline = time.monotonic() + 20
    while (response := client.get(url)).status_code != 200:
        assert time.monotonic() < deadline, response.json()
        time.sleep(0.1)
    assert response.json()["outdated"] is False
    assert redis.zscore(READ_KEY, str(portfolio.pk)) >= first

    # when the portfolio is deleted, its mark goes with its chart
    worker_settle()
    assert client.delete(f"/api/portfolios/{portfolio.pk}/").status_code == 204
    assert redis.zscore(READ_KEY, str(portfolio.pk)) is None
    assert chart_data_get(portfolio_id=portfolio.pk) is None


def test_just_after_midnight_the_charts_read_lately_are_made_again_before_anyone_asks(worker, owner, settings):
    settings.CHART_NEW_DAY_READ_DAYS = 7
    settings.CHART_DEBOUNCE_SECONDS = 60  # no burst to wait out: queued now, not after it
    today = timezone.localdate().isoformat()
    yesterday = (timezone.localdate() - timedelta(days=1)).isoformat()
    # given three charts made yesterday: one read two days ago, one last read ten days ago, one never read;
    # and the mark of a portfolio read an hour ago and deleted since (its delete left no trace: a restore)
    lately, long_ago, never = (held_portfolio(owner, symbol=symbol) for symbol in ("LATE", "LONG", "NEVR"))
    for portfolio in (lately, long_ago, never):
        made_yesterday(portfolio)
    now = time.time()
    read_at(lately.pk, now - 2 * DAY)
    read_at(long_ago.pk, now - 10 * DAY)
    read_at(10**9, now - 3600)
    before = time.time()

    # when the beat's task runs in the worker
    result = charts_new_day_task.delay().get(timeout=20)

    # then the chart read lately is made again for today, the others are left as they were
    assert result == {"read": 1, "queued": 1}
    worker_settle()
    made = chart_data_get(portfolio_id=lately.pk)
    assert (made["as_of"], made["version"]) == (today, lately.history_version)
    assert made["generated_at"] > before
    assert made["ranges"]["1M"][-1]["value"] == "1200.00"  # yesterday's close, history now
    assert (as_of(long_ago), as_of(never)) == (yesterday, yesterday)
    # and only the marks inside the window are left: the old one and the deleted portfolio's are dropped
    assert chart_reads_since(since=0) == [lately.pk]
    # and the monitoring page says what the night did
    events_flush()
    event = MonitoringEvent.objects.get(kind="job_started")
    assert event.message == "New day: the charts of 1 portfolio read in the last 7 days are made again (1 queued, " \
                            "the others already were)"
    assert event.context == {"read": 1, "queued": 1}


def test_a_second_run_of_the_same_tick_queues_nothing(worker, owner, settings):
    # given a chart read lately, made yesterday, and the beat entry's tick already run once
    portfolio = held_portfolio(owner, symbol="TICK")
    made_yesterday(portfolio)
    read_at(portfolio.pk, time.time() - DAY)
    sent = {"tick": "charts-new-day", "expires": timezone.now() + timedelta(seconds=3600)}
    first = charts_new_day_task.apply_async(kwargs={"tick": sent["tick"]}, expires=sent["expires"])
    assert first.get(timeout=20) == {"read": 1, "queued": 1}
    worker_settle()

    # when a second beat sends the same tick, it does nothing
    second = charts_new_day_task.apply_async(kwargs={"tick": sent["tick"]}, expires=sent["expires"])
    assert second.get(timeout=20) is None


def test_with_the_window_at_zero_nothing_is_made_and_no_mark_is_dropped(owner, settings):
    settings.CHART_NEW_DAY_READ_DAYS = 0
    portfolio = held_portfolio(owner, symbol="ZERO")
    read_at(portfolio.pk, time.time() - 30 * DAY)

    assert charts_new_day_regenerate() == {"read": 0, "queued": 0}
    assert get_redis_connection("default").zscore(READ_KEY, str(portfolio.pk)) is not None
    assert get_redis_connection("default").llen("charts") == 0


def test_the_beat_runs_it_just_after_midnight_on_the_charts_queue():
    entry = django_settings.CELERY_BEAT_SCHEDULE["charts-new-day"]
    assert entry["task"] == "charts.charts_new_day_task"
    assert (entry["schedule"].hour, entry["schedule"].minute) == ({0}, {5})
    assert 0 < entry["options"]["expires"] < DAY
    assert app.amqp.router.route({}, entry["task"])["queue"].name == "charts"
    assert json.dumps(entry["kwargs"]) == '{"tick": "charts-new-day"}'
