"""Broker export layouts, mapped onto the generic import format (portfolio/importing.py).

Each layout is recognised by its header row and turns each of its rows into a generic row
(date, type, symbol, quantity, price, fee, currency, note): trades, dividends, fees, and the cash
moving in and out of the broker account (deposits, withdrawals, interest: one "unit" of the amount) —
or into a skip with the reason, for rows Folio has no transaction for (currency conversions, card
spending, the totals line). The generic validation then runs on the result, so a broker file gets the
same checks and error messages, by its own row numbers.

- Trading 212 "Export history" CSV: Action, Time, ISIN, Ticker, Name, No. of shares, Price / share,
  Currency (Price / share), Exchange rate, …, Withholding tax, Charge amount, Currency conversion fee…
- Charles Schwab "Transaction History" CSV: Date, Action, Symbol, Description, Quantity, Price,
  Fees & Comm, Amount — US dates ("01/02/2024", or "01/02/2024 as of 12/29/2023"), "$1,234.56".
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation


@dataclass(frozen=True)
class Skip:
    reason: str


Row = dict[str, str]
Mapped = Row | Skip


@dataclass(frozen=True)
class BrokerFormat:
    name: str
    label: str
    required: tuple[str, ...]  # lower-cased header names that identify the layout
    map_row: Callable[[Row], Mapped]
    # Rows listed newest first: imported in reverse, so that one day's trades are entered in the order they
    # happened (a day trade's buy before its sell: transactions of one date replay in entry order).
    newest_first: bool = False


class DecimalCommaError(ValueError):
    """A number written with a decimal comma (2,5: a broker's file re-saved by a European spreadsheet): never read
    as a thousands separator (25); the import names its row."""


# Thousands separated by commas (1,234.56), the only commas a number may hold, in a broker's file as in the generic
# one (portfolio/importing.py): any other is a decimal comma (2,5; 0,125), which must never be read as 25 or 125.
THOUSANDS = re.compile(r"[+-]?[1-9]\d{0,2}(,\d{3})+(\.\d*)?")


def _number(text: str) -> Decimal | None:
    """'$1,234.56' / '-$5.00' / '(5.00)' / '' → Decimal or None; DecimalCommaError for a decimal comma."""
    cleaned = (text or "").strip().replace("$", "").replace(" ", "")
    if "," in cleaned:
        if not THOUSANDS.fullmatch(cleaned.strip("()")):
            raise DecimalCommaError(f"'{text.strip()}' is not a number: write decimals with a dot (1.5, not 1,5).")
        cleaned = cleaned.replace(",", "")
    negative = cleaned.startswith("(") and cleaned.endswith(")")
    cleaned = cleaned.strip("()")
    if cleaned in ("", "-", "--"):
        return None
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        return None
    return -value if negative else value


def _text(value: Decimal | None) -> str:
    return "" if value is None else format(value.normalize(), "f")


def _cash_row(*, day: str, kind: str, amount: Decimal | None, currency: str, note: str) -> Mapped:
    """A deposit, withdrawal or interest as the generic format has it: no symbol, the amount as the price
    of one unit (a missing amount is left for the generic check to name; a zero one moves nothing)."""
    if amount == 0:
        return Skip(f"{kind.lower()} of 0")
    return {"date": day, "type": kind, "symbol": "", "quantity": "1",
            "price": _text(abs(amount) if amount is not None else None), "fee": "0", "currency": currency,
            "note": note[:500]}


# --- Trading 212 -----------------------------------------------------------------------------------

T212_CASH_ACTIONS = {"deposit": "DEPOSIT", "withdrawal": "WITHDRAWAL", "interest on cash": "INTEREST",
                     "lending interest": "INTEREST"}
T212_FEE_COLUMNS = ("charge amount", "currency conversion fee", "stamp duty reserve tax", "transaction fee",
                    "finra fee", "french transaction tax", "stamp duty")


def _t212_map(raw: Row) -> Mapped:
    action = raw.get("action", "").strip().lower()
    if action in T212_CASH_ACTIONS:  # the account's own currency, in Total
        return _cash_row(day=raw.get("time", "").strip()[:10], kind=T212_CASH_ACTIONS[action],
                         amount=_number(raw.get("total", "")), currency=raw.get("currency (total)", "").strip(),
                         note=" ".join(filter(None, [raw.get("action", "").strip(), raw.get("id", "").strip()])))
    if "buy" in action:
        kind = "BUY"
    elif "sell" in action:
        kind = "SELL"
    elif action.startswith("dividend"):
        kind = "DIVIDEND"
    else:
        return Skip(f"{raw.get('action') or 'empty action'}: not a trade")
    currency = raw.get("currency (price / share)", "").strip()
    rate = _number(raw.get("exchange rate", ""))  # instrument currency per account-currency unit
    fee = Decimal(0)
    for column in T212_FEE_COLUMNS:
        amount = _number(raw.get(column, ""))
        if amount:
            # Fees are charged in the account's currency; the transaction's is the instrument's.
            fee += abs(amount) * (rate if rate and rate > 0 else 1)
    if kind == "DIVIDEND":
        withheld = _number(raw.get("withholding tax", ""))
        fee = abs(withheld) if withheld else Decimal(0)
        withholding_currency = raw.get("currency (withholding tax)", "").strip()
        if withheld and withholding_currency and withholding_currency != currency and rate and rate > 0:
            fee = fee * rate
    day = raw.get("time", "").strip()[:10]
    return {
        "date": day, "type": kind, "symbol": raw.get("ticker", "").strip(),
        "quantity": _text(_number(raw.get("no. of shares", ""))), "price": _text(_number(raw.get("price / share", ""))),
        "fee": _text(fee.quantize(Decimal("0.000001")) if fee else Decimal(0)), "currency": currency,
        "note": " ".join(filter(None, [raw.get("name", "").strip(), raw.get("id", "").strip()]))[:500],
    }


# --- Charles Schwab --------------------------------------------------------------------------------

SCHWAB_ACTIONS = {
    "buy": "BUY", "reinvest shares": "BUY", "buy to open": "BUY",
    "sell": "SELL", "sell to close": "SELL",
    "qualified dividend": "DIVIDEND", "cash dividend": "DIVIDEND", "non-qualified div": "DIVIDEND",
    "reinvest dividend": "DIVIDEND", "special dividend": "DIVIDEND", "pr yr cash div": "DIVIDEND",
    "qual div reinvest": "DIVIDEND", "long term cap gain": "DIVIDEND", "short term cap gain": "DIVIDEND",
    "adr mgmt fee": "FEE", "foreign tax paid": "FEE", "nra tax adj": "FEE", "service fee": "FEE",
}
# Cash in or out of the account, by the sign of Amount; interest on the account's cash (not a bond's coupon,
# which names its bond and is left out).
SCHWAB_TRANSFERS = ("moneylink transfer", "moneylink deposit", "wire funds", "wire funds received", "wire sent",
                    "funds received", "journal")
SCHWAB_INTEREST = ("credit interest", "bank interest", "schwab1 int")
AS_OF = re.compile(r"as of (\d{2}/\d{2}/\d{4})")


def _us_date(text: str) -> str:
    """'01/02/2024' or '01/02/2024 as of 12/29/2023' → the trade date as YYYY-MM-DD ('' if none)."""
    match = AS_OF.search(text)
    value = match.group(1) if match else text.strip()[:10]
    try:
        return datetime.strptime(value, "%m/%d/%Y").date().isoformat()
    except ValueError:
        return text.strip()  # left for the generic check to name as a bad date


def _schwab_map(raw: Row) -> Mapped:
    action = raw.get("action", "").strip()
    kind = SCHWAB_ACTIONS.get(action.lower())
    symbol = raw.get("symbol", "").strip()
    if not symbol and action.lower() in SCHWAB_TRANSFERS + SCHWAB_INTEREST:
        amount = _number(raw.get("amount", ""))
        kind = ("INTEREST" if action.lower() in SCHWAB_INTEREST
                else "WITHDRAWAL" if amount is not None and amount < 0 else "DEPOSIT")
        return _cash_row(day=_us_date(raw.get("date", "")), kind=kind, amount=amount, currency="USD",
                         note=" ".join(filter(None, [action, raw.get("description", "").strip()])))
    if kind is None or not symbol:
        return Skip(f"{action or 'empty action'}: not a trade")
    amount = _number(raw.get("amount", ""))
    fees = _number(raw.get("fees & comm", "")) or Decimal(0)
    row = {"date": _us_date(raw.get("date", "")), "type": kind, "symbol": symbol, "currency": "USD",
           "note": raw.get("description", "").strip()[:500]}
    if kind in ("BUY", "SELL"):
        quantity = _number(raw.get("quantity", ""))
        return {**row, "quantity": _text(abs(quantity) if quantity is not None else None),
                "price": _text(_number(raw.get("price", ""))), "fee": _text(abs(fees))}
    if kind == "DIVIDEND":  # Schwab gives the cash amount only: one "share" of that amount
        return {**row, "quantity": "1", "price": _text(abs(amount) if amount is not None else None), "fee": "0"}
    return {**row, "quantity": "0", "price": "0", "fee": _text(abs(amount) if amount is not None else None)}


FORMATS = (
    BrokerFormat("trading212", "Trading 212 export",
                 ("action", "time", "ticker", "no. of shares", "price / share", "currency (price / share)"),
                 _t212_map),
    BrokerFormat("schwab", "Charles Schwab transaction history",
                 ("date", "action", "symbol", "quantity", "price", "fees & comm", "amount"), _schwab_map,
                 newest_first=True),
)


def broker_format_named(name: str) -> BrokerFormat | None:
    return next((fmt for fmt in FORMATS if fmt.name == name), None)


def broker_format_detect(columns: list[str]) -> BrokerFormat | None:
    present = set(columns)
    return next((fmt for fmt in FORMATS if set(fmt.required) <= present), None)
