# Manual instruments belong to their owner; one shared instrument per symbol.
#
# Until now every symbol had one instrument for all users, so a user's manual instrument (provider
# `manual`, cash included) was everyone's. The data step gives each manual instrument to the users
# who use it (a transaction in it, or it is their portfolio's benchmark):
#   - used by nobody: stays shared (owner null), a manual instrument staff keep prices for;
#   - used by one user: that user owns it, with its prices;
#   - used by several users: the user who traded it first keeps the row; every other user gets a
#     copy of it (same symbol, name, class, currency, …) with a copy of all its stored prices, and
#     their transactions and benchmarks move to their copy. Nobody's holdings or values change;
#     from then on each user's prices are their own.
# Provider-priced instruments stay shared and untouched. Transactions keep their instruments (or
# an identical copy of it, above).
#
# Backwards, each owned instrument becomes shared again, or, when a shared one of its symbol
# already exists, is merged into it: transactions and benchmarks move to the shared row, and the
# copy and its prices are deleted (the shared row's prices win).

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

PRICE_COPY_BATCH = 2000


def _users_in_order(apps, instrument) -> list[int]:
    """Who uses the instrument: traders by their first transaction in it, then benchmark-only users."""
    Transaction = apps.get_model("portfolio", "Transaction")
    Portfolio = apps.get_model("portfolio", "Portfolio")
    first_trade = {}
    for owner_id, pk in (Transaction.objects.filter(instrument=instrument)
                         .order_by("pk").values_list("portfolio__owner_id", "pk")):
        first_trade.setdefault(owner_id, pk)
    users = sorted(first_trade, key=first_trade.get)
    benchmark_only = sorted(set(Portfolio.objects.filter(benchmark=instrument).values_list("owner_id", flat=True))
                            - set(users))
    return users + benchmark_only


def manual_instruments_to_owners(apps, schema_editor):
    Instrument = apps.get_model("prices", "Instrument")
    PriceHistory = apps.get_model("prices", "PriceHistory")
    Transaction = apps.get_model("portfolio", "Transaction")
    Portfolio = apps.get_model("portfolio", "Portfolio")
    if schema_editor.connection.vendor == "postgresql":
        # Check foreign keys row by row: deferred checks left pending would forbid the ALTER TABLEs
        # that add the constraints after this step, in the same transaction.
        schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    for instrument in list(Instrument.objects.filter(provider="manual", owner__isnull=True).order_by("pk")):
        users = _users_in_order(apps, instrument)
        if not users:
            continue
        first, *others = users
        for user_id in others:
            copy = Instrument.objects.create(
                symbol=instrument.symbol, name=instrument.name, asset_class=instrument.asset_class,
                currency=instrument.currency, exchange_mic=instrument.exchange_mic, provider=instrument.provider,
                provider_symbol=instrument.provider_symbol, active=instrument.active,
                verification_status=instrument.verification_status, owner_id=user_id,
            )
            Instrument.objects.filter(pk=copy.pk).update(created_at=instrument.created_at)
            rows = PriceHistory.objects.filter(instrument=instrument).order_by("date").iterator(
                chunk_size=PRICE_COPY_BATCH)
            batch = []
            for row in rows:
                batch.append(PriceHistory(instrument=copy, date=row.date, close=row.close,
                                          adjusted_close=row.adjusted_close, source=row.source))
                if len(batch) >= PRICE_COPY_BATCH:
                    PriceHistory.objects.bulk_create(batch)
                    batch = []
            PriceHistory.objects.bulk_create(batch)
            Transaction.objects.filter(instrument=instrument, portfolio__owner_id=user_id).update(instrument=copy)
            Portfolio.objects.filter(benchmark=instrument, owner_id=user_id).update(benchmark=copy)
        Instrument.objects.filter(pk=instrument.pk).update(owner_id=first)


def owned_instruments_to_shared(apps, schema_editor):
    Instrument = apps.get_model("prices", "Instrument")
    Transaction = apps.get_model("portfolio", "Transaction")
    Portfolio = apps.get_model("portfolio", "Portfolio")
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    for instrument in list(Instrument.objects.filter(owner__isnull=False).order_by("pk")):
        shared = Instrument.objects.filter(symbol=instrument.symbol, owner__isnull=True).first()
        if shared is None:
            Instrument.objects.filter(pk=instrument.pk).update(owner=None)
            continue
        Transaction.objects.filter(instrument=instrument).update(instrument=shared)
        Portfolio.objects.filter(benchmark=instrument).update(benchmark=shared)
        Instrument.objects.filter(pk=instrument.pk).delete()


class Migration(migrations.Migration):

    dependencies = [
        ('prices', '0002_fxrate'),
        # The data step reads who trades each manual instrument.
        ('portfolio', '0003_portfolio_data_version'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='instrument',
            name='owner',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='instruments', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AlterField(
            model_name='instrument',
            name='symbol',
            field=models.CharField(db_index=True, max_length=32),
        ),
        migrations.RunPython(manual_instruments_to_owners, owned_instruments_to_shared),
        migrations.AddConstraint(
            model_name='instrument',
            constraint=models.UniqueConstraint(condition=models.Q(('owner__isnull', True)), fields=('symbol',), name='instrument_shared_symbol_uniq'),
        ),
        migrations.AddConstraint(
            model_name='instrument',
            constraint=models.UniqueConstraint(condition=models.Q(('owner__isnull', False)), fields=('owner', 'symbol'), name='instrument_owner_symbol_uniq'),
        ),
        migrations.AddConstraint(
            model_name='instrument',
            constraint=models.CheckConstraint(condition=models.Q(('owner__isnull', True), ('provider', 'manual'), _connector='OR'), name='instrument_owned_is_manual'),
        ),
    ]
