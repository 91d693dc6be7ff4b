"""The portfolio app's subscriptions to what the prices app announces (connected in apps.py).

New closes or rates give every portfolio using them a new data version, in the same transaction as
the write; once it commits, portfolio announces `portfolios_changed` in turn. And a portfolio saved or
deleted updates the dashboard's cached owner and version (portfolio/access.py), however it was
deleted (its own endpoint, its owner's deletion, the admin).
"""

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from portfolio.access import portfolio_access_deleted, portfolio_access_forget
from portfolio.models import Portfolio
from portfolio.services import portfolios_fx_changed, portfolios_prices_changed
from prices.signals import fx_rates_changed, prices_changed


@receiver(prices_changed, dispatch_uid="portfolio.prices_changed")
def on_prices_changed(sender, *, instrument_ids: list[int], **kwargs) -> None:
    portfolios_prices_changed(instrument_ids=instrument_ids)


@receiver(fx_rates_changed, dispatch_uid="portfolio.fx_rates_changed")
def on_fx_rates_changed(sender, *, currencies: list[str], **kwargs) -> None:
    portfolios_fx_changed(currencies=currencies)


@receiver(post_save, sender=Portfolio, dispatch_uid="portfolio.portfolio_saved")
def on_portfolio_saved(sender, instance: Portfolio, created: bool, **kwargs) -> None:
    if not created:  # its owner may have changed: read it again, now and once the save commits
        portfolio_access_forget(portfolio_ids=[instance.pk])
        transaction.on_commit(lambda: portfolio_access_forget(portfolio_ids=[instance.pk]))


@receiver(post_delete, sender=Portfolio, dispatch_uid="portfolio.portfolio_deleted")
def on_portfolio_deleted(sender, instance: Portfolio, **kwargs) -> None:
    portfolio_id = instance.pk  # the instance loses its pk once deleted
    transaction.on_commit(lambda: portfolio_access_deleted(portfolio_id=portfolio_id))
