"""The portfolio app's subscriptions to what the prices app announces (connected in apps.py).

New closes or rates give every portfolio using them a new data version, in the same transaction as
the write; once it commits, portfolio announces `portfolios_changed` in turn.
"""

from datetime import date

from django.dispatch import receiver

from portfolio.kept import replays_lock_since
from portfolio.services import portfolios_fx_changed, portfolios_prices_changed, portfolios_profiles_changed
from prices.signals import fx_rates_changed, fx_rates_writing, prices_changed, profiles_changed


@receiver(prices_changed, dispatch_uid="portfolio.prices_changed")
def on_prices_changed(sender, *, instrument_ids: list[int], since: date | None = None, **kwargs) -> None:
    portfolios_prices_changed(instrument_ids=instrument_ids, since=since)


@receiver(profiles_changed, dispatch_uid="portfolio.profiles_changed")
def on_profiles_changed(sender, *, instrument_ids: list[int], **kwargs) -> None:
    portfolios_profiles_changed(instrument_ids=instrument_ids)


@receiver(fx_rates_writing, dispatch_uid="portfolio.fx_rates_writing")
def on_fx_rates_writing(sender, *, since: date, **kwargs) -> None:
    replays_lock_since(since=since)


@receiver(fx_rates_changed, dispatch_uid="portfolio.fx_rates_changed")
def on_fx_rates_changed(sender, *, currencies: list[str], **kwargs) -> None:
    portfolios_fx_changed(currencies=currencies)
