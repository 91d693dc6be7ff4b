"""Market-data settings are checked at start: what no provider can honour stops the process in one line;
what the provider's documented maximum allows (a paid plan's batch) is used as given."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from prices.providers.gateway import ProviderGate
from prices.settings_check import market_data_settings_problems

ROOT = Path(__file__).resolve().parents[2]


def manage_check(**env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.endswith(("_BATCH_SIZE", "_PROVIDER"))}
    return subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env={**environment, "DJANGO_DEBUG": "1", **env})


def test_a_batch_larger_than_the_provider_takes_stops_the_start_in_one_line():
    run = manage_check(TWELVEDATA_BATCH_SIZE="500")
    assert run.returncode != 0
    assert run.stderr.strip().splitlines()[-1] == (
        "django.core.exceptions.ImproperlyConfigured: TWELVEDATA_BATCH_SIZE=500 is outside what twelvedata "
        "takes in one request (1 to 120 symbols, see docs/providers.md).")


def test_a_paid_plan_batch_within_the_documented_maximum_starts_and_is_used(settings):
    assert manage_check(TWELVEDATA_BATCH_SIZE="50").returncode == 0
    settings.PROVIDER_LIMITS = {"twelvedata": {"requests_per_second": None, "daily_quota": None, "batch_size": 50}}
    assert ProviderGate.limits_for("twelvedata").max_symbols_per_request == 50


@pytest.mark.parametrize(("limits", "problem"), [
    ({"yahoo": {"batch_size": 51}}, "YAHOO_BATCH_SIZE=51 is outside what yahoo takes in one request (1 to 50"),
    ({"alphavantage": {"batch_size": 2}}, "ALPHAVANTAGE_BATCH_SIZE=2 is outside"),
    ({"stooq": {"batch_size": 0}}, "STOOQ_BATCH_SIZE=0 is outside"),
    ({"coingecko": {"requests_per_second": 0.0}}, "COINGECKO_REQUESTS_PER_SECOND=0 must be more than 0."),
    ({"twelvedata": {"daily_quota": 0}}, "TWELVEDATA_DAILY_QUOTA=0 must be at least 1"),
])
def test_impossible_limits_are_named(settings, limits, problem):
    settings.PROVIDER_LIMITS = limits
    problems = market_data_settings_problems()
    assert len(problems) == 1 and problems[0].startswith(problem)


def test_an_unknown_provider_name_is_named(settings):
    settings.PRICE_PROVIDER = "yahooo"
    assert market_data_settings_problems()[0].startswith("PRICE_PROVIDER=yahooo is not a provider; use one of ")


def test_the_defaults_have_no_problem():
    assert market_data_settings_problems() == []
