"""The warm reads' copy of a portfolio's owner and versions (portfolio/access.py) under what a test transaction
hides: on-commit writes that run late, and a web process's threads sharing what it remembers."""

import inspect
import sys
import threading
import time

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from core.redis_store import redis_client, redis_key
from portfolio import access
from portfolio.access import portfolio_access_forget_remembered
from portfolio.cache import portfolio_version_bump
from tests.factories import TransactionFactory
from tests.portfolio.test_access import _client

pytestmark = pytest.mark.django_db(transaction=True)  # on-commit callbacks run, as in production


def _copy(portfolio_id: int) -> bytes | None:
    return redis_client().get(redis_key("portfolio", portfolio_id, "access"))


def _reading(user, portfolio, settings, endpoint: str) -> tuple:
    """Alice's client and the URL she has just read (copies living 1 s)."""
    settings.PORTFOLIO_ACCESS_CACHE_SECONDS = 1
    TransactionFactory(portfolio=portfolio)
    alice = _client(user)
    url = f"/api/{endpoint}/{portfolio.pk}/"
    assert alice.get(url).status_code == 200
    return alice, url


def _writing(transaction_body) -> threading.Thread:
    """`transaction_body` run in a transaction of its own, on another thread (and connection), started."""
    def writer():
        try:
            with transaction.atomic():
                transaction_body()
        finally:
            connection.close()

    thread = threading.Thread(target=writer)
    thread.start()
    return thread


def test_a_bumps_copy_written_late_after_commit_never_brings_a_deleted_portfolio_back(user, portfolio, settings):
    # given Alice reading her portfolio, and a write whose copy at commit is late (its thread stalls)
    alice, url = _reading(user, portfolio, settings, "dashboard-holdings-data")
    committed, go = threading.Event(), threading.Event()
    thread = _writing(lambda: (transaction.on_commit(lambda: (committed.set(), go.wait(10))),
                               portfolio_version_bump(portfolio_id=portfolio.pk)))
    assert committed.wait(10)
    assert alice.get(url).status_code == 200
    # when she deletes it, and the late copy lands after that
    assert alice.delete(f"/api/portfolios/{portfolio.pk}/").status_code == 204
    assert _copy(portfolio.pk) == b"deleted"
    go.set()
    thread.join(10)
    # then the portfolio stays deleted for every read
    assert _copy(portfolio.pk) == b"deleted"
    assert alice.get(url).status_code == 404


def _learned(portfolio_id: int) -> None:
    """What an authenticated caller's probe of a missing portfolio leaves: remembered, and copied."""
    access._learned(portfolio_id, None, copy=None, asked_ms=int(time.time() * 1000))


def test_threads_past_the_bound_evict_without_failing(monkeypatch):
    # One thread pauses right after taking the iterator of what is remembered (to evict the oldest); another
    # evicts meanwhile and pauses before its insert (one entry fewer): no request may fail for it.
    monkeypatch.setattr(access, "_REMEMBERED_MAX", 2)
    portfolio_access_forget_remembered()
    for pk in (1, 2):
        _learned(pk)
    learned = access._learned.__code__
    source, first_line = inspect.getsourcelines(access._learned)
    insert_line = first_line + next(n for n, line in enumerate(source) if "_REMEMBERED[portfolio_id] =" in line)
    other_paused, first_done, errors = threading.Event(), threading.Event(), []

    def pause_before_insert(frame, event, arg):
        if event == "call":
            return pause_before_insert if frame.f_code is learned else None
        if event == "line" and frame.f_lineno == insert_line:
            sys.settrace(None)
            other_paused.set()
            first_done.wait(2)
        return pause_before_insert

    def other():
        sys.settrace(pause_before_insert)
        try:
            _learned(4)
        finally:
            sys.settrace(None)
            other_paused.set()

    def pause_after_iter(frame, event, arg):  # the GIL handed to the other thread right after iter(_REMEMBERED)
        if event == "c_return" and arg is iter and frame.f_code is learned:
            sys.setprofile(None)
            threading.Thread(target=other).start()
            other_paused.wait(1)  # (where the other must wait for this one, it cannot pause meanwhile)

    def first():
        sys.setprofile(pause_after_iter)
        try:
            _learned(3)
        except Exception as error:  # what warm_access would let out of the view: a 500
            errors.append(repr(error))
        finally:
            sys.setprofile(None)
            first_done.set()

    thread = threading.Thread(target=first)
    thread.start()
    thread.join(10)
    deadline = time.monotonic() + 10
    while len(access._REMEMBERED) != 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert errors == []
    assert len(access._REMEMBERED) == 2


@pytest.mark.parametrize("write", ["a trade", "a rename"])
def test_after_a_write_another_users_id_still_costs_what_a_missing_one_does(user, other_user, portfolio,
                                                                           redis_round_trips, write):
    mallory = _client(other_user)
    assert mallory.get("/api/portfolios/").status_code == 200  # her token cached
    ids = {"alice's": portfolio.pk, "missing": portfolio.pk + 1000}
    for pk in ids.values():  # both remembered by this process
        assert mallory.get(f"/api/dashboard-initial-data/{pk}/").status_code == 404
    if write == "a trade":  # (or a close of a symbol she holds moving): a version bump
        portfolio_version_bump(portfolio_id=portfolio.pk)
    else:  # withdrawn for the copy's lifetime, naming her once committed
        renamed = _client(user).patch(f"/api/portfolios/{portfolio.pk}/", {"name": "Renamed"}, format="json")
        assert renamed.status_code == 200
    costs = {}
    for name, pk in ids.items():
        redis_round_trips.clear()
        with CaptureQueriesContext(connection) as queries:
            status = mallory.get(f"/api/dashboard-initial-data/{pk}/").status_code
        costs[name] = (status, len(queries), len(redis_round_trips))
    assert costs == {"alice's": (404, 0, 1), "missing": (404, 0, 1)}


def test_a_write_committed_later_than_the_copy_lifetime_is_seen_by_the_next_read(user, portfolio, settings):
    # given a write whose transaction lasts longer than a copy lives, and a read meanwhile (older numbers)
    alice, url = _reading(user, portfolio, settings, "dashboard-initial-data")
    bumped, commit = threading.Event(), threading.Event()
    thread = _writing(lambda: (portfolio_version_bump(portfolio_id=portfolio.pk), bumped.set(), commit.wait(10)))
    assert bumped.wait(10)
    time.sleep(1.1)
    assert alice.get(url).status_code == 200  # Postgres still says the older numbers: not copied over the mark
    # when it commits
    commit.set()
    thread.join(10)
    portfolio.refresh_from_db()
    # then the copy says the new numbers, and the next read asks Postgres for them, not the older answer
    numbers = (user.pk, portfolio.data_version, portfolio.history_version)
    assert _copy(portfolio.pk) == "{}:{}:{}".format(*numbers).encode()
    with CaptureQueriesContext(connection) as queries:
        assert alice.get(url).status_code == 200
    assert len(queries) >= 1 and access._REMEMBERED[portfolio.pk] == numbers
