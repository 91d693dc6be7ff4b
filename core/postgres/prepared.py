"""A read that every hot request makes, prepared once per connection and run through libpq itself.

The dashboard's owner-and-version probe (portfolio/access.py) is one primary-key read on every dashboard request
that Redis's copy of those numbers cannot serve (a session's, a web process's first, one after a write).
Through Django's cursor it costs about as much CPU as the rest of the view: the cursor wrapper, psycopg's
client-side binding and its non-blocking wait loop in the web process, and in Postgres a parse and plan of
the query text each time. Prepared once on the connection and run with libpq's PQexecPrepared (which waits
with the GIL released, like psycopg), it costs a fraction of that on both sides (docs/PERFORMANCE.md, L1).

It stays one of Django's queries in every way Django itself shows (tracers that patch Django's cursor class
see it only where the queries are logged or wrapped, below):
- the connection is health-checked and opened as for any query (core/postgres/base.py), and errors come out
  as Django's (`wrap_database_errors`: a database that cannot be reached is the API's 503, config/exceptions.py);
- where queries are logged or wrapped (DEBUG, CaptureQueriesContext, `connection.execute_wrapper`), it runs
  through Django's cursor and its wrappers, logged and counted as any other query;
- inside a transaction (`atomic`) it is an ordinary query through psycopg, which opens the transaction as it
  does for any first query; where the statement does not stay prepared (a `DEALLOCATE`, PgBouncer in
  transaction mode without `max_prepared_statements`) it is sent unprepared, with its values, in one exchange;
- on any other database (the SQLite of a quick local run) it is an ordinary query.
"""

from __future__ import annotations

import functools
import hashlib
import re
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.utils import CursorDebugWrapper
from django.utils.asyncio import async_unsafe
from psycopg import OperationalError, errors, pq

UNDEFINED_STATEMENT = b"26000"  # invalid_sql_statement_name: the session has no statement of that name
DUPLICATE_STATEMENT = b"42P05"  # duplicate_prepared_statement: it has one already


class PreparedQuery:
    """`sql` (Django's `%s` placeholders), prepared as `name` (unique in the process) on each connection that
    runs it; `columns` convert each value of the row (Postgres sends them as text: `int`, `Decimal`...)."""

    def __init__(self, *, name: str, sql: str, columns: Sequence[Callable[[Any], Any]]) -> None:
        # The text's digest in the name: behind a pooler a server session may still hold a statement of this
        # name prepared by an earlier release with other SQL, and "already prepared" must mean this SQL.
        self.name = f"{name}_{hashlib.sha1(sql.encode()).hexdigest()[:12]}".encode()
        self.sql = sql
        self.columns = tuple(columns)
        count = iter(range(1, sql.count("%s") + 1))
        self._libpq_sql = re.sub(r"%s", lambda _: f"${next(count)}", sql).encode()
        self._prepared_on: weakref.WeakSet = weakref.WeakSet()  # psycopg connections whose session has it
        self._unprepared_on: weakref.WeakSet = weakref.WeakSet()  # those where it does not stay prepared

    @async_unsafe
    def fetchone(self, params: Sequence[int | str]) -> tuple | None:
        """The first row, converted by `columns` (NULL stays None), or None when there is none. `params` are
        sent as text: None (which would be the text 'None', not NULL) is refused."""
        if any(value is None for value in params):
            raise ValueError("PreparedQuery parameters cannot be None")
        db = connections[DEFAULT_DB_ALIAS]
        if db.vendor != "postgresql":
            with db.cursor() as cursor:
                cursor.execute(self.sql, params)
                row = cursor.fetchone()
            return None if row is None else self._converted(row)
        if db.queries_logged or db.execute_wrappers:
            return self._instrumented(db, params)
        db.close_if_health_check_failed()  # what db.cursor() does before any query
        db.ensure_connection()
        return self._run(db, params)

    def _instrumented(self, db, params: Sequence[int | str]) -> tuple | None:
        """The same prepared execution, inside Django's query log and execute wrappers."""
        with db.cursor() as cursor:  # connects and health-checks as above
            def executor(sql, params, many, context):
                return self._run(db, params)

            for wrapper in reversed(db.execute_wrappers):
                executor = functools.partial(wrapper, executor)
            context = {"connection": db, "cursor": cursor}
            if not isinstance(cursor, CursorDebugWrapper):
                return executor(self.sql, params, False, context)
            # Logged with its values bound, as Django logs its own queries.
            with cursor.debug_sql(db.ops.compose_sql(self.sql, params)):
                return executor(self.sql, params, False, context)

    def _run(self, db, params: Sequence[int | str]) -> tuple | None:
        db.validate_no_broken_transaction()
        conn = db.connection
        pgconn = conn.pgconn
        values = [str(value).encode() for value in params]
        with db.wrap_database_errors:
            if not conn.autocommit or pgconn.transaction_status != pq.TransactionStatus.IDLE:
                # In a transaction (atomic): psycopg's own cursor, which opens it if this is its first query, and
                # no statement the session might lack (its error would abort the caller's transaction).
                with conn.cursor() as cursor:
                    cursor.execute(self.sql, params)
                    row = cursor.fetchone()
                return None if row is None else self._converted(row)
            if conn in self._unprepared_on:
                result = pgconn.exec_params(self._libpq_sql, values)
            else:
                if conn not in self._prepared_on:
                    self._prepare(conn)
                result = pgconn.exec_prepared(self.name, values)
                if result.error_field(pq.DiagnosticField.SQLSTATE) == UNDEFINED_STATEMENT:
                    # The session lost it (a DEALLOCATE), or a pooler in transaction mode runs each exchange on
                    # another server connection (PgBouncer without max_prepared_statements): unprepared, from now
                    # on, on this connection.
                    self._unprepared_on.add(conn)
                    result = pgconn.exec_params(self._libpq_sql, values)
            self._check(conn, result, pq.ExecStatus.TUPLES_OK)
        if not result.ntuples:
            return None
        encoding = conn.info.encoding
        return self._converted([None if value is None else value.decode(encoding)
                                for value in (result.get_value(0, column) for column in range(result.nfields))])

    def _prepare(self, conn) -> None:
        result = conn.pgconn.prepare(self.name, self._libpq_sql)
        if result.error_field(pq.DiagnosticField.SQLSTATE) != DUPLICATE_STATEMENT:
            self._check(conn, result, pq.ExecStatus.COMMAND_OK)
        self._prepared_on.add(conn)

    @staticmethod
    def _check(conn, result: pq.abc.PGresult, expected: pq.ExecStatus) -> None:
        if result.status == expected:
            return
        if conn.pgconn.status == pq.ConnStatus.BAD:  # the server is gone: an outage, as psycopg reports it
            raise OperationalError(pq.error_message(result, encoding=conn.info.encoding))
        raise errors.error_from_result(result, encoding=conn.info.encoding)

    def _converted(self, row: Sequence) -> tuple:
        return tuple(None if value is None else convert(value)
                     for convert, value in zip(self.columns, row, strict=True))
