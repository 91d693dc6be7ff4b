"""Job progress in real Redis: counted once per batch, closed by the last batch, never stuck."""

import time
from datetime import UTC, datetime, timedelta

from django_redis import get_redis_connection

from core.jobs import (
    job_batch_record,
    job_claim_finalize,
    job_create,
    job_get,
    jobs_fail_stuck,
    jobs_recent,
)
from core.ticks import periodic_tick_claim


def test_a_job_counts_its_batches_and_ends_with_the_last_one():
    job_id = job_create(kind="refresh_prices", total=120, batches=3, owner_id=7, deadline_seconds=600, skipped=4)
    assert job_get(job_id=job_id)["state"] == "PENDING"

    first = job_batch_record(job_id=job_id, batch_id="0", ok=50, failed=0)
    assert (first.counted, first.finished) == (True, False)
    job = job_get(job_id=job_id)
    assert (job["state"], job["done"], job["percent"]) == ("PROGRESS", 50, 41.7)
    assert job["started_at"] is not None and job["finished_at"] is None

    job_batch_record(job_id=job_id, batch_id="1", ok=48, failed=2, errors=["S1: unknown", "S2: timeout"])
    last = job_batch_record(job_id=job_id, batch_id="2", ok=20, failed=0)
    assert (last.counted, last.finished) == (True, True)
    job = job_get(job_id=job_id)
    assert (job["state"], job["total"], job["done"], job["failed"], job["skipped"], job["percent"]) == (
        "SUCCESS", 120, 118, 2, 4, 100.0)
    assert job["owner_id"] == 7
    assert [e["error"] for e in job["errors"]] == ["S2: timeout", "S1: unknown"]
    assert job["finished_at"] >= job["started_at"]


def test_a_redelivered_batch_is_not_counted_twice():
    job_id = job_create(kind="refresh_prices", total=10, batches=2, owner_id=None, deadline_seconds=600)
    assert job_batch_record(job_id=job_id, batch_id="0", ok=5, failed=0).counted
    again = job_batch_record(job_id=job_id, batch_id="0", ok=5, failed=0)
    assert (again.counted, again.reason) == (False, "already counted")
    assert job_get(job_id=job_id)["done"] == 5
    assert job_get(job_id=job_id)["state"] == "PROGRESS"


def test_only_one_caller_finalizes():
    job_id = job_create(kind="refresh_prices", total=1, batches=1, owner_id=None, deadline_seconds=600)
    job_batch_record(job_id=job_id, batch_id="0", ok=1, failed=0)
    assert [job_claim_finalize(job_id=job_id) for _ in range(3)] == [True, False, False]


def test_everything_failing_is_a_failure():
    job_id = job_create(kind="refresh_prices", total=2, batches=1, owner_id=None, deadline_seconds=600)
    job_batch_record(job_id=job_id, batch_id="0", ok=0, failed=2, errors=["A: 500", "B: 500"])
    assert job_get(job_id=job_id)["state"] == "FAILURE"


def test_a_job_with_nothing_to_do_is_done_at_once():
    job = job_get(job_id=job_create(kind="refresh_prices", total=0, batches=0, owner_id=None,
                                    deadline_seconds=600, skipped=25))
    assert (job["state"], job["percent"], job["skipped"]) == ("SUCCESS", 100.0, 25)


def test_stuck_jobs_are_failed_past_their_deadline_and_late_batches_ignored():
    stuck = job_create(kind="refresh_prices", total=5, batches=2, owner_id=None, deadline_seconds=1)
    healthy = job_create(kind="refresh_prices", total=5, batches=2, owner_id=None, deadline_seconds=600)
    done = job_create(kind="refresh_prices", total=0, batches=0, owner_id=None, deadline_seconds=1)
    job_batch_record(job_id=stuck, batch_id="0", ok=3, failed=0)
    assert jobs_fail_stuck(now=time.time() + 5) == [stuck]
    job = job_get(job_id=stuck)
    assert job["state"] == "FAILURE" and job["errors"][0]["error"].startswith("timed out")
    assert job_get(job_id=healthy)["state"] == "PENDING"
    assert job_get(job_id=done)["state"] == "SUCCESS"
    late = job_batch_record(job_id=stuck, batch_id="1", ok=2, failed=0)
    assert (late.counted, late.reason) == (False, "job already ended")
    assert job_get(job_id=stuck)["done"] == 3


def test_recent_jobs_newest_first_and_per_owner():
    a = job_create(kind="refresh_prices", total=0, batches=0, owner_id=1, deadline_seconds=60)
    time.sleep(0.01)
    b = job_create(kind="refresh_prices", total=0, batches=0, owner_id=2, deadline_seconds=60)
    assert [j["job_id"] for j in jobs_recent()] == [b, a]
    assert [j["job_id"] for j in jobs_recent(owner_id=1)] == [a]


def test_unknown_job_is_none():
    assert job_get(job_id="nope") is None
    assert job_batch_record(job_id="nope", batch_id="0", ok=1, failed=0).counted is False


def _locked(job_id: str) -> str:
    key = f"folio:lock:test:{job_id}"
    get_redis_connection("default").set(key, job_id)
    return key


def test_the_last_batch_frees_the_jobs_lock_in_the_same_step():
    job_id = job_create(kind="refresh_prices", total=2, batches=2, owner_id=None, deadline_seconds=600,
                        job_id="j1", lock_key="folio:lock:test:j1")
    key = _locked(job_id)
    job_batch_record(job_id=job_id, batch_id="0", ok=1, failed=0)
    assert get_redis_connection("default").get(key) == b"j1"  # still running: still locked
    job_batch_record(job_id=job_id, batch_id="1", ok=1, failed=0)
    assert get_redis_connection("default").get(key) is None


def test_a_lock_taken_over_by_another_job_is_not_freed_by_the_old_one():
    job_id = job_create(kind="refresh_prices", total=1, batches=1, owner_id=None, deadline_seconds=600,
                        job_id="j2", lock_key="folio:lock:test:j2")
    key = _locked(job_id)
    get_redis_connection("default").set(key, "someone-else")
    job_batch_record(job_id=job_id, batch_id="0", ok=1, failed=0)
    assert get_redis_connection("default").get(key) == b"someone-else"


def test_the_stuck_job_cleaner_frees_the_lock_of_the_job_it_fails():
    job_id = job_create(kind="refresh_prices", total=2, batches=2, owner_id=None, deadline_seconds=1,
                        job_id="j3", lock_key="folio:lock:test:j3")
    key = _locked(job_id)
    assert jobs_fail_stuck(now=time.time() + 5) == [job_id]
    assert get_redis_connection("default").get(key) is None


def test_a_periodic_tick_runs_once_however_many_times_it_is_sent(settings):
    # given beat's refresh entry (every 300 s, expiring after 240 s) sent at 12:00:00 by one beat and
    # 20 ms later by a second one: Celery stamps each message with send time + 240 s as `expires`
    settings.CELERY_BEAT_SCHEDULE = {"refresh": {"task": "t", "schedule": 300, "options": {"expires": 240}}}
    sent = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)

    def expires(seconds_after: float) -> str:
        return (sent + timedelta(seconds=240 + seconds_after)).isoformat()

    claims = [
        periodic_tick_claim(tick="refresh", run_id="a1", expires=expires(0)),      # first beat: runs
        periodic_tick_claim(tick="refresh", run_id="b1", expires=expires(0.02)),   # second beat: the same tick
        periodic_tick_claim(tick="refresh", run_id="a1", expires=expires(0)),      # a1 redelivered: the same run
        periodic_tick_claim(tick="refresh", run_id="a2", expires=expires(300)),    # the next tick
        periodic_tick_claim(tick="refresh", run_id="b2", expires=expires(300.02)),  # ... sent twice
        periodic_tick_claim(tick=None, run_id="by-hand", expires=None),             # not sent by beat
        periodic_tick_claim(tick="unknown-entry", run_id="x", expires=None),
    ]

    assert claims == [True, False, True, True, False, True, True]
