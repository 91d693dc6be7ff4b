"""The portfolio app's subscriptions (connected in apps.py): to what the prices app announces, and to its
own portfolios being saved or deleted.

New closes or rates give every portfolio using them a new data version, in the same transaction as
the write; once it commits, portfolio announces `portfolios_changed` in turn.

A portfolio created, deleted (however: a service, the admin, a user's deletion cascading) or loaded from a
fixture changes what the warm reads' copy of its owner and versions says (portfolio/access_copy.py).
"""

from datetime import date

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from portfolio.access_copy import copies_write, copy_delete, copy_hold
from portfolio.kept import replays_lock_since
from portfolio.models import Portfolio
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


@receiver(post_save, sender=Portfolio, dispatch_uid="portfolio.portfolio_saved")
def on_portfolio_saved(sender, *, instance: Portfolio, created: bool, raw: bool = False, **kwargs) -> None:
    if raw:  # a fixture over the row (any owner, any versions): every read asks Postgres for a while
        copy_hold(instance.pk)
    elif created:  # its numbers replace the copy that said it did not exist
        copies_write([(instance.pk, (instance.owner_id, instance.data_version, instance.history_version))])


@receiver(post_delete, sender=Portfolio, dispatch_uid="portfolio.portfolio_deleted")
def on_portfolio_deleted(sender, *, instance: Portfolio, **kwargs) -> None:
    copy_delete(instance.pk, owner_id=instance.owner_id)
