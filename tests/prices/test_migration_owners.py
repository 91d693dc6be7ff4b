"""prices 0003: existing manual instruments go to the users who use them (a copy, with its prices, for
each further user); provider-priced and unused manual instruments stay shared. Run as a real migration,
backwards to 0002 and forwards again, on Postgres."""

from datetime import date
from decimal import Decimal

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from portfolio.models import Portfolio, Transaction
from prices.models import Instrument, PriceHistory

BEFORE = [("prices", "0002_fxrate")]


def migrate(targets=None):
    """Migrate to `targets` (default: the latest of every app); the models as they then are."""
    executor = MigrationExecutor(connection)
    executor.migrate(targets or executor.loader.graph.leaf_nodes())
    executor.loader.build_graph()
    return executor.loader.project_state(list(executor.loader.applied_migrations)).apps


@pytest.mark.django_db(transaction=True)
def test_manual_instruments_go_to_their_users_with_their_prices():
    old = migrate(BEFORE)
    try:
        # given, before the migration: one instrument per symbol, whoever uses it
        User = old.get_model("auth", "User")
        OldInstrument, OldPrice = old.get_model("prices", "Instrument"), old.get_model("prices", "PriceHistory")
        OldPortfolio = old.get_model("portfolio", "Portfolio")
        OldTransaction = old.get_model("portfolio", "Transaction")
        ann, ben, cid = (User.objects.create(username=name) for name in ("ann", "ben", "cid"))
        house = OldInstrument.objects.create(symbol="HOUSE", provider="manual", currency="EUR")
        cash = OldInstrument.objects.create(symbol="CASH-EUR", provider="manual", currency="EUR", asset_class="cash")
        art = OldInstrument.objects.create(symbol="ART", provider="manual", currency="USD")
        aapl = OldInstrument.objects.create(symbol="AAPL", provider="yahoo", currency="USD")
        for day, close in ((date(2024, 1, 31), Decimal("1")), (date(2024, 2, 29), Decimal("1.01"))):
            OldPrice.objects.create(instrument=cash, date=day, close=close, source="manual")
        OldPrice.objects.create(instrument=house, date=date(2024, 1, 31), close=Decimal("350000"), source="manual")
        portfolios = {user.username: OldPortfolio.objects.create(owner=user, name="Main") for user in (ann, ben, cid)}

        def trade(user, instrument, quantity):
            OldTransaction.objects.create(portfolio=portfolios[user.username], instrument=instrument, type="BUY",
                                          date=date(2024, 1, 2), quantity=Decimal(quantity), price=Decimal(1),
                                          fee=Decimal(0), currency="EUR")

        trade(ben, cash, "500")  # ben traded the cash first
        trade(ann, cash, "300")
        trade(ann, house, "1")
        trade(ann, aapl, "10")
        trade(ben, aapl, "5")
        OldPortfolio.objects.filter(pk=portfolios["cid"].pk).update(benchmark=cash)  # cid only compares with it

        # when it migrates
        migrate()

        # then each manual instrument in use is its users' own: ben keeps the cash row, ann and cid get
        # copies with its prices; ann owns HOUSE; the unused ART and the provider-priced AAPL stay shared
        rows = Instrument.objects.order_by("symbol", "owner__username")
        assert [(i.symbol, i.owner.username if i.owner else None) for i in rows] == [
            ("AAPL", None), ("ART", None), ("CASH-EUR", "ann"), ("CASH-EUR", "ben"), ("CASH-EUR", "cid"),
            ("HOUSE", "ann")]
        assert Instrument.objects.get(symbol="CASH-EUR", owner__username="ben").pk == cash.pk
        assert Instrument.objects.get(pk=house.pk).owner.username == "ann"
        assert Instrument.objects.get(pk=art.pk).owner is None and Instrument.objects.get(pk=aapl.pk).owner is None
        for owner in ("ann", "ben", "cid"):
            copy = Instrument.objects.get(symbol="CASH-EUR", owner__username=owner)
            assert (copy.currency, copy.asset_class, copy.provider) == ("EUR", "cash", "manual")
            assert list(copy.prices.order_by("date").values_list("date", "close")) == [
                (date(2024, 1, 31), Decimal("1")), (date(2024, 2, 29), Decimal("1.01"))]
        # and every transaction is in its user's own instrument of the same symbol, quantities unchanged
        held = sorted((tx.portfolio.owner.username, tx.instrument.symbol,
                       tx.instrument.owner.username if tx.instrument.owner else None, tx.quantity)
                      for tx in Transaction.objects.select_related("instrument__owner", "portfolio__owner"))
        assert held == [("ann", "AAPL", None, Decimal("10")), ("ann", "CASH-EUR", "ann", Decimal("300")),
                        ("ann", "HOUSE", "ann", Decimal("1")), ("ben", "AAPL", None, Decimal("5")),
                        ("ben", "CASH-EUR", "ben", Decimal("500"))]
        assert Portfolio.objects.get(owner__username="cid").benchmark.owner.username == "cid"

        # when it is migrated back, then one instrument per symbol again, every transaction still in it
        migrate(BEFORE)
        assert sorted(OldInstrument.objects.values_list("symbol", flat=True)) == [
            "AAPL", "ART", "CASH-EUR", "HOUSE"]
        assert OldTransaction.objects.filter(instrument__symbol="CASH-EUR").count() == 2
        assert OldPortfolio.objects.get(pk=portfolios["cid"].pk).benchmark_id == cash.pk
        assert OldPrice.objects.filter(instrument__symbol="CASH-EUR").count() == 2
    finally:
        migrate()
    # and forwards again, the same three owners of a cash copy each, with its prices
    assert PriceHistory.objects.filter(instrument__symbol="CASH-EUR").count() == 6
