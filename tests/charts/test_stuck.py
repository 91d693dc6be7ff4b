"""The stuck-job cleaner's rule for chart generations (charts.services.chart_generations_fail_stuck): one stuck
mid-way is failed and queued again; one still queued waits its turn while other generations move."""

import time

import pytest
from django_redis import get_redis_connection

from charts.cache import GENERATING_KEY, MOVED_KEY, chart_progress_get, chart_progress_set
from charts.services import chart_generations_fail_stuck
from tests.factories import PortfolioFactory

pytestmark = pytest.mark.django_db



def since(portfolio_id: int, state: str, seconds_ago: float) -> None:
    """The portfolio's generation in `state`, its progress last moved `seconds_ago`."""
    chart_progress_set(portfolio_id=portfolio_id, state=state, done=0, total=3)
    at = f"{time.time() - seconds_ago:.3f}"
    redis = get_redis_connection("default")
    redis.hset(f"folio:chart:{portfolio_id}:progress", "updated_at", at)
    redis.zadd(GENERATING_KEY, {str(portfolio_id): float(at)})


def test_a_generation_queued_behind_a_backlog_waits_its_turn_while_generations_move(owner, settings):
    settings.CHART_GENERATION_STUCK_SECONDS = 60
    queued, stuck, moving = (PortfolioFactory(owner=owner) for _ in range(3))
    redis = get_redis_connection("default")
    # given a generation queued two minutes ago and not started yet, one started as long ago that never moved
    # again (its process killed), and another portfolio's moving now: the workers work through a backlog
    since(queued.pk, "PENDING", 120)
    since(stuck.pk, "PROGRESS", 120)
    chart_progress_set(portfolio_id=moving.pk, state="PROGRESS", done=1, total=3)

    # when the stuck-job cleaner runs, only the one stuck mid-way is failed and queued again
    assert chart_generations_fail_stuck() == [stuck.pk]
    assert chart_progress_get(portfolio_id=queued.pk)["state"] == "PENDING"
    assert redis.zscore(GENERATING_KEY, str(queued.pk)) < time.time() - 100
    assert redis.llen("charts") == 1

    # once no generation has moved for as long either, the queued one is taken for lost: failed, queued again
    redis.set(MOVED_KEY, f"{time.time() - 61:.3f}")
    assert chart_generations_fail_stuck() == [queued.pk]
    assert redis.zscore(GENERATING_KEY, str(queued.pk)) > time.time() - 5
    assert redis.llen("charts") == 2
