"""Django's Postgres backend, with a health check that costs no round trip.

Django's CONN_HEALTH_CHECKS runs `SELECT 1` before the first query of every request on a reused
connection: a second Postgres round trip for a dashboard read that needs one. What it protects against
is a connection the server ended while it sat idle between requests (Postgres restarted, a backend
terminated, idle_session_timeout): the server then sends its FATAL notice and closes the socket, so an
idle connection whose socket has something to read, or is in error, is dead — one non-blocking poll()
of the socket tells, without asking Postgres. A connection that is not idle (inside a transaction, or
one psycopg knows to be broken) gets Django's own check.

What neither check sees in time is a peer that vanished without closing (a host powered off): `SELECT 1`
blocks on it just the same, until the TCP timeout.
"""

import select

from django.db.backends.postgresql import base
from psycopg import pq


def _ended_while_idle(connection) -> bool | None:
    """Whether the server ended this idle psycopg connection (None: not idle, poll cannot tell)."""
    if connection.closed or connection.pgconn.transaction_status != pq.TransactionStatus.IDLE:
        return None
    poller = select.poll()
    poller.register(connection.pgconn.socket, select.POLLIN | select.POLLPRI)
    # Between requests nothing is due from the server: anything readable is its goodbye (or EOF).
    return bool(poller.poll(0))


class DatabaseWrapper(base.DatabaseWrapper):
    def close_if_health_check_failed(self):
        if self.pool or self.connection is None or not self.health_check_enabled or self.health_check_done:
            return
        ended = _ended_while_idle(self.connection)
        if ended is None:
            super().close_if_health_check_failed()
            return
        if ended:
            self.close()
        self.health_check_done = True
