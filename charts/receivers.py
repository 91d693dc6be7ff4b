"""The charts app's subscriptions to what the portfolio app announces (connected in apps.py)."""

from django.dispatch import receiver

from charts.cache import chart_data_delete
from charts.services import chart_regeneration_request
from core.soft import soft_fail
from portfolio.signals import portfolio_deleted, portfolios_changed


@receiver(portfolios_changed, dispatch_uid="charts.portfolios_changed")
def on_portfolios_changed(sender, *, portfolio_ids: list[int], history: bool = True, **kwargs) -> None:
    # Today's closes alone (an intraday refresh): the cached history stays current, and each chart's
    # live point is computed from the current valuation when it is read (charts.live). The write decided
    # it as it bumped the versions: a commit landing after midnight must not decide otherwise.
    if history:
        chart_regeneration_request(portfolio_ids=portfolio_ids)


@receiver(portfolio_deleted, dispatch_uid="charts.portfolio_deleted")
def on_portfolio_deleted(sender, *, portfolio_id: int, **kwargs) -> None:
    with soft_fail(f"chart of deleted portfolio {portfolio_id} left to expire (CHART_TTL_SECONDS)"):  # Redis down
        chart_data_delete(portfolio_id=portfolio_id)
