"""What "the database is unreachable" looks like: one definition for everyone who answers or retries it.
(Its Redis counterpart, REDIS_DOWN, is in core/redis_store.py beside the client.)"""

from django.db import InterfaceError, OperationalError

# What Django raises when it cannot connect, loses its connection, or gets a transient refusal (a restart
# in progress, too many connections): nothing about the request or the data itself.
DATABASE_DOWN = (OperationalError, InterfaceError)
