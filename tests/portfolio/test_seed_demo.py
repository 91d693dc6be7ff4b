"""`manage.py seed_demo`: a believable demo, created once, safe to run again."""

from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from portfolio.exposure import portfolio_exposure_get
from portfolio.income import portfolio_income_get
from portfolio.models import Portfolio, Transaction
from portfolio.selectors import portfolio_valuation_get
from prices.models import Instrument, PriceHistory

pytestmark = pytest.mark.django_db


def test_seed_demo_is_idempotent_and_prices_the_portfolio(settings, demo):
    # given the demo as a first seed on an empty database left it (the session's real seed, copied back:
    # tests/demo_snapshot.py; the command's own first run, progress bar and all, is bin/run's set-up in
    # tests/test_first_run.py)
    counts = (Portfolio.objects.count(), Transaction.objects.count(), Instrument.objects.count(),
              PriceHistory.objects.count())
    assert counts[0] == 1
    assert Instrument.objects.count() == 26
    assert counts[1] == demo.transactions_created > 300
    assert demo.prices_written > 0

    # when `manage.py seed_demo` runs again, it creates nothing more
    out = StringIO()
    call_command("seed_demo", stdout=out, stderr=StringIO())
    assert (f"Demo ready: user 'demo' / password 'folio-demo', portfolio #{demo.portfolio_id}; "
            "0 transactions created") in out.getvalue()
    assert (Portfolio.objects.count(), Transaction.objects.count(), Instrument.objects.count(),
            PriceHistory.objects.count()) == counts

    portfolio = Portfolio.objects.get()
    assert portfolio.owner.check_password(settings.DEMO_PASSWORD)
    assert set(Transaction.objects.values_list("type", flat=True)) == {"BUY", "SELL", "DIVIDEND", "DEPOSIT",
                                                                       "INTEREST"}
    valuation = portfolio_valuation_get(portfolio=portfolio)
    # two accounts, each holding cash: the brokerage its deposit's rest, sells, dividends and interest
    accounts = dict(portfolio.accounts.values_list("pk", "name"))
    assert list(accounts.values()) == ["Brokerage", "Crypto wallet"]
    assert set(Transaction.objects.filter(instrument__asset_class="crypto").values_list("account__name", flat=True)) \
        == {"Crypto wallet"}
    cash = {accounts[account]: amount for (account, code), amount in valuation.cash.items() if code == "USD"}
    assert cash["Brokerage"] > 0
    assert [h.instrument.symbol for h in valuation.holdings if h.instrument.asset_class == "cash"] == ["CASH USD"]
    assert len(valuation.holdings) >= 20
    assert valuation.unpriced_count == 0
    assert valuation.total_value > 0
    # Prices are current: the newest close is within a long weekend of today.
    newest = max(h.price_as_of for h in valuation.holdings)
    assert timezone.localdate() - newest <= timedelta(days=4)


def test_the_demo_shows_income_and_sector_and_country_allocation(demo):
    # the demo as seed_demo leaves it (seeded once per session: tests/demo_snapshot.py)
    portfolio = Portfolio.objects.get()
    income = portfolio_income_get(portfolio=portfolio)
    assert Decimal(income["ttm"]["gross"]) > 0 and len(income["holdings"]) >= 15
    exposure = portfolio_exposure_get(portfolio=portfolio)
    assert exposure["profiles_pending"] == []  # profiles are there at once, offline
    sectors = {row["name"] for row in exposure["by_sector"]}
    assert {"Technology", "ETF", "Crypto"} <= sectors and "unknown" not in sectors
    assert exposure["by_country"][0]["name"] == "United States"
