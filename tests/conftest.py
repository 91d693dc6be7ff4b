"""Shared fixtures. Tests use real Postgres (DATABASE_URL) and real Redis (database 15, or the one
config/settings_test.py gives this process of a parallel run)."""

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.utils import timezone
from django_redis import get_redis_connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from portfolio.demo import DemoResult, demo_seed
from tests.demo_snapshot import DemoSnapshot, demo_snapshot_take
from tests.factories import InstrumentFactory, PortfolioFactory, PriceFactory, TransactionFactory, UserFactory
from tests.worker import running_worker, worker_running, worker_settle


def redis_flush_except_broker_bindings() -> None:
    """Empty the test Redis database (never db 0) but for Kombu's queue bindings, which a running
    test worker declared once and needs to keep receiving tasks."""
    client = get_redis_connection("default")
    # Kombu's bookkeeping of tasks a worker holds (unacked, its index and mutex) stays too: deleting
    # it under a running worker's feet breaks that worker, not the next test.
    kept = (b"_kombu.binding.", b"unacked")
    keys = [key for key in client.scan_iter(count=1000) if not key.startswith(kept)]
    if keys:
        client.delete(*keys)


@pytest.fixture(autouse=True)
def clean_redis():
    """Every test starts with empty caches, progress, rate-limit buckets and task queues."""
    redis_flush_except_broker_bindings()
    yield


@pytest.fixture
def user(db):
    return UserFactory(username="alice")


@pytest.fixture
def other_user(db):
    return UserFactory(username="mallory")


@pytest.fixture
def api(user) -> APIClient:
    """An API client authenticated as `user` with a token, as scripts use the API."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.fixture
def portfolio(user):
    return PortfolioFactory(owner=user, name="Main", base_currency="USD")


@pytest.fixture
def foreign_portfolio(other_user):
    return PortfolioFactory(owner=other_user, name="Not yours")


@pytest.fixture
def staff(db) -> Client:
    """A browser signed in to the admin as a superuser."""
    client = Client()
    client.force_login(get_user_model().objects.create_superuser("ops", password="x"))
    return client


@pytest.fixture
def held(portfolio):
    """`portfolio`'s one holding, its transaction: 10 KO bought, valued at yesterday's close of 60 (600.00)."""
    instrument = InstrumentFactory(symbol="KO")
    PriceFactory(instrument=instrument, date=timezone.localdate() - timedelta(days=1), close=Decimal("60"))
    return TransactionFactory(portfolio=portfolio, instrument=instrument, quantity=Decimal("10"))


@pytest.fixture(scope="module")
def worker() -> Iterator[None]:
    """A real Celery worker (threads) on the test broker, for the tests of one module."""
    with running_worker():
        yield


@pytest.fixture(autouse=True)
def settled(request):
    """Whatever a test queued is finished before its tables are emptied, whenever a worker is there to
    run it (a module's worker also takes what its later tests queue without asking for it)."""
    yield
    if "worker" in request.fixturenames or worker_running():
        worker_settle()


@pytest.fixture(scope="session")
def demo_snapshot(django_db_setup, django_db_blocker) -> DemoSnapshot | None:
    """The demo's rows (tests/demo_snapshot.py), taken on an empty database before the first test that asks
    for them starts its worker (a session fixture is set up before a module's); None where there is no
    COPY (SQLite): each test seeds."""
    if connection.vendor != "postgresql":
        return None
    with django_db_blocker.unblock():
        return demo_snapshot_take(redis_flush_except_broker_bindings)


@pytest.fixture
def demo(settings, db, demo_snapshot) -> DemoResult:
    """The demo user and portfolio, as `manage.py seed_demo` leaves them, on the test's database (committed
    for a transactional test)."""
    settings.CHART_DEBOUNCE_SECONDS = 0
    if demo_snapshot is None:
        return demo_seed()
    if demo_snapshot.day != timezone.localdate():  # past midnight: the demo's history now ends today
        fresh = demo_snapshot_take(redis_flush_except_broker_bindings)
        demo_snapshot.day, demo_snapshot.tables, demo_snapshot.seeded = fresh.day, fresh.tables, fresh.seeded
    return demo_snapshot.restore()
