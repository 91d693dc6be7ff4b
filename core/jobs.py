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
import re
import time
import uuid
from dataclasses import dataclass

from core.events import EventKind, EventLevel, event_record
from core.redis_store import redis_client, redis_key, release_if_held

logger = logging.getLogger(__name__)

PENDING, PROGRESS, SUCCESS, FAILURE = "PENDING", "PROGRESS", "SUCCESS", "FAILURE"
TERMINAL = {SUCCESS, FAILURE}
JOB_TTL_SECONDS = 7 * 86400  # long enough to look back on a week of runs
MAX_ERRORS = 50  # errors kept per job: enough to diagnose, bounded for memory
# What job_create names a job: 32 hex digits. Nothing else a client sends is a job's id ("<id>:errors" would name
# the job's list of errors in Redis).
JOB_ID_PATTERN = "[0-9a-f]{32}"
RECENT_JOBS = 500
RECENT_KEY = redis_key("jobs", "recent")

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


def _now() -> str:
    return f"{time.time():.3f}"


def job_id_valid(job_id: str) -> bool:
    return re.fullmatch(JOB_ID_PATTERN, job_id) is not None


def job_key(job_id: str) -> str:
    return redis_key("job", job_id)


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
    pipe = redis_client().pipeline()
    pipe.hset(job_key(job_id), mapping=fields)
    pipe.expire(job_key(job_id), JOB_TTL_SECONDS)
    pipe.zadd(RECENT_KEY, {job_id: float(now)})
    pipe.zremrangebyrank(RECENT_KEY, 0, -RECENT_JOBS - 1)
    pipe.execute()
    return job_id


def job_batch_record(*, job_id: str, batch_id: str, ok: int, failed: int, errors: list[str] = ()) -> BatchOutcome:
    """Count a batch's outcome exactly once; `finished` is true for the one call that ends the job."""
    key = job_key(job_id)
    script = redis_client().register_script(_RECORD_BATCH)
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
    pipe = redis_client().pipeline(transaction=False)
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
    return bool(redis_client().hsetnx(job_key(job_id), "finalized", _now()))


def job_fail(*, job_id: str, reason: str, keep: int = MAX_ERRORS) -> bool:
    """End a job that is still running as FAILURE with `reason` (first of its errors, `keep` of them kept); False if
    it had already ended."""
    key = job_key(job_id)
    script = redis_client().register_script(_FAIL_IF_RUNNING)
    error = json.dumps({"at": _now(), "batch": None, "error": reason})
    return bool(script(keys=[key, f"{key}:errors"], args=[_now(), error, keep, JOB_TTL_SECONDS, job_id]))


def _as_float(value: str | None) -> float | None:
    return float(value) if value else None


def job_get(*, job_id: str) -> dict | None:
    """The job as the API shows it, or None when unknown or expired."""
    client = redis_client()
    raw = client.hgetall(job_key(job_id))
    if not raw:
        return None
    job = {k.decode(): v.decode() for k, v in raw.items()}
    total, done, failed = int(job["total"]), int(job["done"]), int(job["failed"])
    # Every one kept: each writer trims the list to what it keeps (MAX_ERRORS, or more for an import's rows).
    errors = [json.loads(e) for e in client.lrange(f"{job_key(job_id)}:errors", 0, -1)]
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
    ids = [i.decode() for i in redis_client().zrevrange(RECENT_KEY, 0, RECENT_JOBS - 1)]
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
    for job_id in (i.decode() for i in redis_client().zrange(RECENT_KEY, 0, -1)):
        job = job_get(job_id=job_id)
        overdue = job and job["state"] not in TERMINAL and job["deadline"] and job["deadline"] < now
        reason = f"timed out: not finished {int(now - job['created_at'])} s after start" if overdue else ""
        if overdue and job_fail(job_id=job_id, reason=reason):
            failed.append(job_id)
            # Its after-work is this: a batch arriving late (redelivered, long queued) finds it finalized and
            # records no second failure.
            job_claim_finalize(job_id=job_id)
            event_record(kind=EventKind.JOB_FAILED, level=EventLevel.ERROR, job_id=job_id,
                         message=f"Job {job['kind']} {job_id} {reason}; {job['done']} of {job['total']} done")
    return failed


# --- jobs that are one long step (an import) rather than batches ---------------------------------


def job_progress_set(*, job_id: str, done: int, total: int) -> None:
    """How far a one-step job got (rows checked of total); it counts as running from now."""
    key = job_key(job_id)
    pipe = redis_client().pipeline()
    pipe.hset(key, mapping={"done": done, "total": total, "state": PROGRESS})
    pipe.hsetnx(key, "started_at", _now())
    pipe.execute()


def job_result_set(*, job_id: str, result: dict) -> None:
    """What a finished job produced (counts), shown with its progress."""
    redis_client().hset(job_key(job_id), "result", json.dumps(result))


def job_errors_add(*, job_id: str, errors: list[str], keep: int = MAX_ERRORS) -> None:
    """Errors to show with a job (the newest first, `keep` of them kept), e.g. an import's rejected rows."""
    key = f"{job_key(job_id)}:errors"
    payloads = [json.dumps({"at": _now(), "batch": None, "error": error}) for error in errors[:keep]]
    if payloads:
        pipe = redis_client().pipeline()
        pipe.lpush(key, *reversed(payloads))
        pipe.ltrim(key, 0, keep - 1)
        pipe.expire(key, JOB_TTL_SECONDS)
        pipe.execute()


# --- the lock a job holds over its scope, so two runs of the same work never overlap ----------------
# Hand-written, not redis-py's Lock: it is freed in the same Lua step that ends its job (_RELEASE_LOCK).

# Take a lock over from a holder known to be done: one step, so two takers can never both win.
_LOCK_TAKE_OVER = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3]) return 1 end
return 0
"""


def job_lock_key(scope: str) -> str:
    return redis_key("lock", scope)


def job_lock_take(*, key: str, job_id: str, seconds: int, planning_grace: int) -> str | None:
    """Take lock `key` for `job_id`; the id of the job holding it when that one is still running (or was
    taken less than `planning_grace` seconds ago by a run still planning its job)."""
    client = redis_client()
    for _ in range(3):  # the lock changing hands between our reads: look again
        if client.set(key, job_id, nx=True, ex=seconds):
            return None
        holder = (client.get(key) or b"").decode()
        if not holder:
            continue  # released a moment ago: try to take it again
        running = job_get(job_id=holder)
        if running and running["state"] not in TERMINAL:
            return holder
        if running is None and client.ttl(key) > seconds - planning_grace:
            return holder  # taken a moment ago by a run still planning its job: that run is this one
        # The holder ended without releasing it, or died planning: take it over, unless another taker won.
        if client.eval(_LOCK_TAKE_OVER, 1, key, holder, job_id, seconds):
            return None
    holder = (client.get(key) or b"").decode()
    return holder or None


def job_lock_release(*, key: str, job_id: str) -> None:
    """Free lock `key` if `job_id` holds it (compare-and-delete)."""
    release_if_held(key=key, value=job_id)
