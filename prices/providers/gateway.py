"""PriceService: batched, paced, retried and isolated calls to the market-data providers.

`batch_fetch_prices` and `fetch_prices_parallel` dedupe the symbols, group them by provider, split
each group into batches of that provider's maximum, and fetch every batch with bounded retries
(exponential backoff with jitter, `Retry-After` honoured) behind the provider's global token
bucket, daily quota and circuit breaker. A failed batch only fails its own symbols.

This module talks to providers and Redis only: instruments are loaded before, results are stored
after (prices/refresh/store.py), so worker threads never hold database connections.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import TypeVar

from django.conf import settings
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from core.events import EventKind, EventLevel, event_record
from core.redis_store import REDIS_DOWN
from prices.models import Instrument
from prices.providers import provider_class_get, provider_get
from prices.providers.base import (
    PriceProvider,
    ProviderError,
    QuotaExhaustedError,
    Quote,
    RateLimitedError,
    TransientError,
    UnknownSymbolError,
)
from prices.providers.pacing import (
    CircuitBreaker,
    CircuitOpenError,
    DailyQuota,
    ProviderLimits,
    TokenBucket,
    provider_limits,
)
from prices.providers.telemetry import RATE_WAIT_EVENT_EVERY, provider_call_record, provider_event_once

logger = logging.getLogger(__name__)
T = TypeVar("T")
# A wait for the rate limit this long is worth an event (a shorter one is the limiter working).
RATE_WAIT_EVENT_SECONDS = 1.0


@dataclass(frozen=True)
class Batch:
    provider: str
    instruments: tuple[Instrument, ...]

    @property
    def symbols(self) -> list[str]:
        return [instrument.symbol for instrument in self.instruments]


@dataclass
class FetchResult:
    quotes: dict[str, Quote] = field(default_factory=dict)  # by Folio symbol
    unknown: set[str] = field(default_factory=set)  # the provider does not know them
    failures: dict[str, str] = field(default_factory=dict)  # symbol -> why it has no quote this time
    requests: int = 0  # provider requests made, retries included

    def merge(self, other: FetchResult) -> None:
        self.quotes.update(other.quotes)
        self.unknown |= other.unknown
        self.failures.update(other.failures)
        self.requests += other.requests


class ProviderGate:
    """Everything a call to one provider must pass: breaker, quota, bucket; then retries."""

    def __init__(self, name: str, provider: PriceProvider) -> None:
        self.name = name
        self.provider = provider
        self.limits: ProviderLimits = self.limits_for(name, provider=type(provider))
        self.bucket = TokenBucket.of(name, self.limits)
        self.quota = DailyQuota(name, self.limits.daily_quota)
        self.breaker = CircuitBreaker(name)

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, RateLimitedError) and error.retry_after is not None:
            return error.retry_after  # shorter than PROVIDER_MAX_WAIT_SECONDS (_retried)
        initial = settings.PROVIDER_BACKOFF_INITIAL_SECONDS
        # Jitter of the same order as the first wait spreads workers that failed together.
        return wait_exponential_jitter(multiplier=initial, jitter=initial, max=settings.PROVIDER_BACKOFF_MAX_SECONDS)(
            state
        )

    @staticmethod
    def limits_for(name: str, *, provider: type[PriceProvider] | None = None) -> ProviderLimits:
        """A provider's pacing: its client's declared limits, overridden by settings."""
        declared = provider or provider_class_get(name)
        return provider_limits(
            name,
            requests_per_second=declared.requests_per_second,
            daily_quota=declared.daily_quota,
            max_symbols_per_request=declared.max_symbols_per_request,
            credits_per_symbol=declared.credits_per_symbol,
        )

    def _quota_event(self) -> None:
        provider_event_once(provider=self.name, kind=EventKind.QUOTA_EXHAUSTED, window_seconds=86400,
                            level=EventLevel.WARNING, message=f"{self.name}: daily quota used up")

    def call(self, request: Callable[[], T], counter: list[int], *, symbols: int = 1) -> T:
        """Run one provider request for `symbols` symbols with bounded retries of transient errors."""
        cost = self.limits.cost(symbols)

        def attempt() -> T:
            self.breaker.allow()
            if self.quota.spent():  # at once: no wait for a token the attempt could not use
                self._quota_event()
                raise QuotaExhaustedError(f"{self.name}: today's requests are used up")
            # The token before the quota is charged: an attempt that times out waiting for one is never made,
            # and costs nothing of the day's budget (a provider counting 25 a day would lose one per attempt).
            waited = self.bucket.acquire(timeout=settings.PROVIDER_MAX_WAIT_SECONDS, cost=cost)
            if waited >= RATE_WAIT_EVENT_SECONDS:
                provider_event_once(provider=self.name, kind=EventKind.RATE_LIMIT_WAIT,
                                    window_seconds=RATE_WAIT_EVENT_EVERY, level=EventLevel.INFO,
                                    message=f"{self.name}: waited {waited:.1f} s for the rate limit", waited=waited)
            try:
                self.quota.consume(cost)
            except QuotaExhaustedError:
                self._quota_event()
                raise
            counter[0] += 1
            started = time.perf_counter()
            outcome = "error"
            try:
                result = request()
                outcome = "ok"
            except QuotaExhaustedError:
                outcome = "quota"
                self.quota.exhaust()
                self._quota_event()
                raise
            except RateLimitedError:
                outcome = "rate_limited"
                self.breaker.record_failure()
                raise
            except TransientError:
                self.breaker.record_failure()
                raise
            finally:
                provider_call_record(provider=self.name, seconds=time.perf_counter() - started, outcome=outcome)
            try:
                self.breaker.record_success()
            except REDIS_DOWN:  # the answer is in hand: Redis down must not lose it
                logger.warning("%s: circuit not reset, Redis unavailable", self.name)
            return result

        retrying = Retrying(
            stop=stop_after_attempt(settings.PROVIDER_MAX_ATTEMPTS),
            wait=self._wait,
            retry=retry_if_exception(_retried),
            reraise=True,
            before_sleep=lambda state: logger.info(
                "%s: attempt %d failed (%s), retrying", self.name, state.attempt_number,
                state.outcome.exception() if state.outcome else "?",
            ),
        )
        return retrying(attempt)


def _retried(error: BaseException) -> bool:
    """A transient error is retried in this run, unless the provider asked for a wait as long as the longest this
    run may wait (PROVIDER_MAX_WAIT_SECONDS): retried sooner, it is refused again (and a provider counting its
    refusals charges them); the batch fails now and a later refresh asks again."""
    if isinstance(error, RateLimitedError) and error.retry_after is not None:
        return error.retry_after < settings.PROVIDER_MAX_WAIT_SECONDS
    return isinstance(error, TransientError)


class PriceService:
    def __init__(self, *, providers: Callable[[str], PriceProvider] = provider_get) -> None:
        self._providers = providers
        self._gates: dict[str, ProviderGate] = {}

    def gate(self, name: str) -> ProviderGate:
        if name not in self._gates:
            self._gates[name] = ProviderGate(name, self._providers(name))
        return self._gates[name]

    # --- planning

    def plan_batches(self, instruments: Iterable[Instrument]) -> list[Batch]:
        """Unique instruments grouped by provider, in batches of that provider's maximum size."""
        by_provider: dict[str, dict[str, Instrument]] = defaultdict(dict)
        for instrument in instruments:
            by_provider[instrument.provider][instrument.symbol] = instrument
        batches = []
        for name in sorted(by_provider):
            size = self.gate(name).limits.max_symbols_per_request
            group = sorted(by_provider[name].values(), key=lambda i: i.symbol)
            batches += [Batch(name, tuple(group[i : i + size])) for i in range(0, len(group), size)]
        return batches

    # --- fetching

    def fetch_batch(self, batch: Batch) -> FetchResult:
        """One batch, retried as a unit; its failure is recorded against its own symbols only."""
        result = FetchResult()
        gate = self.gate(batch.provider)
        by_quote_symbol = {instrument.quote_symbol: instrument for instrument in batch.instruments}
        counter = [0]
        try:
            answer = gate.call(
                lambda: gate.provider.latest_quotes(list(by_quote_symbol)), counter, symbols=len(by_quote_symbol)
            )
        except UnknownSymbolError as error:
            instrument = by_quote_symbol.get(error.symbol)
            if instrument is not None and len(by_quote_symbol) == 1:
                result.unknown.add(instrument.symbol)
            else:
                result.failures.update({i.symbol: str(error) for i in batch.instruments})
        except ProviderError as error:
            reason = f"{type(error).__name__}: {error}"
            result.failures.update({instrument.symbol: reason for instrument in batch.instruments})
            if not isinstance(error, CircuitOpenError | QuotaExhaustedError):  # those have their own events
                event_record(kind=EventKind.PROVIDER_ERROR, level=EventLevel.WARNING,
                             message=f"{batch.provider}: batch of {len(batch.instruments)} failed: {reason}"[:500],
                             provider=batch.provider, symbols=batch.symbols[:10], attempts=counter[0])
        except Exception as error:  # a client bug or a shape nobody foresaw: lose this batch, not the run
            logger.exception("%s: unexpected error fetching %s", batch.provider, batch.symbols)
            reason = f"unexpected {type(error).__name__}: {error}"
            result.failures.update({instrument.symbol: reason for instrument in batch.instruments})
        else:
            for quote_symbol, instrument in by_quote_symbol.items():
                if quote_symbol in answer.quotes:
                    result.quotes[instrument.symbol] = answer.quotes[quote_symbol]
                elif quote_symbol in answer.unknown:
                    result.unknown.add(instrument.symbol)
                else:
                    result.failures[instrument.symbol] = "no quote in the provider's answer"
        result.requests = counter[0]
        return result

    def _instruments(self, symbols: Iterable[str | Instrument]) -> tuple[list[Instrument], dict[str, str]]:
        wanted = {s.symbol if isinstance(s, Instrument) else s.strip().upper() for s in symbols}
        # Symbols name shared instruments here: a user's own (manual) ones are not fetched.
        found = list(Instrument.objects.filter(symbol__in=wanted, owner__isnull=True))
        missing = wanted - {instrument.symbol for instrument in found}
        return found, {symbol: "not an instrument Folio knows" for symbol in missing}

    def batch_fetch_prices(self, symbols: Iterable[str | Instrument]) -> FetchResult:
        """Fetch latest prices batch after batch."""
        instruments, missing = self._instruments(symbols)
        result = FetchResult(failures=dict(missing))
        for batch in self.plan_batches(instruments):
            result.merge(self.fetch_batch(batch))
        return result

    def fetch_prices_parallel(
        self,
        symbols: Iterable[str | Instrument],
        *,
        concurrency: int | None = None,
        on_batch_done: Callable[[Batch, FetchResult], None] | None = None,
    ) -> FetchResult:
        """Fetch every batch concurrently, at most `concurrency` in flight per provider (the
        providers' global buckets still pace the requests across all processes)."""
        instruments, missing = self._instruments(symbols)
        return self.fetch_batches_parallel(
            self.plan_batches(instruments), concurrency=concurrency, on_batch_done=on_batch_done,
            initial=FetchResult(failures=dict(missing)),
        )

    def fetch_batches_parallel(
        self,
        batches: Sequence[Batch],
        *,
        concurrency: int | None = None,
        on_batch_done: Callable[[Batch, FetchResult], None] | None = None,
        initial: FetchResult | None = None,
    ) -> FetchResult:
        limit = concurrency or settings.PROVIDER_CONCURRENCY
        result = initial or FetchResult()
        executors = {
            name: ThreadPoolExecutor(max_workers=limit, thread_name_prefix=f"fetch-{name}")
            for name in {batch.provider for batch in batches}
        }
        try:
            futures = {executors[batch.provider].submit(self.fetch_batch, batch): batch for batch in batches}
            for future in as_completed(futures):
                batch_result = future.result()
                result.merge(batch_result)
                if on_batch_done:
                    on_batch_done(futures[future], batch_result)
        finally:
            for executor in executors.values():
                executor.shutdown(wait=True)
        return result
