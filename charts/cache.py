"""Chart data and its generation progress in Redis.

One key per portfolio holds the last good chart data with the data version it was computed for:
it is current when that version is the portfolio's, and otherwise still served (marked outdated,
with its age) while a newer one is generated — or when generating a newer one failed.
"""

from __future__ import annotations

import json
import time

from django_redis import get_redis_connection

# Charts of portfolios nobody looks at expire; a visit regenerates them.
CHART_TTL_SECONDS = 30 * 86400
PROGRESS_TTL_SECONDS = 86400


def _data_key(portfolio_id: int) -> str:
    return f"folio:chart:{portfolio_id}:data"


def _progress_key(portfolio_id: int) -> str:
    return f"folio:chart:{portfolio_id}:progress"


# A slow generation must never overwrite a newer one that finished first.
_STORE_IF_NEWER = """
local stored = redis.call('HGET', KEYS[1], 'version')
if stored and tonumber(stored) > tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'version', ARGV[1], 'payload', ARGV[2])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
return 1
"""


def chart_data_store(*, portfolio_id: int, version: int, data: dict) -> bool:
    """Cache chart data computed for `version`; False when a newer version is already cached."""
    payload = json.dumps({"version": version, "generated_at": time.time(), **data})
    client = get_redis_connection("default")
    return bool(client.eval(_STORE_IF_NEWER, 1, _data_key(portfolio_id), version, payload, CHART_TTL_SECONDS))


def chart_data_get(*, portfolio_id: int) -> dict | None:
    raw = get_redis_connection("default").hget(_data_key(portfolio_id), "payload")
    return json.loads(raw) if raw else None


def chart_data_delete(*, portfolio_id: int) -> None:
    get_redis_connection("default").delete(_data_key(portfolio_id), _progress_key(portfolio_id))


def chart_progress_set(*, portfolio_id: int, state: str, done: int, total: int, error: str = "") -> None:
    now = f"{time.time():.3f}"
    fields = {"state": state, "done": done, "total": total, "error": error, "updated_at": now}
    if state == "PROGRESS" and done == 0:
        fields["started_at"] = now
    client = get_redis_connection("default")
    pipe = client.pipeline()
    pipe.hset(_progress_key(portfolio_id), mapping=fields)
    pipe.expire(_progress_key(portfolio_id), PROGRESS_TTL_SECONDS)
    pipe.execute()


def chart_progress_get(*, portfolio_id: int) -> dict | None:
    raw = get_redis_connection("default").hgetall(_progress_key(portfolio_id))
    if not raw:
        return None
    progress = {k.decode(): v.decode() for k, v in raw.items()}
    done, total = int(progress["done"]), int(progress["total"])
    return {
        "state": progress["state"],
        "done": done,
        "total": total,
        "percent": 100.0 if progress["state"] == "SUCCESS" else round(100 * done / total, 1) if total else 0.0,
        "error": progress.get("error") or None,
        "updated_at": float(progress["updated_at"]),
    }
