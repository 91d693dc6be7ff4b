"""The value of each account: its cash by currency and the holdings it keeps, at the dashboard's valuation
(the same prices and rates, so the accounts add up to the portfolio's total value, to the cent as shown)."""

from collections.abc import Sequence
from decimal import Decimal

from portfolio.holdings import money_format, money_parts_format, money_sum
from portfolio.models import Account
from portfolio.selectors import AccountRow, Valuation, portfolio_accounts_valuation_get
from prices.models import cash_symbol


def accounts_value_rows(*, accounts: Sequence[Account | AccountRow], valuation: Valuation) -> list[dict]:
    """One row per account of `accounts` (the portfolio's, oldest — the default — first): cash by currency (as
    held and in the base currency), holdings value, total. An amount without a price or rate is left out, as
    from the total value."""
    if not accounts:
        return []
    default = accounts[0].pk
    by_instrument = {h.instrument.pk: h for h in valuation.holdings}
    cash_by_currency = {h.instrument.currency: h for h in valuation.holdings
                        if h.instrument.symbol == cash_symbol(h.instrument.currency)}
    cash: dict[int, list[tuple[str, Decimal, Decimal | None]]] = {}
    for (account_id, currency), amount in sorted(valuation.cash.items(), key=lambda item: item[0][1]):
        if amount:
            holding = cash_by_currency.get(currency)
            rate = holding.fx_rate if holding is not None else None
            value = None if rate is None else amount * rate
            cash.setdefault(account_id or default, []).append((currency, amount, value))
    holdings: dict[int, list[Decimal]] = {}
    for account_id, quantities in valuation.account_quantities.items():
        for instrument_id, quantity in quantities.items():
            holding = by_instrument.get(instrument_id)
            if quantity and holding is not None and holding.market_value is not None:
                holdings.setdefault(account_id or default, []).append(quantity * holding.price * holding.fx_rate)
    cash_values = [money_sum(value for _, _, value in cash.get(account.pk, ()) if value is not None)
                   for account in accounts]
    holdings_values = [money_sum(holdings.get(account.pk, ())) for account in accounts]
    # Rounded to cents so that they add up, as shown: the accounts to the portfolio's total value (their exact sum),
    # each account's cash and holdings to its total, and its cash by currency to its cash value.
    totals = money_parts_format([c + h for c, h in zip(cash_values, holdings_values, strict=True)])
    rows = []
    for account, cash_value, holdings_value, total in zip(accounts, cash_values, holdings_values, totals,
                                                          strict=True):
        cash_text, holdings_text = money_parts_format([cash_value, holdings_value], whole=Decimal(total))
        lines = cash.get(account.pk, [])
        valued = iter(money_parts_format([value for _, _, value in lines if value is not None],
                                         whole=Decimal(cash_text)))
        rows.append({
            "id": account.pk, "name": account.name, "platform": account.platform, "currency": account.currency,
            "tracks_cash": account.tracks_cash,
            "cash": [{"currency": code, "amount": money_format(amount),
                      "value": None if value is None else next(valued)}
                     for code, amount, value in lines],
            "cash_value": cash_text,
            "holdings_value": holdings_text,
            "total_value": total,
        })
    return rows


def accounts_with_balances_get(*, portfolio_id: int) -> list[dict]:
    """Each account of the portfolio (oldest first) with its cash balance by currency and its value, as the
    dashboard shows them (accounts_value_rows)."""
    _, accounts, valuation = portfolio_accounts_valuation_get(portfolio_id=portfolio_id)
    return accounts_value_rows(accounts=accounts, valuation=valuation)
