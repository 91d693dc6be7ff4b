"""The OpenAPI schema is built once per process, under a lock: the first requests after a start, arriving
together on the threads of one web process, all get it (they raced inside drf-spectacular and
answered 500)."""

import os
import threading

import pytest
import requests

from tests.reliability.procs import WebServer, child_env

pytestmark = pytest.mark.django_db(transaction=True)


def test_concurrent_first_requests_all_get_the_same_schema(tmp_path):
    env = child_env(redis_url=os.environ["REDIS_URL"])
    with WebServer(env=env, log_dir=tmp_path, workers=1, threads=8).start() as server:
        barrier = threading.Barrier(8)
        answers: list[tuple[int, str]] = []

        def ask() -> None:
            barrier.wait()
            response = requests.get(f"{server.url}/api/schema/", headers={"Accept": "application/json"},
                                    timeout=60)
            answers.append((response.status_code, response.text))

        threads = [threading.Thread(target=ask) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert [status for status, _ in answers] == [200] * 8, server.log()[-3000:]
        assert len({text for _, text in answers}) == 1
        assert '"openapi": "3.0.3"' in answers[0][1] and '"/api/portfolios/"' in answers[0][1]
        assert "Traceback" not in server.log()
