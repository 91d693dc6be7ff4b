"""Chart data and its generation progress in Redis.

One key per portfolio holds the last good chart data with the history version it was computed for
(and the day, "as_of"): it is current when that version is the portfolio's history_version and the day
is today, and otherwise still served (marked outdated,
with its age) while a newer one is generated — or when generating a newer one failed. Data cached in
another layout (CHART_LAYOUT) is no chart at all.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from datetime import date
from typing import NamedTuple

from redis.exceptions import ResponseError

from core.kept_bytes import KEPT, WRITE_ID_LENGTH, write_id
from core.redis_store import redis_client, redis_key, release_if_held

# Charts of portfolios nobody looks at expire; a visit regenerates them.
CHART_TTL_SECONDS = 30 * 86400
PROGRESS_TTL_SECONDS = 86400

# The shape of the cached parts, in the name of the data's key and of every cached answer's. Bump it
# whenever a part changes shape: data another Folio cached in its own layout is then no chart to this one
# (202, generated at once), never a misread answer; and while an older Folio's processes still run beside
# the new ones (a rolling deploy), each reads and writes only its own keys, so neither breaks the other.
#   2: sparklines keyed by instrument id, not symbol (two instruments may share one); the live part's
#      "sparklines" a list of their ids; each allocation row (by_instrument) carries the instrument_id and
#      provider of its instrument, and each warning its instrument_id; the rows ordered by value, symbol,
#      then instrument id.
#   3: the time-weighted return counts a day's money in from the day's start (charts.performance); the live
#      part's ranges carry today's factor's `start` and `out` instead of `flow` and `counted`. Every chart is
#      made again on its first read, so no return measured the old way is served.
CHART_LAYOUT = 3


def chart_data_key(portfolio_id: int) -> str:
    return redis_key("chart", portfolio_id, "data", f"l{CHART_LAYOUT}")


def _data_keys_of_every_layout(portfolio_id: int) -> list[str]:
    """This layout's key and the keys earlier layouts used (layout 1's had no suffix)."""
    return [redis_key("chart", portfolio_id, "data")] + [
        redis_key("chart", portfolio_id, "data", f"l{layout}") for layout in range(2, CHART_LAYOUT + 1)]


def _progress_key(portfolio_id: int) -> str:
    return redis_key("chart", portfolio_id, "progress")


# A slow generation must never overwrite a newer one that finished first. Fields are replaced whole:
# HDEL of every old field, then the new ones, in one script.
_STORE_IF_NEWER = """
-- a key left by an older Folio in another shape is replaced, never read
if redis.call('TYPE', KEYS[1]).ok ~= 'hash' then redis.call('DEL', KEYS[1]) end
local stored = redis.call('HGET', KEYS[1], 'version')
if stored and tonumber(stored) > tonumber(ARGV[1]) then return 0 end
redis.call('DEL', KEYS[1])
for i = 3, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
return 1
"""

# Each part is its own hash field of ready JSON, so a request reads and sends only what it shows
# (one range's series, not ten years of every range, every sparkline and all the performance).
def _parts(data: dict) -> dict[str, str]:
    parts = {}
    for name, value in data.items():
        if name == "ranges":
            parts.update(_ranges_parts(value))
        elif name == "benchmark":
            parts["benchmark_symbol"] = json.dumps(value["symbol"])
            parts.update({f"benchmark:{key}": json.dumps(points) for key, points in value["ranges"].items()})
        else:
            # A part made as its JSON text (charts.sparklines.Sparklines, charts.compute.AllocationText) is stored
            # as made.
            text = getattr(value, "json_text", None)
            parts[name] = text() if text is not None else json.dumps(value)
    return parts


def _ranges_parts(ranges: dict[str, list[dict]]) -> dict[str, str]:
    """Each range's points (charts.compute.SeriesPoint) as json.dumps writes them, each point written once: the
    ranges are slices of one daily series (the same point objects), and the long ones share most of their points
    (1,800 points in all, 840 of them different, for a 10-year chart). A point's fields are an ISO date and two
    amounts as money_format writes them (digits, a sign and a point): nothing to escape."""
    texts: dict[int, str] = {}
    parts = {}
    for key, points in ranges.items():
        written = []
        for point in points:
            text = texts.get(id(point))
            if text is None:
                text = texts[id(point)] = (f'{{"date": "{point["date"]}", "value": "{point["value"]}", '
                                           f'"invested": "{point["invested"]}"}}')
            written.append(text)
        parts[f"range:{key}"] = "[" + ", ".join(written) + "]"
    return parts


def chart_data_store(*, portfolio_id: int, version: int, data: dict) -> bool:
    """Cache chart data computed for `version`; False when a newer version is already cached."""
    parts = _parts({"version": version, "generated_at": time.time(), **data})
    args = [version, CHART_TTL_SECONDS] + [item for pair in parts.items() for item in pair]
    return bool(redis_client().eval(_STORE_IF_NEWER, 1, chart_data_key(portfolio_id), *args))


# The portfolios whose chart was read, each scored by its last read (a timestamp) that was not served from a cached
# answer — at least the first of each day, an answer being kept for its day only: the charts worth making again
# for a new day before anyone asks (charts.services.charts_new_day_regenerate).
READ_KEY = redis_key("charts", "read")


def chart_parts_get(*, portfolio_id: int, names: list[str], read: bool = False) -> dict[str, bytes | None]:
    """Raw JSON of the named parts (None for a missing one) in one round trip. `read`: a reader's, so the
    portfolio is marked as read now (READ_KEY) in the same round trip."""
    pipe = redis_client().pipeline(transaction=False)
    pipe.hmget(chart_data_key(portfolio_id), names)
    if read:
        pipe.zadd(READ_KEY, {str(portfolio_id): time.time()})
    try:
        values = pipe.execute()[0]
    except ResponseError:  # a key of another shape, left by an older Folio: no chart yet
        values = [None] * len(names)
    return dict(zip(names, values, strict=True))


def chart_reads_since(*, since: float) -> list[int]:
    """The portfolios whose chart was read at `since` (a timestamp) or later, ascending; the marks of earlier
    reads dropped in the same step."""
    pipe = redis_client().pipeline()  # MULTI: what is dropped is never what is then read
    pipe.zremrangebyscore(READ_KEY, "-inf", f"({since}")
    pipe.zrange(READ_KEY, 0, -1)
    return sorted(int(member) for member in pipe.execute()[1])


def chart_reads_forget(*, portfolio_ids: list[int]) -> None:
    """The marks of these portfolios' reads dropped (the portfolios are gone)."""
    if portfolio_ids:
        redis_client().zrem(READ_KEY, *map(str, portfolio_ids))


def chart_parts_current(found: dict[str, bytes | None], *, version: int, day: date) -> bool:
    """Whether parts read with chart_parts_get ("version" and "as_of" among them) were made for this
    history version, on this day."""
    return (found["version"] is not None and int(found["version"]) == version
            and found["as_of"] == json.dumps(day.isoformat()).encode())


def chart_is_current(*, portfolio_id: int, version: int, day: date) -> bool:
    return chart_parts_current(chart_parts_get(portfolio_id=portfolio_id, names=["version", "as_of"]),
                               version=version, day=day)


# A current chart's answer as the API sends it (all but its few per-request fields), per history and data
# version, day and variant (range, sparklines): a warm read sends it without decoding or splicing anything.
# Stored as the write's id (core/kept_bytes.py), `generated_at` and a newline, then the answer's tail: a reader
# that kept the answer is sent a one-integer "still that write" instead of it (_KEPT_ANSWER). ANSWER_FORMAT is in
# the key: an older Folio's answers (no id) are never read as this one's, nor this one's as theirs.
ANSWER_FORMAT = 2


def _answer_key(*, portfolio_id: int, history_version: int, data_version: int, day: date, variant: str) -> str:
    return redis_key("chart", portfolio_id, "answer", f"l{CHART_LAYOUT}", f"a{ANSWER_FORMAT}", f"h{history_version}",
                     f"d{data_version}", day.isoformat(), variant)


# KEYS[1] the answer, ARGV[1] the id of the write kept: 1 while the answer is still that write, else the answer.
_KEPT_ANSWER = (f"if redis.call('GETRANGE', KEYS[1], 0, {WRITE_ID_LENGTH - 1}) == ARGV[1] then return 1 end "
                "return redis.call('GET', KEYS[1])")


def chart_answer_get(*, portfolio_id: int, history_version: int, data_version: int, day: date,
                     variant: str) -> tuple[float, bytes] | None:
    """(generated_at, the answer's cached tail) or None."""
    found = _answer_of(redis_client().get(_answer_key(portfolio_id=portfolio_id, history_version=history_version,
                                                      data_version=data_version, day=day, variant=variant)))
    return None if found is None else found[1]


def chart_answer_queue(pipe, *, portfolio_id: int, history_version: int, data_version: int, day: date,
                       variant: str) -> Callable[[list], tuple[float, bytes] | None]:
    """chart_answer_get's read queued on `pipe` (the caller's pipeline: another read rides in the same round
    trip), and the reader of the pipeline's replies. An answer this process read before is kept: Redis sends
    it again only when it is not that write any more."""
    index = len(pipe)
    key = _answer_key(portfolio_id=portfolio_id, history_version=history_version, data_version=data_version,
                      day=day, variant=variant)
    # One kept per portfolio and variant: a new version's answer replaces the old one's (core/kept_bytes.py).
    slot = ("chart", portfolio_id, variant)
    kept = KEPT.get(slot, of=key)
    if kept is None:
        pipe.get(key)
    else:
        pipe.eval(_KEPT_ANSWER, 1, key, kept[0])

    def reader(replies: list) -> tuple[float, bytes] | None:
        reply = replies[index]
        if isinstance(reply, int):  # 1: still the write kept here
            return kept[1]
        found = _answer_of(reply)
        if found is None:
            return None
        written, answer = found
        KEPT.put(slot, written, answer, size=len(answer[1]), of=key)
        return answer

    return reader


def _answer_of(raw: bytes | None) -> tuple[bytes, tuple[float, bytes]] | None:
    """(the write's id, (generated_at, tail)) of a stored answer, or None."""
    if raw is None:
        return None
    newline = raw.index(b"\n")
    return raw[:WRITE_ID_LENGTH], (float(raw[WRITE_ID_LENGTH:newline]), raw[newline + 1:])


def chart_answer_store(*, portfolio_id: int, history_version: int, data_version: int, day: date, variant: str,
                       generated_at: float, tail: bytes, ttl: int) -> None:
    redis_client().set(_answer_key(portfolio_id=portfolio_id, history_version=history_version,
                                   data_version=data_version, day=day, variant=variant),
                       write_id().encode() + repr(generated_at).encode() + b"\n" + tail, ex=ttl)


def chart_data_get(*, portfolio_id: int) -> dict | None:
    """The whole cached chart data, decoded (for workers and tests; requests read parts)."""
    try:
        raw = redis_client().hgetall(chart_data_key(portfolio_id))
    except ResponseError:  # a key of another shape, left by an older Folio
        return None
    if not raw:
        return None
    data: dict = {}
    for field, value in raw.items():
        name, decoded = field.decode(), json.loads(value)
        if name.startswith("range:"):
            data.setdefault("ranges", {})[name.removeprefix("range:")] = decoded
        elif name.startswith("benchmark:"):
            data.setdefault("benchmark", {}).setdefault("ranges", {})[name.removeprefix("benchmark:")] = decoded
        elif name == "benchmark_symbol":
            data.setdefault("benchmark", {})["symbol"] = decoded
        else:
            data[name] = decoded
    return data


def chart_data_delete(*, portfolio_id: int) -> None:
    """The portfolio's chart, its progress and the mark of its last read gone (the portfolio is deleted)."""
    pipe = redis_client().pipeline(transaction=False)
    pipe.delete(*_data_keys_of_every_layout(portfolio_id), _progress_key(portfolio_id))
    pipe.zrem(READ_KEY, str(portfolio_id))
    pipe.execute()


# Generations under way (PENDING or PROGRESS), scored by their last progress update: the stuck-job
# cleaner finds those that stopped moving without scanning keys (charts.services).
GENERATING_KEY = redis_key("charts", "generating")


# When a chart generation last moved (a run's PROGRESS or SUCCESS), whichever portfolio's: while generations move,
# the chart workers are working through their queue, and one still waiting there is not lost (charts.services).
MOVED_KEY = redis_key("charts", "moved")


def chart_progress_set(*, portfolio_id: int, state: str, done: int, total: int, error: str = "") -> None:
    now = f"{time.time():.3f}"
    fields = {"state": state, "done": done, "total": total, "error": error, "updated_at": now}
    if state == "PROGRESS" and done == 0:
        fields["started_at"] = now
    client = redis_client()
    pipe = client.pipeline()
    pipe.hset(_progress_key(portfolio_id), mapping=fields)
    pipe.expire(_progress_key(portfolio_id), PROGRESS_TTL_SECONDS)
    if state in ("PENDING", "PROGRESS"):
        pipe.zadd(GENERATING_KEY, {str(portfolio_id): float(now)})
        pipe.expire(GENERATING_KEY, PROGRESS_TTL_SECONDS)
    else:
        pipe.zrem(GENERATING_KEY, str(portfolio_id))
    if state in ("PROGRESS", "SUCCESS"):
        pipe.set(MOVED_KEY, now, ex=PROGRESS_TTL_SECONDS)
    pipe.execute()


def chart_generations_moved_at() -> float | None:
    """When a chart generation last moved (MOVED_KEY), or None if none has for PROGRESS_TTL_SECONDS."""
    moved = redis_client().get(MOVED_KEY)
    return float(moved) if moved is not None else None


def chart_generations_stalled(*, before: float) -> list[int]:
    """Portfolios whose chart generation has shown no progress since `before` (a timestamp)."""
    return [int(pid) for pid in redis_client().zrangebyscore(GENERATING_KEY, "-inf", before)]


def chart_generation_forget(*, portfolio_id: int) -> None:
    """No generation under way any more (its portfolio is gone): progress and index entry dropped."""
    pipe = redis_client().pipeline()
    pipe.zrem(GENERATING_KEY, str(portfolio_id))
    pipe.delete(_progress_key(portfolio_id))
    pipe.execute()


# What the generation under way makes ("<history version>@<day>", and the run's own token), held by that
# run until it ends (after it stored what it made) or the key expires.
def _making_key(portfolio_id: int) -> str:
    return redis_key("chart", portfolio_id, "making")


def chart_making_what(*, version: int, day: date) -> str:
    """What a run makes: the history version for the day, as its mark names it."""
    return f"{version}@{day.isoformat()}"


def _makes(held: bytes | None, what: str) -> bool:
    return held is not None and held.split(b" ", 1)[0] == what.encode()


# KEYS[1] the mark, KEYS[2] the chart's data. ARGV[1] the history version, ARGV[2] the day (ISO), ARGV[3] the
# mark to set and ARGV[4] its seconds; ARGV[5] the day as the data's "as_of" (JSON), or "" when a chart already
# cached does not count. 0: another run makes this version or a newer one, for this day or a later one (ISO days
# compare as text); 1: the chart of this version or a newer one is cached for the day; else the mark set. A mark
# of an older version never holds a run back, whatever its day: the run a write queued just before midnight
# must not wait on a run of the version before the write that reached the new day first.
_MAKING_TAKE = """
local held = redis.call('GET', KEYS[1])
if held then
  local version, day = string.match(held, '^(%-?%d+)@(%S+)')
  if day and day >= ARGV[2] and tonumber(version) >= tonumber(ARGV[1]) then return 0 end
end
if ARGV[5] ~= '' and redis.call('TYPE', KEYS[2]).ok == 'hash' then
  local made = redis.call('HMGET', KEYS[2], 'version', 'as_of')
  if made[1] and made[2] == ARGV[5] and tonumber(made[1]) >= tonumber(ARGV[1]) then return 1 end
end
redis.call('SET', KEYS[1], ARGV[3], 'EX', ARGV[4])
return ARGV[3]
"""


class Making(NamedTuple):
    held: str | None  # the mark this run holds (the value to release it with), or None
    made: bool  # the chart is cached already: nothing to make


def chart_making_take(*, portfolio_id: int, version: int, day: date, seconds: int,
                      unless_made: bool) -> Making:
    """Mark this run as making `version` for `day`, for at most `seconds`, unless another run makes it or a
    newer one (held None: this one is a duplicate, or outdated), or — `unless_made` — the chart of that version
    or a newer one is already cached for the day (made). A mark of an older version (an older run still going)
    is taken over.

    One step in Redis: a run stores its chart before it drops its mark, so a run finds one or the other — never
    neither in two reads, between which another run of its version finished (it would make the chart again)."""
    what = chart_making_what(version=version, day=day)
    reply = redis_client().eval(
        _MAKING_TAKE, 2, _making_key(portfolio_id), chart_data_key(portfolio_id), version, day.isoformat(),
        f"{what} {uuid.uuid4().hex}", seconds, json.dumps(day.isoformat()) if unless_made else "")
    if isinstance(reply, int):
        return Making(held=None, made=reply == 1)
    return Making(held=reply.decode(), made=False)


def chart_making_release(*, portfolio_id: int, held: str) -> None:
    release_if_held(key=_making_key(portfolio_id), value=held)


def chart_making_forget(*, portfolio_id: int) -> None:
    """The run holding the mark is lost (the stuck-job cleaner says so): the mark goes with it."""
    redis_client().delete(_making_key(portfolio_id))


def chart_generation_state(*, portfolio_id: int, what: str) -> tuple[str | None, bool]:
    """The last generation's state (None: none recorded), and whether a run is making `what`, in one
    round trip."""
    pipe = redis_client().pipeline(transaction=False)
    pipe.hget(_progress_key(portfolio_id), "state")
    pipe.get(_making_key(portfolio_id))
    state, held = pipe.execute()
    return (state.decode() if state is not None else None), _makes(held, what)


def chart_progress_get(*, portfolio_id: int) -> dict | None:
    raw = redis_client().hgetall(_progress_key(portfolio_id))
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
