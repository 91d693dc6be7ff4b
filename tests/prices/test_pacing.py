"""Global pacing in real Redis: token bucket across processes, daily quota, circuit breaker."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django_redis import get_redis_connection

from prices.providers.base import QuotaExhaustedError
from prices.providers.pacing import (
    CircuitBreaker,
    CircuitOpenError,
    DailyQuota,
    ProviderLimits,
    RateLimitTimeout,
    TokenBucket,
    provider_limits,
)

ROOT = Path(__file__).resolve().parents[2]
LIMITS = ProviderLimits(requests_per_second=20, burst=1, daily_quota=None, max_symbols_per_request=50)

TAKER = """
import django, os, sys, time
os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings_test"
django.setup()
from prices.providers.pacing import ProviderLimits, TokenBucket
bucket = TokenBucket("paced", ProviderLimits(requests_per_second=20, burst=1, daily_quota=None,
                                              max_symbols_per_request=50))
print("ready", flush=True)
sys.stdin.readline()
for _ in range(int(sys.argv[1])):
    bucket.acquire(timeout=30)
    print(time.time(), flush=True)
"""


def test_bucket_grants_the_burst_then_makes_callers_wait():
    bucket = TokenBucket("burst", ProviderLimits(requests_per_second=2, burst=2, daily_quota=None,
                                                 max_symbols_per_request=1))
    assert bucket.try_acquire() == 0
    assert bucket.try_acquire() == 0
    wait = bucket.try_acquire()
    assert 0.3 < wait <= 0.5  # one token comes back every 0.5 s


def test_acquire_gives_up_past_its_deadline():
    bucket = TokenBucket("slow", ProviderLimits(requests_per_second=0.1, burst=1, daily_quota=None,
                                                max_symbols_per_request=1))
    bucket.acquire(timeout=1)
    started = time.monotonic()
    with pytest.raises(RateLimitTimeout):
        bucket.acquire(timeout=0.5)
    assert time.monotonic() - started < 0.5  # it did not sleep a wait it knew was too long


def test_the_rate_holds_across_two_processes():
    # given two processes sharing one 20/s bucket, each taking 10 tokens at once
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    takers = [
        subprocess.Popen([sys.executable, "-c", TAKER, "10"], cwd=ROOT, env=env, text=True,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        for _ in range(2)
    ]
    for taker in takers:
        assert taker.stdout.readline().strip() == "ready"
    for taker in takers:
        taker.stdin.write("go\n")
        taker.stdin.flush()
    grants = sorted(float(line) for taker in takers for line in taker.communicate(timeout=60)[0].split())
    assert len(grants) == 20
    # then the 20 grants span at least 19 intervals of 1/20 s: no token was handed out twice
    assert grants[-1] - grants[0] >= 19 / 20 - 0.05
    # and no one-second window held more than rate + burst grants
    assert max(sum(1 for g in grants if start <= g < start + 1) for start in grants) <= 21


def test_daily_quota_is_never_exceeded():
    quota = DailyQuota("tiny", 25)
    left = [quota.consume() for _ in range(25)]
    assert left[0] == 24 and left[-1] == 0
    for _ in range(3):
        with pytest.raises(QuotaExhaustedError):
            quota.consume()
    assert quota.used() == 25


def test_a_provider_saying_the_quota_is_spent_is_believed():
    quota = DailyQuota("stooq-like", 100)
    quota.consume()
    quota.exhaust()
    with pytest.raises(QuotaExhaustedError):
        quota.consume()


def test_quota_keys_expire_so_tomorrow_starts_fresh():
    quota = DailyQuota("expiring", 5)
    quota.consume()
    client = get_redis_connection("default")
    (key,) = client.keys("folio:provider:expiring:quota:*")
    assert 86400 < client.ttl(key) <= 172800


def test_circuit_opens_after_repeated_failures_and_lets_one_probe_through():
    breaker = CircuitBreaker("flaky", threshold=3, cooldown=1)
    for _ in range(2):
        breaker.record_failure()
    breaker.allow()  # still closed after 2 of 3
    breaker.record_failure()
    assert breaker.state() == "open"
    with pytest.raises(CircuitOpenError):
        breaker.allow()
    time.sleep(1.05)
    assert breaker.state() == "half-open"
    breaker.allow()  # the probe
    with pytest.raises(CircuitOpenError):
        breaker.allow()  # everyone else waits for the probe's outcome
    breaker.record_success()
    assert breaker.state() == "closed"
    breaker.allow()


def test_a_failed_probe_reopens_the_circuit():
    breaker = CircuitBreaker("dead", threshold=1, cooldown=1)
    breaker.record_failure()
    time.sleep(1.05)
    breaker.allow()
    breaker.record_failure()
    assert breaker.state() == "open"


def test_success_resets_the_failure_count():
    breaker = CircuitBreaker("recovering", threshold=2, cooldown=60)
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    assert breaker.state() == "closed"


def test_limits_come_from_the_client_unless_settings_override(settings):
    settings.PROVIDER_LIMITS = {"yahoo": {"requests_per_second": 10.0, "daily_quota": None, "batch_size": 20}}
    limits = provider_limits("yahoo", requests_per_second=2, daily_quota=None, max_symbols_per_request=50)
    assert limits == ProviderLimits(requests_per_second=10.0, burst=10, daily_quota=None, max_symbols_per_request=20)
    assert provider_limits("alphavantage", requests_per_second=0.2, daily_quota=25, max_symbols_per_request=1) == \
        ProviderLimits(requests_per_second=0.2, burst=1, daily_quota=25, max_symbols_per_request=1)


def test_per_symbol_credits_are_charged_by_the_bucket_and_the_quota():
    limits = provider_limits("creditcounter", requests_per_second=8 / 60, daily_quota=20, max_symbols_per_request=8,
                             credits_per_symbol=True)
    assert (limits.burst, limits.cost(8), limits.cost(3)) == (8, 8, 3)
    bucket = TokenBucket("creditcounter", limits)
    assert bucket.try_acquire(8) == 0  # a full batch fits the burst
    assert 7.0 < bucket.try_acquire(1) <= 7.5  # then the next credit comes in 60/8 s
    quota = DailyQuota("creditcounter", 20)
    assert quota.consume(8) == 12
    assert quota.consume(8) == 4
    with pytest.raises(QuotaExhaustedError):
        quota.consume(8)
    assert quota.consume(4) == 0


def test_credits_per_minute_are_never_exceeded_in_any_60_seconds():
    # given Twelve Data's free tier, 8 credits a minute charged per symbol, batches of 8
    limits = provider_limits("twelvedata", requests_per_second=8 / 60, daily_quota=None, max_symbols_per_request=8,
                             credits_per_symbol=True)
    window = TokenBucket.of("twelvedata-window", limits)
    # a whole batch at once
    assert window.try_acquire(8) == 0
    # then 2 more credits wait for the first batch to be a minute old (a bucket refilling 8 a minute let them
    # through 15 s later: 10 in the provider's minute, a 429)
    time.sleep(0.2)
    assert 59 < window.try_acquire(2) <= 60
    assert 59 < window.try_acquire(1) <= 60
