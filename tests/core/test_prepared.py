"""The prepared hot read (core/postgres/prepared.py) against the real Postgres: the same rows as a query
through Django's cursor, prepared once per connection (and sent unprepared where it would not stay so, or
inside a transaction), counted and logged like any query, and failing as Django's errors do."""


import psycopg
import pytest
from django.db import OperationalError, ProgrammingError, connection, transaction
from django.test.utils import CaptureQueriesContext

from core.postgres.prepared import PreparedQuery
from tests.factories import PortfolioFactory, UserFactory
from tests.reliability.procs import backend_terminate

pytestmark = [pytest.mark.django_db(transaction=True),
              pytest.mark.skipif(connection.vendor != "postgresql", reason="Postgres only")]

OWNER = PreparedQuery(name="test_portfolio_owner", columns=(int, str),
                      sql="SELECT owner_id, name FROM portfolio_portfolio WHERE id = %s AND name <> %s")


@pytest.fixture(autouse=True)
def fresh_connection():
    connection.close()


def _prepared_here() -> list[str]:
    """The statements the session of Django's connection holds."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM pg_prepared_statements ORDER BY name")
        return [name for (name,) in cursor.fetchall()]


def _backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def test_answers_what_the_same_query_through_a_cursor_answers():
    portfolio = PortfolioFactory(owner=UserFactory(), name="Main")
    with connection.cursor() as cursor:
        cursor.execute(OWNER.sql, [portfolio.pk, "other"])
        expected = cursor.fetchone()

    assert OWNER.fetchone([portfolio.pk, "other"]) == expected == (portfolio.owner_id, "Main")
    assert OWNER.fetchone([portfolio.pk, "Main"]) is None  # no row
    assert OWNER.fetchone([portfolio.pk + 1000, "other"]) is None


def test_null_stays_none_and_the_values_are_converted():
    query = PreparedQuery(name="test_null", columns=(int, str), sql="SELECT %s::int + 1, NULL::text")
    assert query.fetchone([41]) == (42, None)


def test_prepared_once_on_each_connection():
    portfolio = PortfolioFactory(owner=UserFactory())
    assert OWNER.name.decode() not in _prepared_here()
    OWNER.fetchone([portfolio.pk, ""])
    assert OWNER.name.decode() in _prepared_here()
    assert OWNER.fetchone([portfolio.pk, ""]) == (portfolio.owner_id, portfolio.name)

    connection.close()  # a new connection, a new session: prepared there too
    assert OWNER.fetchone([portfolio.pk, ""]) == (portfolio.owner_id, portfolio.name)
    assert OWNER.name.decode() in _prepared_here()


def test_a_statement_the_session_lost_is_sent_unprepared_from_then_on():
    # as a pooler in transaction mode does, handing each exchange to another server connection
    portfolio = PortfolioFactory(owner=UserFactory())
    OWNER.fetchone([portfolio.pk, ""])
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")
    for _ in range(2):
        assert OWNER.fetchone([portfolio.pk, ""]) == (portfolio.owner_id, portfolio.name)
    assert OWNER.name.decode() not in _prepared_here()

    connection.close()  # a new connection prepares it again
    assert OWNER.fetchone([portfolio.pk, ""]) == (portfolio.owner_id, portfolio.name)
    assert OWNER.name.decode() in _prepared_here()


def test_inside_a_transaction_it_answers_unprepared():
    # (a statement the session lacked would abort the caller's transaction)
    portfolio = PortfolioFactory(owner=UserFactory())
    with transaction.atomic():
        assert OWNER.fetchone([portfolio.pk, ""]) == (portfolio.owner_id, portfolio.name)
        # the transaction's first query: it opened the transaction, as any query does
        assert connection.connection.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
        assert OWNER.name.decode() not in _prepared_here()
        assert OWNER.fetchone([portfolio.pk, portfolio.name]) is None
    assert OWNER.fetchone([portfolio.pk, ""]) == (portfolio.owner_id, portfolio.name)
    assert OWNER.name.decode() in _prepared_here()


def test_counted_and_logged_as_any_query_with_its_values():
    portfolio = PortfolioFactory(owner=UserFactory())
    seen = []

    def wrapper(execute, sql, params, many, context):
        seen.append((sql, list(params)))
        return execute(sql, params, many, context)

    with CaptureQueriesContext(connection) as queries, connection.execute_wrapper(wrapper):
        assert OWNER.fetchone([portfolio.pk, "x"]) == (portfolio.owner_id, portfolio.name)
    assert [q["sql"] for q in queries.captured_queries] == [
        f"SELECT owner_id, name FROM portfolio_portfolio WHERE id = {portfolio.pk} AND name <> 'x'"]
    assert seen == [(OWNER.sql, [portfolio.pk, "x"])]
    assert OWNER.name.decode() in _prepared_here()  # the prepared statement ran, not a plain query


def test_an_error_of_the_query_is_djangos():
    broken = PreparedQuery(name="test_broken", columns=(int,), sql="SELECT id FROM no_such_table WHERE id = %s")
    with pytest.raises(ProgrammingError, match="no_such_table"):
        broken.fetchone([1])
    assert OWNER.fetchone([0, ""]) is None  # the connection still serves


def test_a_connection_the_server_ended_during_a_request_is_an_outage():
    # given a request that already used its connection (no health check before its next query)
    portfolio = PortfolioFactory(owner=UserFactory())
    assert OWNER.fetchone([portfolio.pk, ""]) is not None
    pid = _backend_pid()
    # when the server ends it (a restart, a failover)
    backend_terminate(pid)
    # then the read fails as Django's OperationalError (the API's 503: config/exceptions.py)
    with pytest.raises(OperationalError):
        OWNER.fetchone([portfolio.pk, ""])
    # and the next request, after Django's end-of-request check, connects again and answers
    connection.close_if_unusable_or_obsolete()
    assert OWNER.fetchone([portfolio.pk, ""]) == (portfolio.owner_id, portfolio.name)


def test_the_name_carries_the_sql_and_none_is_refused():
    # a session (behind a pooler) may hold a statement of the same name from a release with other SQL
    other = PreparedQuery(name="test_portfolio_owner", columns=(int,), sql=OWNER.sql.replace("name <>", "name ="))
    assert other.name != OWNER.name and other.name.startswith(b"test_portfolio_owner_")
    with pytest.raises(ValueError):
        OWNER.fetchone([None, "x"])
