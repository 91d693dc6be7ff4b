"""bin/flower started before any worker (as `make run` starts everything at once) waits for one to answer,
then starts without the "Inspect method … failed" warnings it logged when it asked nobody."""

import os
import time

import pytest
import requests

from tests.reliability.procs import BIN, CeleryWorker, Managed, child_env, free_port, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def answers(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/workers", auth=("admin", "test-flower"), timeout=5).ok
    except requests.ConnectionError:
        return False


def test_flower_waits_for_a_worker_and_starts_without_warnings(tmp_path):
    port = free_port()
    env = child_env(redis_url=os.environ["REDIS_URL"], FLOWER_PORT=port, FLOWER_BASIC_AUTH="admin:test-flower",
                    PATH=f"{BIN}:{os.environ['PATH']}", FLOWER_WAIT_SECONDS=60)
    with Managed("flower", ["bin/flower"], env=env, log_dir=tmp_path).start() as flower:
        time.sleep(4)
        assert flower.alive() and not answers(port)  # no worker yet: Flower is not started
        with CeleryWorker("answering", env=env, log_dir=tmp_path).start():
            wait_until(lambda: answers(port), timeout=60, interval=0.5, what="Flower answering")
            time.sleep(3)  # its start-up questions to the workers have had their answers, or failed
            assert "No Celery worker answered" not in flower.log()
            assert "Inspect method" not in flower.log(), flower.log()[-3000:]


def test_without_a_worker_flower_starts_after_the_wait_and_says_why(tmp_path):
    port = free_port()
    env = child_env(redis_url=os.environ["REDIS_URL"], FLOWER_PORT=port, FLOWER_BASIC_AUTH="admin:test-flower",
                    PATH=f"{BIN}:{os.environ['PATH']}", FLOWER_WAIT_SECONDS=3)
    with Managed("flower", ["bin/flower"], env=env, log_dir=tmp_path).start() as flower:
        wait_until(lambda: answers(port), timeout=60, interval=0.5, what="Flower answering")
        assert "No Celery worker answered within 3 s: starting Flower anyway." in flower.log()
