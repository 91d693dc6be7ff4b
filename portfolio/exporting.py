"""Export: a portfolio's transactions as CSV in the generic import format, and all of a user's data
as JSON — so a user can leave, or move, and import it back with identical holdings."""

from __future__ import annotations

import csv
import io

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q
from django.utils import timezone

from portfolio.holdings import plain_format
from portfolio.importing import OPTIONAL_COLUMNS, REQUIRED_COLUMNS
from portfolio.models import Portfolio, Transaction, TransactionType, WatchlistItem
from prices.models import Instrument, PriceHistory, Provider

COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
# A spreadsheet runs a cell starting with one of these as a formula (CSV injection): such text
# cells get a leading apostrophe, which spreadsheets show as text and our import strips.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def transaction_rows(*, portfolio: Portfolio) -> list[dict[str, str]]:
    """The portfolio's transactions, oldest first, as rows of the generic import format."""
    transactions = (
        Transaction.objects.filter(portfolio=portfolio).select_related("instrument", "account").order_by("date", "id")
    )
    return [
        {
            "date": tx.date.isoformat(), "type": tx.type, "symbol": tx.instrument.symbol if tx.instrument else "",
            "quantity": plain_format(tx.quantity), "price": plain_format(tx.price), "fee": plain_format(tx.fee),
            "currency": tx.currency, "note": tx.note, "provider": tx.instrument.provider if tx.instrument else "",
            "asset_class": tx.instrument.asset_class if tx.instrument else "",
            "gift": "yes" if tx.price == 0 and tx.type in (TransactionType.BUY, TransactionType.SELL) else "",
            "account": tx.account.name if tx.account else "",
            "account_tracks_cash": ("yes" if tx.account.tracks_cash else "no") if tx.account else "",
        }
        for tx in transactions
    ]


def _safe_cell(value: str) -> str:
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def transactions_csv(*, portfolio: Portfolio) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in transaction_rows(portfolio=portfolio):
        # Every cell a user typed: a note, an account's name (numbers, dates and codes are Folio's own).
        writer.writerow({**row, "note": _safe_cell(row["note"]), "account": _safe_cell(row["account"])})
    return out.getvalue()


def user_data_export(*, user: AbstractBaseUser) -> dict:
    """Everything the user entered: portfolios (their benchmark, accounts and transactions), the watchlist, the
    instruments they use or made, and the prices of the manual instruments among them (nobody else can give those
    back)."""
    portfolios = list(Portfolio.objects.filter(owner=user).select_related("benchmark").order_by("name", "id"))
    exported = []
    for portfolio in portfolios:
        rows = transaction_rows(portfolio=portfolio)
        accounts = [{"name": a.name, "platform": a.platform, "currency": a.currency, "tracks_cash": a.tracks_cash}
                    for a in portfolio.accounts.order_by("id")]
        exported.append({"name": portfolio.name, "base_currency": portfolio.base_currency,
                         "benchmark": portfolio.benchmark.symbol if portfolio.benchmark else None,
                         "accounts": accounts, "transactions": rows})
    watched = list(WatchlistItem.objects.filter(user=user).select_related("instrument"))
    # The instruments of the user's own transactions, watchlist and benchmarks, and their own manual ones (a symbol
    # can also name other users' manual instruments: never theirs, nor their prices).
    instruments = list(
        Instrument.objects.filter(Q(transactions__portfolio__owner=user) | Q(watchers__user=user)
                                  | Q(benchmark_of__owner=user) | Q(owner=user))
        .distinct().order_by("symbol", "owner_id")
    )
    manual = [i for i in instruments if i.provider == Provider.MANUAL]
    prices = PriceHistory.objects.filter(instrument__in=manual).order_by("instrument__symbol", "date")
    return {
        "format": "folio-export",
        "version": 1,
        "exported_at": timezone.now().isoformat(),
        "user": {"username": user.get_username()},
        "portfolios": exported,
        "watchlist": [{"symbol": item.instrument.symbol, "provider": item.instrument.provider} for item in watched],
        "instruments": [
            {"symbol": i.symbol, "name": i.name, "asset_class": i.asset_class, "currency": i.currency,
             "exchange_mic": i.exchange_mic, "provider": i.provider, "provider_symbol": i.provider_symbol}
            for i in instruments
        ],
        "manual_prices": [
            {"symbol": p.instrument.symbol, "date": p.date.isoformat(), "close": plain_format(p.close)}
            for p in prices.select_related("instrument")
        ],
    }
