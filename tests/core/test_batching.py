"""Side records gathered in the process and written together, at most once per interval."""

import threading

from core.batching import Batcher


def test_items_are_kept_until_the_interval_has_passed_then_written_together_once():
    written: list[list[int]] = []
    interval = [3600.0]
    batcher = Batcher(interval=lambda: interval[0], flush=written.append)
    for item in range(3):
        batcher.add(item)
    assert written == []  # within the interval: nothing written yet
    interval[0] = 0.0  # the interval is read at each add (a setting)
    batcher.add(3)
    batcher.add(4)
    assert written == [[0, 1, 2, 3], [4]]


def test_concurrent_adds_lose_nothing_and_write_nothing_twice():
    written: list[list[int]] = []
    lock = threading.Lock()

    def flush(items: list[int]) -> None:
        with lock:
            written.append(items)

    batcher = Batcher(interval=lambda: 0.0005, flush=flush)
    threads = [threading.Thread(target=lambda n=n: [batcher.add(n * 1000 + k) for k in range(500)]) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    batcher.interval = lambda: 0.0
    batcher.add(-1)  # writes whatever is left
    seen = [item for items in written for item in items]
    assert sorted(seen) == sorted([-1, *(n * 1000 + k for n in range(8) for k in range(500))])
