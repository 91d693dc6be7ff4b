"""The bench's data is a user's (bench/data.py): every portfolio made with the default account portfolio_create
gives it, tracking cash, and every transaction in that account; and the naive baseline (bench/naive.py)
computes exactly what the product answers for it, cash included (bench/dashboard.py's agreement check)."""

import json
from decimal import Decimal

import pytest
from django.db import connection

from bench import data
from bench.dashboard import _test_client_getter, agreement_check
from bench.intraday import _dataset as intraday_dataset
from bench.naive import naive_dashboard_compute
from portfolio.dashboard import dashboard_data_compute
from portfolio.models import Account, Portfolio, Transaction

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the bench writes its data with Postgres' COPY"),
    # The dataset ends with VACUUM, which runs outside a transaction only.
    pytest.mark.django_db(transaction=True),
]

# Four transactions each (a buy, then a buy, a sell and a dividend: bench/data.py's cycle): both portfolios end
# holding cash.
SIZES = {"holdings": 6, "years": 2, "tx_per_holding": 4, "small_holdings": 2}


def _each_in_its_default_account(portfolio_ids: list[int]) -> None:
    """Each portfolio has one account, the default portfolio_create makes, and it holds every transaction."""
    accounts = {a.portfolio_id: a for a in Account.objects.filter(portfolio_id__in=portfolio_ids)}
    assert Account.objects.filter(portfolio_id__in=portfolio_ids).count() == len(portfolio_ids)
    for pid in portfolio_ids:
        account = accounts[pid]
        assert (account.name, account.currency, account.tracks_cash, account.platform) == ("Default", "USD", True, "")
        accounts_used = set(Transaction.objects.filter(portfolio_id=pid).values_list("account_id", flat=True))
        assert accounts_used == {account.pk}


def _naive_answer(portfolio_id: int) -> dict:
    naive = naive_dashboard_compute(portfolio=Portfolio.objects.get(pk=portfolio_id))
    return {"total_value": naive["total_value"], "total_cost": naive["total_cost"],
            "holdings_count": naive["holdings_count"], "series": naive["series"], "naive": naive}


def test_dashboard_portfolios_are_a_users_and_the_naive_view_agrees_with_the_product_cash_included():
    made = data._dashboard_generate(**SIZES)
    _each_in_its_default_account([made.portfolio_id, made.small_portfolio_id])
    assert made.transactions == SIZES["holdings"] * SIZES["tx_per_holding"]

    get = _test_client_getter(made.token)
    for pid, holdings in ((made.portfolio_id, SIZES["holdings"]), (made.small_portfolio_id, SIZES["small_holdings"])):
        product = dashboard_data_compute(portfolio=Portfolio.objects.get(pk=pid))
        naive = _naive_answer(pid)
        # Sells and dividends left cash in the account: a holding of its own on both sides, worth 1 a dollar.
        cash_rows = [h for h in naive["naive"]["holdings"] if h["symbol"] == "CASH USD"]
        product_cash = [h for h in json.loads(product["holdings"])["holdings"] if h["asset_class"] == "cash"]
        assert len(cash_rows) == 1 and cash_rows[0]["price"] == "1" and Decimal(cash_rows[0]["market_value"]) > 0
        assert [(h["symbol"], h["market_value"], h["cost_basis"]) for h in product_cash] == [
            ("CASH USD", cash_rows[0]["market_value"], cash_rows[0]["market_value"])]
        assert naive["holdings_count"] == holdings + 1 == product["initial"]["holdings_count"]
        # The total is the shares' and the cash's (each row rounded to the cent: within a cent a row).
        rows = naive["naive"]["holdings"]
        assert abs(Decimal(naive["total_value"]) - sum(Decimal(h["market_value"]) for h in rows)) < Decimal(
            "0.01") * len(rows)
        assert naive["total_value"] == product["initial"]["total_value"]
        assert naive["total_cost"] == product["initial"]["total_cost"]
        agreement = agreement_check(get, portfolio_id=pid, naive=naive)
        assert agreement["equal"] is True
        assert agreement["series_points"] == len(naive["series"]) == 366
        assert agreement["series_last"] == naive["series"][-1]
        assert agreement["series_last"]["value"] == naive["total_value"]


def test_the_agreement_check_fails_loudly_when_the_naive_view_differs():
    made = data._dashboard_generate(**SIZES)
    naive = _naive_answer(made.portfolio_id)
    get = _test_client_getter(made.token)
    middle = len(naive["series"]) // 2
    # One day of the chart wrong, not its last: the totals alone would not show it.
    one_day_off = [*naive["series"][:middle], {**naive["series"][middle], "value": "0.00"},
                   *naive["series"][middle + 1:]]
    for name, wrong, says in (("total_value", "0.00", "'total_value'"), ("total_cost", "0.00", "'total_cost'"),
                              ("holdings_count", SIZES["holdings"], "'holdings_count'"),
                              ("series", one_day_off, f"'series'.*'first_differing': {middle}"),
                              ("series", naive["series"][:-1], "'series'.*'naive': 365")):
        with pytest.raises(RuntimeError, match=f"disagree .*{says}"):
            agreement_check(get, portfolio_id=made.portfolio_id, naive={**naive, name: wrong})


def test_a_kept_dataset_of_the_layout_before_accounts_is_made_again():
    made = data.dashboard_dataset(**SIZES, reuse=False)
    assert data.dashboard_dataset(**SIZES, reuse=True).portfolio_id == made.portfolio_id  # same layout: kept
    meta = data._meta_get()
    data._meta_set({k: v for k, v in meta["params"].items() if k != "layout"}, meta["info"])
    again = data.dashboard_dataset(**SIZES, reuse=True)
    assert again.portfolio_id != made.portfolio_id
    _each_in_its_default_account([again.portfolio_id, again.small_portfolio_id])


def test_refresh_and_shared_portfolios_each_have_their_default_account_holding_their_trades():
    refresh = data.refresh_dataset(instruments=5)
    shared = data.shared_portfolios_add(instrument_ids=refresh.instrument_ids, portfolios=7, holdings_each=2,
                                        portfolios_per_user=3)
    assert (shared["portfolios"], shared["transactions"]) == (7, 14)
    ids = list(Portfolio.objects.filter(name__startswith="Shared ").values_list("pk", flat=True))
    assert len(ids) == 7
    _each_in_its_default_account([refresh.portfolio_id, *ids])


def test_intraday_portfolios_each_have_their_default_account_holding_their_trades():
    made = intraday_dataset(instruments=4, portfolios=5, holdings=2)
    assert len(made["portfolio_ids"]) == 5
    _each_in_its_default_account(made["portfolio_ids"])
