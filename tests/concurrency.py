"""Writers racing each other for tests: each in its own thread, connection and transaction."""

import threading
from collections.abc import Callable

from django.db import connections, transaction


def transactions_at_once(*writes: Callable[[], None]) -> list[Exception]:
    """Run each write in a transaction of its own thread, all released together once every transaction has
    begun; what they raised (none: every write committed)."""
    barrier = threading.Barrier(len(writes))
    errors: list[Exception] = []

    def run(write: Callable[[], None]) -> None:
        try:
            with transaction.atomic():
                barrier.wait(timeout=10)
                write()
        except Exception as error:  # returned to the test
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(write,)) for write in writes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors
