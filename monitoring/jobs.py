"""Job progress in Redis: one hash per job, counted exactly once per batch, never "syncing" forever.

A job is planned work split into batches (a price refresh: one batch per provider request). Each
batch records its outcome with one Lua script that first adds the batch id to the job's set of
finished batches, so a batch task redelivered after a worker died is not counted twice; the call
that records the last batch also closes the job, so exactly one caller learns it finished.

Keys (all expire after JOB_TTL_SECONDS):
  folio:job:<id>          hash: kind, state, total, done, failed, skipped, batches, batches_done,
                                owner_id, created_at, started_at, finished_at, deadline, finalized,
                                lock_key (the lock the job holds, if any)
  folio:job:<id>:batches  set of recorded batch ids
  folio:job:<id>:errors   list of the latest errors (JSON), capped
  folio:jobs:recent       sorted set of job ids by creation time, capped
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from django_redis import get_redis_connection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_exponential_jitter

from monitoring.events import EventKind, EventLevel, event_record

logger = logging.getLogger(__name__)
T = TypeVar("T")

PENDING, PROGRESS, SUCCESS, FAILURE = "PENDING", "PROGRESS", "SUCCESS", "FAILURE"
TERMINAL = {SUCCESS, FAILURE}
JOB_TTL_SECONDS = 7 * 86400  # long enough to look back on a week of runs
MAX_ERRORS = 50  # errors kept per job: enough to diagnose, bounded for memory
RECENT_JOBS = 500
RECENT_KEY = "folio:jobs:recent"

# Whatever ends a job (its last batch, or the stuck-job cleaner) also frees the lock it holds, in the
# same script: nobody ever sees a job ended and its lock still taken, even if the caller dies next.
_RELEASE_LOCK = """
local function release_lock(job, job_id)
  local lock_key = redis.call('HGET', job, 'lock_key')
  if lock_key and lock_key ~= '' and redis.call('GET', lock_key) == job_id then redis.call('DEL', lock_key) end
end
"""

_RECORD_BATCH = _RELEASE_LOCK + """
local job, batches, errors = KEYS[1], KEYS[2], KEYS[3]
local batch_id, ok, failed, now, ttl, max_errors, job_id = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]),
  ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7]
if redis.call('EXISTS', job) == 0 then return -2 end
local state = redis.call('HGET', job, 'state')
if state == 'SUCCESS' or state == 'FAILURE' then return -3 end
if redis.call('SADD', batches, batch_id) == 0 then return -1 end
redis.call('EXPIRE', batches, ttl)
redis.call('HINCRBY', job, 'done', ok)
redis.call('HINCRBY', job, 'failed', failed)
for i = 8, #ARGV do
  redis.call('LPUSH', errors, ARGV[i])
end
if #ARGV >= 8 then
  redis.call('LTRIM', errors, 0, max_errors - 1)
  redis.call('EXPIRE', errors, ttl)
end
local recorded = redis.call('HINCRBY', job, 'batches_done', 1)
if state == 'PENDING' then
  redis.call('HSET', job, 'state', 'PROGRESS', 'started_at', now)
end
if recorded >= tonumber(redis.call('HGET', job, 'batches')) then
  local done = tonumber(redis.call('HGET', job, 'done'))
  local total_failed = tonumber(redis.call('HGET', job, 'failed'))
  local final = 'SUCCESS'
  if done == 0 and total_failed > 0 then final = 'FAILURE' end
  redis.call('HSET', job, 'state', final, 'finished_at', now)
  release_lock(job, job_id)
  return 1
end
return 0
"""

_FAIL_IF_RUNNING = _RELEASE_LOCK + """
local state = redis.call('HGET', KEYS[1], 'state')
if state == false or state == 'SUCCESS' or state == 'FAILURE' then return 0 end
redis.call('HSET', KEYS[1], 'state', 'FAILURE', 'finished_at', ARGV[1])
release_lock(KEYS[1], ARGV[5])
redis.call('LPUSH', KEYS[2], ARGV[2])
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[3]) - 1)
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[4]))
return 1
"""


def _redis():
    return get_redis_connection("default")


# Redis restarting or failing over (refused connections, timeouts, "LOADING" while it reads its
# append-only file): worth waiting for, since everything a job counts lives there.
REDIS_DOWN = (RedisConnectionError, RedisTimeoutError)


def redis_retrying(call: Callable[[], T], *, seconds: float, what: str = "redis call") -> T:
    """`call()`, retried through a Redis outage for at most `seconds` (backoff 0.2 s doubling to 5 s,
    jittered); the last error is raised when Redis stays down longer. Only for idempotent calls."""
    retrying = Retrying(
        retry=retry_if_exception_type(REDIS_DOWN),
        stop=stop_after_delay(max(seconds, 0.0)),
        wait=wait_exponential_jitter(multiplier=0.2, max=5.0, jitter=0.2),
        reraise=True,
        before_sleep=lambda state: logger.warning(
            "%s: Redis unavailable (%s), retrying", what, state.outcome.exception() if state.outcome else "?"),
    )
    return retrying(call)


def _now() -> str:
    return f"{time.time():.3f}"


def job_key(job_id: str) -> str:
    return f"folio:job:{job_id}"


@dataclass(frozen=True)
class BatchOutcome:
    """What recording a batch did: counted it (and whether that finished the job), or not."""

    counted: bool
    finished: bool
    reason: str = ""


def job_create(*, kind: str, total: int, batches: int, owner_id: int | None, deadline_seconds: int,
               skipped: int = 0, job_id: str | None = None, lock_key: str = "") -> str:
    """A new job. One with no batches is finished at once (nothing to do is a success).

    `lock_key`: a Redis lock whose value is this job's id; it is freed in the same step that ends the job."""
    job_id = job_id or uuid.uuid4().hex
    now = _now()
    state = SUCCESS if batches == 0 else PENDING
    fields = {
        "kind": kind, "state": state, "total": total, "done": 0, "failed": 0, "skipped": skipped,
        "batches": batches, "batches_done": 0, "owner_id": owner_id if owner_id is not None else "",
        "created_at": now, "started_at": now if batches == 0 else "", "finished_at": now if batches == 0 else "",
        "deadline": f"{time.time() + deadline_seconds:.3f}", "lock_key": lock_key,
    }
    pipe = _redis().pipeline()
    pipe.hset(job_key(job_id), mapping=fields)
    pipe.expire(job_key(job_id), JOB_TTL_SECONDS)
    pipe.zadd(RECENT_KEY, {job_id: float(now)})
    pipe.zremrangebyrank(RECENT_KEY, 0, -RECENT_JOBS - 1)
    pipe.execute()
    return job_id


def job_batch_record(*, job_id: str, batch_id: str, ok: int, failed: int, errors: list[str] = ()) -> BatchOutcome:
    """Count a batch's outcome exactly once; `finished` is true for the one call that ends the job."""
    key = job_key(job_id)
    script = _redis().register_script(_RECORD_BATCH)
    payloads = [json.dumps({"at": _now(), "batch": batch_id, "error": error}) for error in errors[:MAX_ERRORS]]
    result = int(script(keys=[key, f"{key}:batches", f"{key}:errors"],
                        args=[batch_id, ok, failed, _now(), JOB_TTL_SECONDS, MAX_ERRORS, job_id, *payloads]))
    if result == -1:
        return BatchOutcome(counted=False, finished=False, reason="already counted")
    if result == -2:
        return BatchOutcome(counted=False, finished=False, reason="no such job (expired?)")
    if result == -3:
        return BatchOutcome(counted=False, finished=False, reason="job already ended")
    return BatchOutcome(counted=True, finished=result == 1)


def job_batch_settled(*, job_id: str, batch_id: str) -> str:
    """Why a batch need not run (again): counted already, its job ended or unknown; "" when it must run.
    A redelivered batch checks this first, so it never asks a provider for an answer nobody will count."""
    key = job_key(job_id)
    pipe = _redis().pipeline(transaction=False)
    pipe.hget(key, "state")
    pipe.sismember(f"{key}:batches", batch_id)
    state, counted = pipe.execute()
    if state is None:
        return "no such job (expired?)"
    if state.decode() in TERMINAL:
        return "job already ended"
    return "already counted" if counted else ""


def job_claim_finalize(*, job_id: str) -> bool:
    """True for the one caller that may run the job's after-work (a redelivered finisher included)."""
    return bool(_redis().hsetnx(job_key(job_id), "finalized", _now()))


def job_fail(*, job_id: str, reason: str) -> bool:
    """End a job that is still running as FAILURE with `reason`; False if it had already ended."""
    key = job_key(job_id)
    script = _redis().register_script(_FAIL_IF_RUNNING)
    error = json.dumps({"at": _now(), "batch": None, "error": reason})
    return bool(script(keys=[key, f"{key}:errors"], args=[_now(), error, MAX_ERRORS, JOB_TTL_SECONDS, job_id]))


def _as_float(value: str | None) -> float | None:
    return float(value) if value else None


def job_get(*, job_id: str) -> dict | None:
    """The job as the API shows it, or None when unknown or expired."""
    client = _redis()
    raw = client.hgetall(job_key(job_id))
    if not raw:
        return None
    job = {k.decode(): v.decode() for k, v in raw.items()}
    total, done, failed = int(job["total"]), int(job["done"]), int(job["failed"])
    errors = [json.loads(e) for e in client.lrange(f"{job_key(job_id)}:errors", 0, MAX_ERRORS - 1)]
    processed = done + failed
    return {
        "job_id": job_id,
        "kind": job["kind"],
        "state": job["state"],
        "total": total,
        "done": done,
        "failed": failed,
        "skipped": int(job.get("skipped") or 0),
        "percent": 100.0 if job["state"] in TERMINAL or total == 0 else round(100 * processed / total, 1),
        "created_at": _as_float(job.get("created_at")),
        "started_at": _as_float(job.get("started_at")),
        "finished_at": _as_float(job.get("finished_at")),
        "deadline": _as_float(job.get("deadline")),
        "owner_id": int(job["owner_id"]) if job.get("owner_id") else None,
        "errors": errors,
        "result": json.loads(job["result"]) if job.get("result") else None,
    }


def jobs_recent(*, limit: int = 50, owner_id: int | None = None) -> list[dict]:
    """Newest first; with `owner_id`, only that user's jobs."""
    ids = [i.decode() for i in _redis().zrevrange(RECENT_KEY, 0, RECENT_JOBS - 1)]
    jobs = []
    for job_id in ids:
        job = job_get(job_id=job_id)
        if job is None or (owner_id is not None and job["owner_id"] != owner_id):
            continue
        jobs.append(job)
        if len(jobs) >= limit:
            break
    return jobs


def jobs_fail_stuck(*, now: float | None = None) -> list[str]:
    """Fail every job still running past its deadline, so nothing says "syncing" forever."""
    now = now or time.time()
    failed = []
    for job_id in (i.decode() for i in _redis().zrange(RECENT_KEY, 0, -1)):
        job = job_get(job_id=job_id)
        overdue = job and job["state"] not in TERMINAL and job["deadline"] and job["deadline"] < now
        reason = f"timed out: not finished {int(now - job['created_at'])} s after start" if overdue else ""
        if overdue and job_fail(job_id=job_id, reason=reason):
            failed.append(job_id)
            event_record(kind=EventKind.JOB_FAILED, level=EventLevel.ERROR, job_id=job_id,
                         message=f"Job {job['kind']} {job_id} {reason}; {job['done']} of {job['total']} done")
    return failed


# --- jobs that are one long step (an import) rather than batches ---------------------------------


def job_progress_set(*, job_id: str, done: int, total: int) -> None:
    """How far a one-step job got (rows checked of total); it counts as running from now."""
    key = job_key(job_id)
    pipe = _redis().pipeline()
    pipe.hset(key, mapping={"done": done, "total": total, "state": PROGRESS})
    pipe.hsetnx(key, "started_at", _now())
    pipe.execute()


def job_result_set(*, job_id: str, result: dict) -> None:
    """What a finished job produced (counts), shown with its progress."""
    _redis().hset(job_key(job_id), "result", json.dumps(result))


def job_errors_add(*, job_id: str, errors: list[str]) -> None:
    """Errors to show with a job (the newest first, capped), e.g. an import's rejected rows."""
    key = f"{job_key(job_id)}:errors"
    payloads = [json.dumps({"at": _now(), "batch": None, "error": error}) for error in errors[:MAX_ERRORS]]
    if payloads:
        pipe = _redis().pipeline()
        pipe.lpush(key, *reversed(payloads))
        pipe.ltrim(key, 0, MAX_ERRORS - 1)
        pipe.expire(key, JOB_TTL_SECONDS)
        pipe.execute()
