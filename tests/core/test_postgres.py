"""The health check of a reused connection (core/postgres/base.py), against the real Postgres: a live idle
connection is reused without a `SELECT 1`, one the server ended is replaced before the request's query."""

import os
import time

import psycopg
import pytest
import requests
from django.db import connection, transaction
from rest_framework.authtoken.models import Token

from tests.factories import PortfolioFactory, UserFactory
from tests.reliability.procs import WebServer, backend_terminate, child_env, database_url_of_test

pytestmark = [pytest.mark.django_db(transaction=True),
              pytest.mark.skipif(connection.vendor != "postgresql", reason="Postgres only")]


@pytest.fixture(autouse=True)
def fresh_connection():
    """A connection opened by the test: one left by earlier tests may be past DATABASE_CONN_MAX_AGE, and
    the request boundary would close it as obsolete, health check or not."""
    connection.close()


def _backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def _last_query_of(pid: int) -> str | None:
    with psycopg.connect(database_url_of_test(), autocommit=True) as other:
        row = other.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()
    return row and row[0]


def _next_request() -> None:
    """What Django does between two requests (request_started / request_finished): the connection is
    kept, and is health-checked before its next query."""
    connection.close_if_unusable_or_obsolete()


def test_a_live_idle_connection_is_reused_without_asking_postgres():
    pid = _backend_pid()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 'the last query of the request'")
    _next_request()

    connection.close_if_health_check_failed()  # what the next request's first query does first

    assert _last_query_of(pid) == "SELECT 'the last query of the request'"  # no SELECT 1 went to Postgres
    assert _backend_pid() == pid  # and the same connection serves


def test_a_connection_the_server_ended_between_requests_is_replaced_before_the_next_query():
    pid = _backend_pid()
    _next_request()
    backend_terminate(pid)

    new_pid = _backend_pid()  # no error: the health check saw it ended and connected again

    assert new_pid != pid


def test_inside_a_transaction_the_check_asks_postgres_as_django_does():

    with transaction.atomic():
        pid = _backend_pid()
        connection.health_check_done = False
        connection.close_if_health_check_failed()
        assert _last_query_of(pid) == "SELECT 1"
        assert _backend_pid() == pid


def test_a_real_web_process_answers_after_its_connection_was_ended_between_two_reads(tmp_path):
    # given the web server (one process, one thread: one connection, reused) that has answered a dashboard read
    owner = UserFactory(username="pat")
    portfolio = PortfolioFactory(owner=owner)
    headers = {"Authorization": f"Token {Token.objects.create(user=owner).key}"}
    url_path = f"/api/dashboard-initial-data/{portfolio.pk}/"
    env = child_env(redis_url=os.environ["REDIS_URL"])
    with WebServer(env=env, log_dir=tmp_path, workers=1, threads=1).start() as web:
        first = requests.get(web.url + url_path, headers=headers, timeout=10)
        assert first.status_code == 200
        # when every other connection to the test database is ended by the server (as a restart does)
        ours = _backend_pid()
        with psycopg.connect(database_url_of_test(), autocommit=True) as other:
            ended = other.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid NOT IN (pg_backend_pid(), %s)", [ours]).fetchone()[0]
        assert ended >= 1
        time.sleep(0.2)
        # then the next read is answered on a new connection, not a 503
        second = requests.get(web.url + url_path, headers=headers, timeout=10)
    assert second.status_code == 200
    assert second.json()["portfolio"] == first.json()["portfolio"] == {
        "id": portfolio.pk, "name": portfolio.name, "base_currency": portfolio.base_currency}
