"""Periodic tasks run once per tick, however many beats sent it.

RedBeat's lock keeps a second beat from sending anything (config/settings.py); this is the second line:
a periodic task whose tick was already run is a no-op. Beat entries carry their own name as the `tick`
argument (settings), and a tick is known by the time beat sent it — the message's absolute `expires`,
which Celery computes at sending as send time + the entry's `expires` option. Two sends of the same entry
less than that window apart are the same tick (two beats, or a beat restarted mid-tick); a beat's real
ticks are one interval apart, and every entry's `expires` is shorter than its interval. A message
redelivered after its worker died (same task id) is still the same run and goes ahead.
"""

from __future__ import annotations

import logging
import math
import time
from datetime import datetime

from django.conf import settings

from core.redis_store import redis_client, redis_key

logger = logging.getLogger(__name__)

# KEYS[1] the entry's tick key; ARGV: run id, send time, window (s), key TTL (s). 1: run it, 0: a duplicate.
_CLAIM = """
local held = redis.call('GET', KEYS[1])
if held then
  local space = string.find(held, ' ')
  local run, sent = string.sub(held, 1, space - 1), tonumber(string.sub(held, space + 1))
  if run == ARGV[1] then return 1 end
  if math.abs(tonumber(ARGV[2]) - sent) < tonumber(ARGV[3]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. ARGV[2], 'EX', ARGV[4])
return 1
"""


def _sent_at(*, expires: object, window: float) -> float:
    if isinstance(expires, datetime):
        return expires.timestamp() - window
    if isinstance(expires, str) and expires:
        return datetime.fromisoformat(expires).timestamp() - window
    return time.time()  # sent without an expiry (by hand): its run time stands for its tick


def periodic_tick_claim(*, tick: str | None, run_id: str | None, expires: object) -> bool:
    """True when this run of beat entry `tick` must do its work; False for a second run of a tick that
    already ran. Runs not sent by beat (`tick` None) always go ahead."""
    entry = settings.CELERY_BEAT_SCHEDULE.get(tick or "")
    if entry is None:
        return True
    window = float(entry.get("options", {}).get("expires") or 0)
    if window <= 0:
        return True
    sent = _sent_at(expires=expires, window=window)
    claimed = redis_client().eval(
        _CLAIM, 1, redis_key("tick", tick), run_id or f"anonymous-{sent}", f"{sent:.3f}", window,
        math.ceil(window * 2))
    if not claimed:
        logger.info("periodic %s: this tick (sent %.3f) already ran; nothing to do", tick, sent)
    return bool(claimed)


def task_tick_claim(task, tick: str | None) -> bool:
    """`periodic_tick_claim` for the running (bound) Celery task."""
    return periodic_tick_claim(tick=tick, run_id=task.request.id, expires=task.request.expires)
