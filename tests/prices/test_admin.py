"""Staff's edits of closes, rates and instruments in the admin are announced as the services' writes are: the
portfolios valued with them show the edited figures at once, not the cached ones from before."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from charts.services import chart_data_generate
from portfolio.models import Portfolio
from prices.models import FxRate, PriceHistory
from tests.charts.factories import closes_create
from tests.factories import InstrumentFactory, PortfolioFactory, PriceFactory, TransactionFactory
from tests.portfolio.test_admin import form_of, total, version

pytestmark = pytest.mark.django_db

YESTERDAY = date.today() - timedelta(days=1)


@pytest.fixture
def close(held):
    """The close `held`'s holding is valued at (10 KO at 60)."""
    return PriceHistory.objects.get(instrument=held.instrument)


def test_a_close_corrected_in_the_admin_shows_at_once(staff, api, portfolio, close):
    assert total(api, portfolio) == "600.00"  # cached now
    response = staff.post(f"/admin/prices/pricehistory/{close.pk}/change/", {**form_of(close), "close": "61"})
    assert response.status_code == 302, response.content[:2000]
    assert total(api, portfolio) == "610.00"


def test_closes_deleted_in_the_admin_one_or_several_show_at_once(staff, api, portfolio, close):
    older = PriceFactory(instrument=close.instrument, date=YESTERDAY - timedelta(days=1), close=Decimal("50"))
    PriceFactory(instrument=close.instrument, date=YESTERDAY - timedelta(days=2), close=Decimal("40"))
    assert total(api, portfolio) == "600.00"
    response = staff.post(f"/admin/prices/pricehistory/{close.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302 and total(api, portfolio) == "500.00"
    response = staff.post("/admin/prices/pricehistory/", {"action": "delete_selected", "post": "yes",
                                                          "_selected_action": [older.pk]})
    assert response.status_code == 302 and not PriceHistory.objects.filter(pk=older.pk).exists()
    assert total(api, portfolio) == "400.00"  # the oldest close, 40


def test_a_rate_edited_or_deleted_in_the_admin_changes_the_portfolios_converting_it(staff, user):
    euros = PortfolioFactory(owner=user, name="Euros", base_currency="EUR")
    TransactionFactory(portfolio=euros, instrument=InstrumentFactory(symbol="KO"), currency="USD")
    rate = FxRate.objects.create(base="EUR", quote="USD", date=YESTERDAY, rate=Decimal("1.1"), source="ecb")
    before = version(euros)
    response = staff.post(f"/admin/prices/fxrate/{rate.pk}/change/", {**form_of(rate), "rate": "1.2"})
    assert response.status_code == 302, response.content[:2000]
    assert version(euros) == before + 1
    response = staff.post("/admin/prices/fxrate/", {"action": "delete_selected", "post": "yes",
                                                    "_selected_action": [rate.pk]})
    assert response.status_code == 302 and not FxRate.objects.exists()
    assert version(euros) == before + 2


def test_an_instrument_edited_in_the_admin_changes_its_holders(staff, portfolio, close):
    instrument = close.instrument
    before = Portfolio.objects.get(pk=portfolio.pk)
    form = {**form_of(instrument), "currency": "EUR", "profile-TOTAL_FORMS": "0", "profile-INITIAL_FORMS": "0",
            "profile-MIN_NUM_FORMS": "0", "profile-MAX_NUM_FORMS": "1"}
    response = staff.post(f"/admin/prices/instrument/{instrument.pk}/change/", form)
    assert response.status_code == 302, response.content[:2000]
    after = Portfolio.objects.get(pk=portfolio.pk)
    # Any day's value may differ (the closes are in the new currency): the history's version too.
    assert (after.data_version, after.history_version) == (before.data_version + 1, before.history_version + 1)


def test_a_benchmark_deleted_in_the_admin_no_longer_shows_on_the_chart(staff, api, portfolio, held):
    # given a portfolio comparing itself with BENCH, its chart made with the comparison
    today = timezone.localdate()
    bench = InstrumentFactory(symbol="BENCH")
    closes_create(instrument=bench, closes={today - timedelta(days=n): str(100 + n) for n in range(1, 5)})
    portfolio.benchmark = bench
    portfolio.save()
    chart_data_generate(portfolio_id=portfolio.pk)
    assert api.get(f"/api/dashboard-chart-data/{portfolio.pk}/").json()["benchmark"]["symbol"] == "BENCH"

    # when staff delete BENCH (the portfolio's benchmark is set to none)
    response = staff.post(f"/admin/prices/instrument/{bench.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302, response.content[:2000]
    assert api.get(f"/api/portfolios/{portfolio.pk}/").json()["benchmark"] is None

    # then the chart served no longer compares the portfolio with it (it is outdated, or made again without it)
    chart = api.get(f"/api/dashboard-chart-data/{portfolio.pk}/").json()
    assert chart["benchmark"] is None or chart["outdated"] is True, (chart["benchmark"]["symbol"], chart["outdated"])
