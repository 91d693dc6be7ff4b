"""The dashboard's owner check (portfolio/access.py) with every cache warm (token, answers, chart):
another user's portfolio stays 404, a deleted one is 404 at once, a new owner takes it at once, a write is
seen by the next read (the Redis copy of owner and versions follows every write and is never put back to
older numbers), and a version moved behind Redis's back shows within the copy's lifetime."""

import json
import time

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from redis.client import Pipeline
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from charts.cache import chart_answer_queue, chart_answer_store
from charts.services import chart_data_generate
from core import kept_bytes
from core.query_cache import STATS_KEY, cache_stats_get
from core.redis_store import redis_client, redis_key
from portfolio import access
from portfolio.access import (
    PortfolioAccess,
    portfolio_access_forget_remembered,
    portfolio_access_get,
    portfolio_access_read,
    portfolio_access_settle,
)
from portfolio.access_copy import copy_share
from portfolio.cache import portfolio_version_bump
from portfolio.models import Portfolio
from tests.factories import TransactionFactory

pytestmark = pytest.mark.django_db

ENDPOINTS = ["dashboard-initial-data", "dashboard-holdings-data", "dashboard-chart-data"]


def _client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


@pytest.fixture
def warm(user, portfolio):
    """Alice's dashboard with every cache filled: token, both answers, a current chart."""
    TransactionFactory(portfolio=portfolio)
    chart_data_generate(portfolio_id=portfolio.pk)
    client = _client(user)
    for endpoint in ENDPOINTS:
        assert client.get(f"/api/{endpoint}/{portfolio.pk}/").status_code == 200
    return client


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_another_users_portfolio_is_404_with_every_cache_warm(warm, other_user, portfolio, endpoint):
    theirs = _client(other_user)
    assert theirs.get(f"/api/{endpoint}/{portfolio.pk}/").status_code == 404
    assert warm.get(f"/api/{endpoint}/{portfolio.pk}/").status_code == 200


def test_no_token_is_401_with_every_cache_warm(warm, portfolio):
    for endpoint in ENDPOINTS:
        assert APIClient().get(f"/api/{endpoint}/{portfolio.pk}/").status_code == 401


def test_a_deleted_portfolio_is_404_at_once(warm, portfolio):
    pk = portfolio.pk
    assert warm.delete(f"/api/portfolios/{pk}/").status_code == 204
    for endpoint in ENDPOINTS:
        assert warm.get(f"/api/{endpoint}/{pk}/").status_code == 404


def test_a_portfolios_owner_never_changes(warm, user, other_user, portfolio, staff):
    portfolio.owner = other_user
    with pytest.raises(ValueError, match="owner cannot change"):
        portfolio.save()
    assert Portfolio.objects.get(pk=portfolio.pk).owner_id == user.pk
    page = staff.get(f"/admin/portfolio/portfolio/{portfolio.pk}/change/", secure=True).content.decode()
    assert 'name="owner"' not in page and user.username in page  # shown, not an input
    for endpoint in ENDPOINTS:
        assert _client(other_user).get(f"/api/{endpoint}/{portfolio.pk}/").status_code == 404


def test_no_other_way_moves_a_portfolio_to_another_owner(user, other_user, portfolio):
    with pytest.raises(IntegrityError), transaction.atomic():  # a new instance is inserted, never written over
        Portfolio(pk=portfolio.pk, owner=other_user, name="Main", created_at=portfolio.created_at).save()
    for move in (lambda: Portfolio.objects.filter(pk=portfolio.pk).update(owner=other_user),
                 lambda: Portfolio.objects.filter(pk=portfolio.pk).update(owner_id=other_user.pk),
                 lambda: Portfolio.objects.bulk_update([Portfolio(pk=portfolio.pk, owner=other_user)], ["owner"])):
        with pytest.raises(ValueError, match="owner cannot change"):
            move()
    deferred = Portfolio.objects.only("name").get(pk=portfolio.pk)
    deferred.owner_id = other_user.pk
    with pytest.raises(ValueError, match="owner cannot change"):
        deferred.save(update_fields=["owner"])
    assert Portfolio.objects.get(pk=portfolio.pk).owner_id == user.pk


def test_a_portfolio_loaded_without_its_owner_can_still_be_saved(user, portfolio):
    loaded = Portfolio.objects.only("name").get(pk=portfolio.pk)
    loaded.name = "Renamed"
    loaded.save()
    assert Portfolio.objects.values_list("name", "owner_id").get(pk=portfolio.pk) == ("Renamed", user.pk)


def _redis_ms() -> int:
    seconds, micros = redis_client().time()
    return seconds * 1000 + micros // 1000


def _copy(portfolio_id: int) -> bytes | None:
    return redis_client().get(redis_key("portfolio", portfolio_id, "access"))


def _outdated(client, portfolio) -> bool:
    return client.get(f"/api/dashboard-chart-data/{portfolio.pk}/").json()["outdated"]


def test_a_write_is_seen_at_once_by_a_process_that_remembered_the_older_version(warm, user, portfolio):
    assert _outdated(warm, portfolio) is False
    portfolio_version_bump(portfolio_id=portfolio.pk)  # (a trade would also move the chart's history version)
    fresh = Portfolio.objects.get(pk=portfolio.pk)
    assert _copy(portfolio.pk) == f"pending:{user.pk}:{fresh.data_version}".encode()  # (the test never commits)
    assert _outdated(warm, portfolio) is True
    assert _copy(portfolio.pk) == f"{user.pk}:{fresh.data_version}:{fresh.history_version}".encode()


def test_a_version_moved_behind_redis_back_shows_within_the_copy_lifetime(warm, user, portfolio, settings):
    settings.PORTFOLIO_ACCESS_CACHE_SECONDS = 1
    redis_client().delete(redis_key("portfolio", portfolio.pk, "access"))
    assert _outdated(warm, portfolio) is False  # the copy written again, for 1 s
    # as a write made while Redis was unreachable from the writer leaves it (the chart's history version moves)
    Portfolio.objects.filter(pk=portfolio.pk).update(data_version=7, history_version=3)
    assert portfolio_access_get(user_id=user.pk, portfolio_id=portfolio.pk) == PortfolioAccess(portfolio.pk,
                                                                                              user.pk, 7, 3)
    assert portfolio_access_get(user_id=None, portfolio_id=portfolio.pk) is None
    assert _outdated(warm, portfolio) is False  # the copy still confirms the older numbers
    session = APIClient()
    session.force_login(user)  # the ordinary path asks Postgres every time
    assert _outdated(session, portfolio) is True
    deadline = time.monotonic() + 5
    while _copy(portfolio.pk) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _outdated(warm, portfolio) is True
    assert _copy(portfolio.pk) == f"{user.pk}:7:3".encode()


def test_older_numbers_never_replace_a_write_in_flight_a_newer_copy_nor_a_deletion(warm, user, portfolio):
    older = (user.pk, portfolio.data_version, portfolio.history_version)
    portfolio_version_bump(portfolio_id=portfolio.pk)
    pending = _copy(portfolio.pk)
    # a reader that asked Postgres before the write's commit copies what it read after the write's mark
    copy_share(portfolio.pk, older, asked_ms=_redis_ms())
    assert _copy(portfolio.pk) == pending
    assert _outdated(warm, portfolio) is True  # (this reader sees the write: the test's transaction is its)
    newer = _copy(portfolio.pk)
    assert newer != pending
    copy_share(portfolio.pk, older, asked_ms=_redis_ms())
    assert _copy(portfolio.pk) == newer
    assert warm.delete(f"/api/portfolios/{portfolio.pk}/").status_code == 204
    copy_share(portfolio.pk, (user.pk, 10**6, 10**6), asked_ms=_redis_ms())
    assert _copy(portfolio.pk).startswith(b"pending:")  # (deleted once committed)
    assert warm.get(f"/api/dashboard-holdings-data/{portfolio.pk}/").status_code == 404


def test_numbers_asked_longer_ago_than_the_lifetime_are_never_copied(portfolio, user, settings):
    settings.PORTFOLIO_ACCESS_CACHE_SECONDS = 2
    numbers = (user.pk, 5, 5)
    copy_share(portfolio.pk + 1000, numbers, asked_ms=_redis_ms() - 2001)  # a reader stalled that long
    assert _copy(portfolio.pk + 1000) is None
    copy_share(portfolio.pk + 1000, numbers, asked_ms=_redis_ms() - 1000)
    assert 0 < redis_client().pttl(redis_key("portfolio", portfolio.pk + 1000, "access")) <= 1000


def test_a_first_read_that_stalled_after_asking_postgres_copies_nothing_older_than_the_lifetime(warm, user,
                                                                                                 portfolio, settings):
    settings.PORTFOLIO_ACCESS_CACHE_SECONDS = 1
    redis_client().delete(redis_key("portfolio", portfolio.pk, "access"))
    portfolio_access_forget_remembered()
    pipe = redis_client().pipeline(transaction=False)
    read = portfolio_access_read(pipe, portfolio_id=portfolio.pk)  # Postgres asked now
    time.sleep(1.1)  # (a write could have come and gone meanwhile)
    access, stands = portfolio_access_settle(read, pipe.execute(), portfolio_id=portfolio.pk, user_id=user.pk)
    assert (access.owner_id, stands) == (user.pk, True)  # this read answers as Postgres said
    assert _copy(portfolio.pk) is None  # but copies nothing past its lifetime


def test_a_portfolio_made_under_an_id_remembered_missing_is_its_owners_at_once(warm, user, other_user, portfolio):
    pk = portfolio.pk + 1000
    for client in (warm, _client(other_user)):
        assert client.get(f"/api/dashboard-initial-data/{pk}/").status_code == 404  # remembered: none
    assert _copy(pk) == b"0:-1:-1"
    Portfolio.objects.create(pk=pk, owner=other_user, name="Later")
    assert _copy(pk) == f"pending:{other_user.pk}:0".encode()
    assert _client(other_user).get(f"/api/dashboard-initial-data/{pk}/").status_code == 200
    assert warm.get(f"/api/dashboard-initial-data/{pk}/").status_code == 404


def test_with_redis_unreachable_what_the_process_remembered_is_not_trusted(warm, portfolio, settings):
    settings.CACHES = {**settings.CACHES, "default": {
        **settings.CACHES["default"], "LOCATION": "redis://127.0.0.1:1/0",
        "OPTIONS": {**settings.CACHES["default"].get("OPTIONS", {}), "SOCKET_CONNECT_TIMEOUT": 0.2}}}
    Portfolio.objects.filter(pk=portfolio.pk).delete()  # its copy cannot be withdrawn: Redis is away
    for endpoint in ENDPOINTS:
        assert warm.get(f"/api/{endpoint}/{portfolio.pk}/").status_code == 404  # Postgres said


def test_a_refused_request_writes_nothing_and_leaves_what_a_process_remembered(warm, portfolio, monkeypatch):
    monkeypatch.setattr(access, "_REMEMBERED_MAX", 3)
    portfolio_access_forget_remembered()
    assert warm.get(f"/api/dashboard-holdings-data/{portfolio.pk}/").status_code == 200
    stranger = APIClient()
    stranger.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)  # no such token
    for pk in range(10**6, 10**6 + 5):
        assert stranger.get(f"/api/dashboard-holdings-data/{pk}/").status_code == 401
        assert _copy(pk) is None
    assert list(access._REMEMBERED) == [portfolio.pk]


def test_past_the_bound_the_oldest_remembered_goes_first(warm, user, portfolio, monkeypatch):
    monkeypatch.setattr(access, "_REMEMBERED_MAX", 3)
    portfolio_access_forget_remembered()
    ids = [portfolio.pk + n for n in range(1, 5)]
    for pk in [portfolio.pk, *ids]:
        warm.get(f"/api/dashboard-initial-data/{pk}/")
    assert list(access._REMEMBERED) == ids[1:]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_warm_read_is_one_redis_round_trip_and_no_query(warm, portfolio, redis_round_trips, endpoint):
    portfolio_access_forget_remembered()
    costs = []
    for _ in range(2):  # a web process's first read of the portfolio asks Postgres; the next ones do not
        redis_round_trips.clear()
        with CaptureQueriesContext(connection) as queries:
            again = warm.get(f"/api/{endpoint}/{portfolio.pk}/")
        costs.append((again.status_code, len(queries), len(redis_round_trips)))
    # (the first: the probe, and the pipeline's copy already says what Postgres said: nothing to copy)
    assert costs == [(200, 1, 1), (200, 0, 1)]
    before = warm.get(f"/api/{endpoint}/{portfolio.pk}/").content
    if endpoint != "dashboard-chart-data":  # (its age_seconds moves)
        assert again.content == before


def test_a_revoked_token_is_refused_at_once_with_every_cache_warm(warm, user, portfolio):
    Token.objects.filter(user=user).delete()
    for endpoint in ENDPOINTS:
        assert warm.get(f"/api/{endpoint}/{portfolio.pk}/").status_code == 401


def test_an_unknown_or_malformed_token_is_401_with_every_cache_warm(warm, portfolio):
    for header in ("Token " + "0" * 40, "Token", "Token a b", "Bearer " + "0" * 40):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=header)
        for endpoint in ENDPOINTS:
            assert client.get(f"/api/{endpoint}/{portfolio.pk}/").status_code == 401, header


def test_a_session_reads_the_same_answers(warm, user, portfolio):
    session = APIClient()
    session.force_login(user)
    for endpoint in ("dashboard-initial-data", "dashboard-holdings-data"):
        assert (session.get(f"/api/{endpoint}/{portfolio.pk}/").content
                == warm.get(f"/api/{endpoint}/{portfolio.pk}/").content)
    assert session.get(f"/api/dashboard-chart-data/{portfolio.pk}/").status_code == 200


def test_an_unknown_portfolio_or_range_answers_as_before_with_the_token_warm(warm, portfolio):
    for endpoint in ENDPOINTS:
        assert warm.get(f"/api/{endpoint}/{portfolio.pk + 1000}/").status_code == 404
    assert warm.get(f"/api/dashboard-chart-data/{portfolio.pk}/?range=7Y").status_code == 400


def test_another_users_id_and_a_missing_id_cost_the_same(warm, other_user, portfolio, redis_round_trips):
    theirs = _client(other_user)
    assert theirs.get("/api/portfolios/").status_code == 200  # their token cached, as Alice's
    portfolio_access_forget_remembered()
    costs = []
    for _ in range(2):  # first asked in this process (Postgres is probed), then remembered (absent ones too)
        for pk in (portfolio.pk, portfolio.pk + 1000):
            redis_round_trips.clear()
            with CaptureQueriesContext(connection) as queries:
                status = theirs.get(f"/api/dashboard-initial-data/{pk}/").status_code
            costs.append((status, len(queries), len(redis_round_trips)))
    # A process's first request of an id asks Postgres, and copies what it said where no copy is (no one read that
    # id in the last few seconds: the one difference left); its next ones cost the same.
    assert costs == [(404, 1, 1), (404, 1, 2), (404, 0, 1), (404, 0, 1)]


def test_nothing_is_counted_before_the_owner_is_known(warm, other_user, portfolio, settings):
    settings.QUERY_CACHE_STATS_FLUSH_SECONDS = 0  # every count written at once
    before = cache_stats_get()
    unknown = APIClient()
    unknown.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)
    for endpoint in ENDPOINTS:
        assert unknown.get(f"/api/{endpoint}/{portfolio.pk}/").status_code == 401
        assert _client(other_user).get(f"/api/{endpoint}/{portfolio.pk}/").status_code == 404
    assert cache_stats_get() == before
    assert warm.get(f"/api/dashboard-holdings-data/{portfolio.pk}/").status_code == 200
    assert cache_stats_get() != before  # (the owner's hit is counted: the comparison above can fail)


def test_a_malformed_cached_chart_answer_is_made_again(warm, user, portfolio):
    keys = list(redis_client().scan_iter(redis_key("chart", portfolio.pk, "answer", "*")))
    assert keys
    for key in keys:
        redis_client().set(key, b"x")
    chart = warm.get(f"/api/dashboard-chart-data/{portfolio.pk}/")
    session = APIClient()
    session.force_login(user)
    expected = session.get(f"/api/dashboard-chart-data/{portfolio.pk}/")
    assert chart.status_code == expected.status_code == 200
    assert {**chart.json(), "age_seconds": 0} == {**expected.json(), "age_seconds": 0}
    assert all(redis_client().get(key) != b"x" for key in keys)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_deleted_token_or_deactivated_user_is_401_at_once(warm, user, portfolio, endpoint):
    assert warm.get(f"/api/{endpoint}/{portfolio.pk}/").status_code == 200
    user.is_active = False
    user.save()
    assert warm.get(f"/api/{endpoint}/{portfolio.pk}/").status_code == 401
    user.is_active = True
    user.save()
    assert warm.get(f"/api/{endpoint}/{portfolio.pk}/").status_code == 200
    Token.objects.filter(user=user).delete()
    assert warm.get(f"/api/{endpoint}/{portfolio.pk}/").status_code == 401


def test_no_warm_read_when_the_answers_live_on_another_redis(warm, portfolio, settings):
    before = warm.get(f"/api/dashboard-holdings-data/{portfolio.pk}/").content
    # The answers on an unreachable Redis, the token cache's (default) still holding the old ones: those must
    # not be read through the token's pipeline; the holdings are computed, uncached, from Postgres.
    settings.CACHES = {**settings.CACHES, "down": {
        "BACKEND": "django_redis.cache.RedisCache", "LOCATION": "redis://127.0.0.1:1/0",
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2}}}
    settings.QUERY_CACHE_ALIAS = "down"
    with CaptureQueriesContext(connection) as queries:
        again = warm.get(f"/api/dashboard-holdings-data/{portfolio.pk}/")
    assert (again.status_code, again.content) == (200, before)
    assert len(queries) > 1  # more than the owner probe: computed


def test_the_warm_read_answers_as_the_ordinary_path(warm, user, portfolio, settings):
    """Bytes and headers as the ordinary path (main's order: authenticate, probe, read) gives them, GET and HEAD."""
    settings.CACHES = {**settings.CACHES, "answers": settings.CACHES["default"]}
    for endpoint in ENDPOINTS:
        url = f"/api/{endpoint}/{portfolio.pk}/"
        answers = {}
        for alias in ("default", "answers"):  # the warm read, then none (the query cache on another alias)
            settings.QUERY_CACHE_ALIAS = alias
            answers[alias] = [(r.status_code, sorted(r.headers.items()), r.content)
                              for r in (warm.get(url), warm.head(url))]
        if endpoint == "dashboard-chart-data":  # (its age_seconds moves: compared without)
            for alias, found in answers.items():
                answers[alias] = [(s, h, {**json.loads(c), "age_seconds": 0} if c else c) for s, h, c in found]
        assert answers["default"] == answers["answers"]
        assert answers["default"][0][0] == 200


def test_a_failing_statistics_write_is_no_failed_read(warm, portfolio, settings):
    before = warm.get(f"/api/dashboard-holdings-data/{portfolio.pk}/").content
    settings.QUERY_CACHE_STATS_FLUSH_SECONDS = 0  # every count written at once
    redis_client().set(STATS_KEY, b"not a hash")  # so that Redis refuses the write (WRONGTYPE)
    try:
        again = warm.get(f"/api/dashboard-holdings-data/{portfolio.pk}/")
    finally:
        redis_client().delete(STATS_KEY)
    assert (again.status_code, again.content) == (200, before)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_an_answer_read_before_is_confirmed_by_redis_not_sent_again(warm, user, portfolio, endpoint, monkeypatch):
    monkeypatch.setattr(kept_bytes, "KEPT_MIN_BYTES", 0)  # this portfolio's answers are small: kept all the same
    replies = []
    execute = Pipeline.execute
    monkeypatch.setattr(Pipeline, "execute", lambda pipe, *args, **kwargs: replies.append(
        execute(pipe, *args, **kwargs)) or replies[-1])
    session = APIClient()
    session.force_login(user)  # the ordinary path: no pipeline, nothing kept
    warm.get(f"/api/{endpoint}/{portfolio.pk}/")  # read whole (the fixture's first read of it computed it): kept
    for _ in range(2):
        replies.clear()
        answer = warm.get(f"/api/{endpoint}/{portfolio.pk}/")
        expected = session.get(f"/api/{endpoint}/{portfolio.pk}/")
        assert answer.status_code == expected.status_code == 200
        if endpoint == "dashboard-chart-data":  # its age moves with the clock
            assert {**answer.json(), "age_seconds": 0} == {**expected.json(), "age_seconds": 0}
        else:
            assert answer.content == expected.content
        # the warm read's pipeline: the token's entry, the portfolio's owner and versions and Redis's clock, then
        # Redis's 1 (still the write this process read) for the answer (the initial data's history progress beside)
        assert replies[0][1] == f"{user.pk}:0:0".encode()
        assert replies[0][3] == 1


def test_a_chart_answer_written_again_is_sent_again(monkeypatch):
    monkeypatch.setattr(kept_bytes, "KEPT_MIN_BYTES", 0)
    key = {"portfolio_id": 99, "history_version": 1, "data_version": 2, "day": timezone.localdate(), "variant": "1Y:"}

    def read():
        pipe = redis_client().pipeline(transaction=False)
        reader = chart_answer_queue(pipe, **key)
        replies = pipe.execute()
        return reader(replies), replies[0]

    chart_answer_store(**key, generated_at=1.5, tail=b',"series":[1]}', ttl=60)
    first, raw = read()
    assert first == (1.5, b',"series":[1]}') and raw.endswith(b'1.5\n,"series":[1]}')
    assert read() == ((1.5, b',"series":[1]}'), 1)  # kept: Redis says it is still that write
    chart_answer_store(**key, generated_at=1.5, tail=b',"series":[2]}', ttl=60)  # the same key written again
    assert read()[0] == (1.5, b',"series":[2]}')
    assert read() == ((1.5, b',"series":[2]}'), 1)
    redis_client().delete(*redis_client().keys(redis_key("chart", 99, "answer", "*")))
    assert read() == (None, None)


def test_a_process_keeps_one_chart_answer_per_portfolio_and_range_the_last_version_it_read(monkeypatch):
    # every price refresh moves the data version, and the answer is cached again under the new version's key: the
    # process keeps the new one in place of the old one, not beside it
    monkeypatch.setattr(kept_bytes, "KEPT_MIN_BYTES", 0)
    kept_bytes.KEPT.clear()
    day = timezone.localdate()

    def read(data_version: int, variant: str = "1Y:"):
        pipe = redis_client().pipeline(transaction=False)
        reader = chart_answer_queue(pipe, portfolio_id=98, history_version=1, data_version=data_version, day=day,
                                    variant=variant)
        replies = pipe.execute()
        return reader(replies), replies[0]

    for version in (1, 2, 3):
        tail = b',"series":[%d]}' % version
        chart_answer_store(portfolio_id=98, history_version=1, data_version=version, day=day, variant="1Y:",
                           generated_at=1.5, tail=tail, ttl=60)
        assert read(version)[0] == (1.5, tail) and read(version) == ((1.5, tail), 1)
        assert (len(kept_bytes.KEPT.items), kept_bytes.KEPT.size) == (1, len(tail))
    # another range of the same portfolio is kept beside it; the older version is sent again, never the newer served
    chart_answer_store(portfolio_id=98, history_version=1, data_version=3, day=day, variant="MAX:", generated_at=1.5,
                       tail=b',"series":[9]}', ttl=60)
    assert read(3, "MAX:")[0] == (1.5, b',"series":[9]}') and len(kept_bytes.KEPT.items) == 2
    answer, raw = read(2)
    assert answer == (1.5, b',"series":[2]}') and raw.endswith(b',"series":[2]}')
