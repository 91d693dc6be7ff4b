"""Price history and FX rates fetched as soon as a trade needs them.

A trade dated before an instrument's stored closes (or before its currency pair's stored rates) asks
for a backfill at once. Each instrument and each currency pair has at most one backfill queued at a
time, whoever asks (a claim in Redis, SET NX); backfills run on their own queue (`history`) ahead of
routine refreshes, paced by the same global provider limits. What they store announces itself like
any other price write (prices.signals), so the charts of the portfolios concerned are regenerated.
The hourly and nightly scheduled runs stay as the safety net.

The claims double as progress: a portfolio that asked for backfills lists their claim keys, and the
dashboard shows those still present as "fetching history".
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from django.db.models import OuterRef, Q, Subquery
from django.utils import timezone

from core.events import EventKind, EventLevel, event_record
from core.redis_store import redis_client, redis_key, release_if_held
from core.soft import soft_fail
from core.tasks import task_send
from prices.fx import currency_major, fx_backfill
from prices.market_calendar import sessions_between
from prices.models import FxRate, Instrument, PriceHistory, VerificationStatus
from prices.needs import instrument_needs_get
from prices.providers.base import ProviderError
from prices.refresh.backfill import history_backfill
from prices.refresh.plan import UNFETCHABLE

logger = logging.getLogger(__name__)

HISTORY_QUEUE = "history"
# A claim outlives the backfill it stands for (bounded by the task time limit); a lost task's claim
# expires, and the hourly safety net asks again.
CLAIM_SECONDS = 30 * 60


def _instrument_claim_key(instrument_id: int) -> str:
    return redis_key("history", "instrument", instrument_id)


def _fx_claim_key(base: str, currency: str) -> str:
    return redis_key("history", "fx", base, currency)


@dataclass(frozen=True)
class Claim:
    key: str
    label: str  # what the dashboard names: a symbol, or a pair such as USD/CHF
    since: date

    @property
    def value(self) -> str:
        return json.dumps({"label": self.label, "since": self.since.isoformat()})


def _claim(client, claim: Claim) -> bool:
    """True when a backfill must be queued for `claim`: nobody claimed it, or the pending one starts later."""
    if client.set(claim.key, claim.value, nx=True, ex=CLAIM_SECONDS):
        return True
    held = client.get(claim.key)
    if held is None:
        return bool(client.set(claim.key, claim.value, nx=True, ex=CLAIM_SECONDS))
    if date.fromisoformat(json.loads(held)["since"]) <= claim.since:
        return False  # the pending backfill already reaches back that far
    client.set(claim.key, claim.value, ex=CLAIM_SECONDS)  # a later one reaching further back
    return True


def _release(claim_value: str, key: str) -> None:
    with soft_fail(f"history claim {key} not released"):  # Redis down: the claim expires on its own
        release_if_held(key=key, value=claim_value)


# --- asking -----------------------------------------------------------------------------------------


# A close this many days after the date needed, or a week before it, shows the closes reach it (closes that start
# earlier may have stopped before it: history_short_get).
COVERED_AFTER_DAYS = 4
# Closes whose latest is older than this stopped (nobody held the instrument since): short of today.
STOPPED_DAYS = 7


def history_short_get(*, needs: Mapping[int, date]) -> dict[int, date]:
    """The instruments (of `needs`: id -> date needed from) whose stored closes do not reach back to
    that date or stop before it, and that a provider can be asked for. Two queries (index probes per
    instrument)."""
    if not needs:
        return {}
    closes = PriceHistory.objects.filter(instrument=OuterRef("pk"))
    rows = list(
        Instrument.objects.filter(pk__in=list(needs), active=True)
        .exclude(provider__in=UNFETCHABLE)
        .exclude(verification_status=VerificationStatus.UNKNOWN)
        .annotate(first_close=Subquery(closes.order_by("date").values("date")[:1]),
                  last_close=Subquery(closes.order_by("-date").values("date")[:1]))
        .values_list("pk", "first_close", "last_close", "exchange_mic")
    )
    # Short: no close at all; closes that start after a session of the instrument's exchange on or after the date
    # (its calendar's: a trade of Saturday is covered by Monday's close, one of Thursday is not); or closes that
    # stopped more than a week ago (nobody held the instrument since: they do not reach today).
    stopped = timezone.localdate() - timedelta(days=STOPPED_DAYS)
    short = {pk: needs[pk] for pk, first_close, last_close, mic in rows
             if first_close is None or last_close < stopped
             or (first_close > needs[pk] and sessions_between(mic=mic, start=needs[pk],
                                                               end=first_close - timedelta(days=1)))}
    # Closes that start early enough may still have stopped before the date (nobody held the instrument for a
    # year): covered only with a close near the date itself, from a week before it (today's trade has no
    # close of today yet) to a few days after.
    reach = {pk: needs[pk] for pk, *_ in rows if pk not in short}
    near = Q()
    for pk, day in reach.items():
        near |= Q(instrument_id=pk, date__gt=day - timedelta(days=7),
                  date__lte=day + timedelta(days=COVERED_AFTER_DAYS))
    covered = set(PriceHistory.objects.filter(near).values_list("instrument_id", flat=True).distinct()
                  if reach else ())
    return {**short, **{pk: day for pk, day in reach.items() if pk not in covered}}


def history_backfill_request(*, needs: Mapping[int, date], only_short: bool = True) -> list[str]:
    """Queue a backfill per instrument (id -> date needed from), on the history queue, unless one is
    pending already. `only_short`: only for instruments whose closes do not reach back (a trade's
    request); otherwise for every fetchable one (the scheduled safety net: the worker asks the
    provider only for sessions still missing). Returns the claim keys standing for the needs (queued
    now or pending already), for progress."""
    wanted = history_short_get(needs=needs) if only_short else dict(needs)
    if not wanted:
        return []
    labels = dict(Instrument.objects.filter(pk__in=list(wanted)).exclude(provider__in=UNFETCHABLE)
                  .values_list("pk", "symbol"))
    client = redis_client()
    keys = []
    for instrument_id, since in sorted(wanted.items()):
        if instrument_id not in labels:
            continue
        claim = Claim(_instrument_claim_key(instrument_id), labels[instrument_id], since)
        if _claim(client, claim):
            task_send("prices.backfill_history_task", queue=HISTORY_QUEUE,
                      kwargs={"instrument_id": instrument_id, "since": since.isoformat(), "claim": claim.value})
        keys.append(claim.key)
    return keys


def fx_short_get(*, base: str, needs: Mapping[str, date]) -> dict[str, date]:
    """The currencies (of `needs`: currency -> date needed from) with no stored rate against `base` on
    or before that date (a rate carries forward, so one before the date covers it)."""
    base_major = currency_major(base)[0]
    short = {}
    for currency, since in needs.items():
        major = currency_major(currency)[0]
        if major == base_major:
            continue
        covered = FxRate.objects.filter(date__lte=since).filter(
            base__in=[base_major, major], quote__in=[base_major, major]).exclude(base=major, quote=major).exists()
        if not covered:
            short[major] = min(since, short.get(major, since))
    return short


def fx_backfill_request(*, base: str, needs: Mapping[str, date]) -> list[str]:
    """Queue one rates backfill for the currencies (-> date needed from) lacking rates against `base`
    back to that date, unless one is pending already. Returns the claim keys standing for them."""
    base_major = currency_major(base)[0]
    short = fx_short_get(base=base, needs=needs)
    if not short:
        return []
    client = redis_client()
    keys, queued = [], {}
    for currency, since in sorted(short.items()):
        claim = Claim(_fx_claim_key(base_major, currency), f"{currency}/{base_major}", since)
        if _claim(client, claim):
            queued[currency] = claim.value
        keys.append(claim.key)
    if queued:
        task_send("prices.fx_backfill_task", queue=HISTORY_QUEUE, kwargs={
            "base": base_major, "since": min(short[c] for c in queued).isoformat(), "claims": queued})
    return keys


def history_backfills_pending(*, instrument_ids: Iterable[int]) -> set[int]:
    """The instruments (of `instrument_ids`) whose backfill is queued or running (its claim held)."""
    ids = sorted(set(instrument_ids))
    if not ids:
        return set()
    held = redis_client().mget([_instrument_claim_key(pk) for pk in ids])
    return {pk for pk, value in zip(ids, held, strict=True) if value is not None}


def history_pending_get(*, keys: Iterable[str]) -> list[str]:
    """The labels of the backfills among `keys` still pending (their claim still held)."""
    keys = list(keys)
    if not keys:
        return []
    values = redis_client().mget(keys)
    return sorted(json.loads(value)["label"] for value in values if value is not None)


# --- running (the tasks and the commands) -----------------------------------------------------------


def histories_backfill(*, instruments: Iterable[Instrument], now=None) -> Iterator[int]:
    """Backfill each instrument from the date anyone needs it (prices.needs), here and now, yielding
    the rows written per instrument (for a progress bar); one without a need is skipped (0)."""
    instruments = list(instruments)
    needs = instrument_needs_get(instrument_ids=[i.pk for i in instruments])
    for instrument in instruments:
        since = needs.get(instrument.pk)
        yield history_backfill(instrument=instrument, since=since, now=now) if since else 0


def history_backfill_run(*, instrument_id: int, since: date | None, claim: str | None = None) -> int:
    """Fetch what an instrument misses since `since` (None: since anyone needs it); its claim is
    released however it ends."""
    try:
        since = since or instrument_needs_get(instrument_ids=[instrument_id]).get(instrument_id)
        instrument = Instrument.objects.filter(pk=instrument_id).first()
        if instrument is None or since is None:
            return 0
        try:
            return history_backfill(instrument=instrument, since=since)
        except ProviderError as error:
            event_record(kind=EventKind.PROVIDER_ERROR, level=EventLevel.WARNING, provider=instrument.provider,
                         message=f"History of {instrument.symbol} since {since} not fetched: {error}"[:500])
            return 0
    finally:
        if claim is not None:
            _release(claim, _instrument_claim_key(instrument_id))


def fx_backfill_run(*, base: str, since: date, claims: Mapping[str, str]) -> int:
    """Fetch the rates of the currencies of `claims` against `base` since `since`; claims released."""
    try:
        try:
            return fx_backfill(base=base, currencies=sorted(claims), since=since)
        except ProviderError as error:
            event_record(kind=EventKind.PROVIDER_ERROR, level=EventLevel.WARNING, provider="frankfurter",
                         message=f"Rates of {', '.join(sorted(claims))} in {base} since {since} not fetched: "
                                 f"{error}"[:500])
            return 0
    finally:
        for currency, value in claims.items():
            _release(value, _fx_claim_key(base, currency))
