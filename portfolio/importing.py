"""CSV import of transactions: every row validated first, then all written or none.

The generic format (docs/import-export.md) has a header row with the columns
`date,type,symbol,quantity,price,fee,currency` and optionally `note,provider,asset_class`, in any
order and case; broker exports (portfolio/broker_formats.py) are recognised by their headers.
Errors name the row (as numbered in the file, the header being row 1) and the column. Rows
identical to a transaction already in the portfolio are skipped, so importing the same export twice
adds nothing.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db import transaction

from portfolio.broker_formats import (
    FORMATS,
    THOUSANDS,
    DecimalCommaError,
    Skip,
    broker_format_detect,
    broker_format_named,
)
from portfolio.cache import portfolio_version_bump
from portfolio.cash import cash_expand, overdrawn_message
from portfolio.history import portfolio_history_request_for
from portfolio.holdings import (
    OversellError,
    Position,
    account_oversell_find,
    account_oversell_message,
    position_apply,
)
from portfolio.kept import portfolio_write_lock
from portfolio.models import CASH_TYPES, Account, Portfolio, Transaction, TransactionType
from portfolio.services import (
    TransactionInput,
    account_default_get,
    transaction_account_get,
    transaction_fields_validate,
)
from prices.models import AssetClass, Instrument, Provider
from prices.services import instrument_get_or_create, instrument_symbol_of, symbol_normalize

GENERIC = "generic"
MOVES_OF_CASH = (TransactionType.DEPOSIT, TransactionType.WITHDRAWAL)
REQUIRED_COLUMNS = ("date", "type", "symbol", "quantity", "price", "fee", "currency")
OPTIONAL_COLUMNS = ("note", "provider", "asset_class", "gift", "account", "account_tracks_cash")
GIFT_WORDS = {"": False, "0": False, "false": False, "no": False, "1": True, "true": True, "yes": True}
# Whether the row's account tracks cash (an export says it of every row); empty: the account as it is or is made.
TRACKS_WORDS = {**GIFT_WORDS, "": None}
MAX_FILE_BYTES = 10 * 1024 * 1024  # ~100k rows: a lifetime of trades; more is a mistake or an attack
MAX_ROWS = 100_000
MAX_ERRORS = 200  # reported; beyond that the file is wrong as a whole
# Decimal places the columns store (portfolio/models.py Transaction).
COLUMN_PLACES = {"quantity": 10, "price": 6, "fee": 6}
# What each column can hold (numeric(28, 10) and numeric(20, 6)), and at most what is plausible: beyond, a row error.
COLUMN_LIMITS = {"quantity": Decimal("1e15"), "price": Decimal("1e14"), "fee": Decimal("1e14")}


@dataclass
class RowError:
    row: int
    column: str | None
    message: str


@dataclass
class ImportResult:
    created: int = 0
    skipped_duplicates: int = 0
    # A broker's rows Folio has no transaction for (currency conversions, card spending, the totals line),
    # and its deposits and withdrawals when the account imported into does not track cash.
    skipped_other: int = 0
    format: str = "generic"


class ImportRejected(ValidationError):
    """The file as a whole, or some of its rows, cannot be imported; nothing was written."""

    def __init__(self, errors: list[RowError]) -> None:
        self.row_errors = errors
        super().__init__([f"row {e.row}{f', {e.column}' if e.column else ''}: {e.message}" for e in errors])


def import_file_precheck(*, content: bytes) -> None:
    """ImportRejected for a file too large to import at all, before any row is read (so a large file
    is refused at once, never queued for a worker)."""
    if len(content) > MAX_FILE_BYTES:
        raise ImportRejected([RowError(0, None, f"The file is larger than {MAX_FILE_BYTES // 1024 // 1024} MB.")])
    if content_lines(content) > MAX_ROWS + 1:  # a line per row and the header (quoted line breaks aside)
        raise ImportRejected([RowError(0, None, f"More than {MAX_ROWS} rows: split the file.")])


def content_lines(content: bytes) -> int:
    """The lines of a file, whichever ends them (a line feed, or an old Mac's lone carriage return)."""
    return max(content.count(b"\n"), content.count(b"\r"))


def _unguarded(cell: str) -> str:
    """A cell as it was before Folio's export guarded it (a leading apostrophe before what a spreadsheet would
    run as a formula: portfolio.exporting.FORMULA_STARTS)."""
    return cell[1:] if cell.startswith("'") and cell[1:2] in ("=", "+", "-", "@") else cell


DELIMITERS = (",", ";", "\t")


def _delimiter(text: str) -> str:
    """The delimiter the header (the file's first line) is written with: the one splitting it into the most columns,
    a comma where none does better. Guessed from the rows too (csv.Sniffer on a sample), a semicolon file whose rows
    leave off an empty last column (a note) has no delimiter counted alike on every line, and was read with commas."""
    header = next((line for line in text.splitlines() if line.strip()), "")
    return max(DELIMITERS, key=lambda delimiter: len(next(csv.reader([header], delimiter=delimiter), [])))


def csv_rows_read(*, content: bytes) -> tuple[str, list[tuple[int, dict[str, str] | Skip]], bool]:
    """The file's layout and its data rows as generic rows (dicts of lower-cased column names), or
    Skips for a broker's non-trade rows; ImportRejected for a file that cannot be read."""
    import_file_precheck(content=content)
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ImportRejected([RowError(0, None, "The file is not UTF-8 text. Save it as CSV UTF-8 and retry.")]) \
            from None
    # newline="": the csv module finds the ends of lines itself, old Macs' lone carriage returns included.
    delimiter = _delimiter(text)
    reader = csv.DictReader(io.StringIO(text, newline=""), dialect=csv.excel, delimiter=delimiter)
    try:
        columns = [c.strip().lower() for c in reader.fieldnames or []]
    except csv.Error as error:
        raise ImportRejected([RowError(1, None, f"Unreadable CSV: {error}.")]) from None
    broker = broker_format_detect(columns)
    if broker is None and (missing := [c for c in REQUIRED_COLUMNS if c not in columns]):
        known = "; ".join(fmt.label for fmt in FORMATS)
        raise ImportRejected([RowError(1, None, f"Missing column(s): {', '.join(missing)}. Expected the generic "
                                                f"columns {', '.join(REQUIRED_COLUMNS)}, or an export of: {known}.")])
    rows = []  # (its row number in the file: a blank line the reader skips still counts, as a spreadsheet shows it)
    try:
        for raw in reader:
            cells = {(k or "").strip().lower(): _unguarded(v.strip()) if isinstance(v, str) else ""
                     for k, v in raw.items()}
            rows.append((reader.line_num, cells))
            if len(rows) > MAX_ROWS:
                raise ImportRejected([RowError(0, None, f"More than {MAX_ROWS} rows: split the file.")])
    except csv.Error as error:  # a field over the csv module's size limit, an unterminated quote…
        raise ImportRejected([RowError(reader.line_num, None, f"Unreadable CSV: {error}.")]) from None
    mapped = rows
    if broker:
        mapped = []
        for number, row in rows:
            try:
                mapped.append((number, broker.map_row(row)))
            except DecimalCommaError as error:
                raise ImportRejected([RowError(number, None, str(error))]) from None
    # (and whether a comma separates the cells: then a comma in a number may separate its thousands)
    return (broker.name if broker else GENERIC), mapped, delimiter == ","


def import_account_get(*, portfolio: Portfolio, value: str | int | None) -> Account | None:
    """The account an import's rows naming none go into, chosen by its id (the API's and the page's
    `account` field); None when none is chosen. ValidationError naming `account` for anything else."""
    if value in (None, ""):
        return None
    try:
        pk = int(value)
    except (TypeError, ValueError):
        raise ValidationError({"account": f"'{value}' is not an account id."}) from None
    return transaction_account_get(portfolio=portfolio, account_id=pk)


def _decimal(text: str, column: str, row: int, errors: list[RowError], *, comma_separated: bool) -> Decimal | None:
    if text == "":
        return None
    # A comma separates thousands only in a file whose cells a comma separates (in a semicolon file, 1,500 is the
    # decimal comma of a European spreadsheet: one and a half).
    if "," in text and not (comma_separated and THOUSANDS.fullmatch(text)):
        errors.append(RowError(row, column, f"'{text}' is not a number: write decimals with a dot (1.5, not 1,5)."))
        return None
    try:
        value = Decimal(text.replace(",", "")) if text.count(".") <= 1 else Decimal("x")
    except InvalidOperation:
        errors.append(RowError(row, column, f"'{text}' is not a number."))
        return None
    if not value.is_finite() or abs(value) >= COLUMN_LIMITS[column]:
        errors.append(RowError(row, column, f"'{text}' is not a plausible {column}."))
        return None
    places = COLUMN_PLACES[column]
    if value != value.quantize(Decimal(1).scaleb(-places)):
        # Stored to `places` decimals: more would be rounded away (1e-30 would become 0).
        errors.append(RowError(row, column, f"'{text}' has more than {places} decimal places."))
        return None
    return value


def _tracks_cash_parse(raw: dict[str, str], number: int, errors: list[RowError],
                       said: dict[str, tuple[bool, int]]) -> None:
    """The row's `account_tracks_cash`, recorded in `said` by account name (the first row saying it of an account,
    with its number); a word that is no yes or no, or one contradicting an earlier row's, is an error of its row."""
    text = raw.get("account_tracks_cash", "")
    tracks = TRACKS_WORDS.get(text.lower(), ...)
    if tracks is ...:
        errors.append(RowError(number, "account_tracks_cash", f"'{text}' is not yes or no."))
        return
    if tracks is None:
        return
    account = raw.get("account", "")
    first = said.setdefault(account, (tracks, number))
    if first[0] != tracks:
        errors.append(RowError(number, "account_tracks_cash", f"Row {first[1]} says the account "
                                                              f"{_account_label(account)} {_tracking(first[0])}."))


def _account_label(name: str) -> str:
    return f"'{name}'" if name else "of the rows naming none"


def _tracking(tracks: bool) -> str:
    return "tracks cash" if tracks else "does not track cash"


def _row_parse(raw: dict[str, str], number: int, errors: list[RowError], *,
               comma_separated: bool = True) -> TransactionInput | None:
    before = len(errors)
    for column, value in raw.items():
        if "\x00" in value:  # Postgres stores no NUL in text: name it instead of failing the write
            errors.append(RowError(number, column, "Contains a NUL byte."))
    if len(errors) > before:
        return None
    try:
        day = date.fromisoformat(raw["date"])
    except ValueError:
        errors.append(RowError(number, "date", f"'{raw['date']}' is not a date as YYYY-MM-DD."))
        day = None
    tx_type = raw["type"].upper()
    if tx_type not in TransactionType.values:
        errors.append(RowError(number, "type", f"'{raw['type']}' is not one of {', '.join(TransactionType.values)}."))
    provider = raw.get("provider", "").lower() or None
    if provider and provider not in Provider.values:
        errors.append(RowError(number, "provider", f"'{provider}' is not a provider Folio knows."))
    asset_class = raw.get("asset_class", "").lower() or None
    if asset_class and asset_class not in AssetClass.values:
        errors.append(RowError(number, "asset_class", f"'{asset_class}' is not an asset class."))
    amounts = {column: _decimal(raw[column], column, number, errors, comma_separated=comma_separated)
               for column in ("quantity", "price", "fee")}
    gift = GIFT_WORDS.get(raw.get("gift", "").lower())
    if gift is None:
        errors.append(RowError(number, "gift", f"'{raw['gift']}' is not yes or no."))
    try:
        # A deposit, withdrawal or interest names no instrument (transaction_fields_validate says so if it does).
        symbol = "" if tx_type in CASH_TYPES and not raw["symbol"] else symbol_normalize(symbol=raw["symbol"])
    except ValidationError as error:
        errors.append(RowError(number, "symbol", error.message_dict["symbol"][0]))
        symbol = None
    account = raw.get("account", "")
    if len(account) > 100:
        errors.append(RowError(number, "account", "An account name has at most 100 characters."))
    if len(errors) > before or day is None or symbol is None:
        return None
    note = raw.get("note", "")
    data = TransactionInput(symbol=symbol, type=tx_type, date=day, currency=raw["currency"],
                            note=note[:500], provider=provider, asset_class=asset_class, gift=gift,
                            account_name=account, **amounts)
    try:
        cleaned = transaction_fields_validate(data)
    except ValidationError as error:
        errors.extend(RowError(number, column, " ".join(messages)) for column, messages in error.message_dict.items())
        return None
    return TransactionInput(symbol=symbol, provider=provider, asset_class=asset_class, gift=gift,
                            account_name=account, **cleaned)


def _identity(symbol: str, account: str, tx: TransactionInput | Transaction) -> tuple:
    return (symbol, account, tx.type, tx.date, Decimal(tx.quantity).normalize(), Decimal(tx.price).normalize(),
            Decimal(tx.fee).normalize(), tx.currency)


def _stored_symbol(row: TransactionInput) -> str:
    """The symbol of the instrument a row's is found or made as (a coin named BTC-USD or bitcoin is BTC), compared
    with the stored transactions' instruments; a cash row's none. One no instrument can have is left as written: its
    row's error is named when the instrument is asked for."""
    if row.type in CASH_TYPES or not row.symbol:
        return ""
    try:
        return instrument_symbol_of(symbol=row.symbol, provider=row.provider, asset_class=row.asset_class)
    except ValidationError:
        return row.symbol


def _instrument_request(row: TransactionInput) -> tuple:
    """What names a row's instrument; rows alike get the same instrument (the first row's currency)."""
    return (row.symbol, row.provider, row.asset_class)


def transactions_import(*, portfolio: Portfolio, content: bytes, account: Account | None = None,
                        progress: Callable[[int, int], None] | None = None) -> ImportResult:
    """Validate every row, then write them all in one transaction, or raise ImportRejected.
    Rows that name no account go into `account` (one of the portfolio's; None: its default account): a
    broker's export is one account's history. `progress(rows_checked, rows)` is called as the rows are
    checked (for a progress bar)."""
    layout, rows, comma_separated = csv_rows_read(content=content)
    errors: list[RowError] = []
    parsed: list[tuple[int, TransactionInput]] = []
    tracks_said: dict[str, tuple[bool, int]] = {}  # account name ("": the rows naming none) -> (tracks cash, row)
    skipped = 0
    for checked, (number, raw) in enumerate(rows, start=1):
        if progress and (checked % 500 == 0 or checked == len(rows)):
            progress(checked, len(rows))
        if isinstance(raw, Skip):
            skipped += 1
            continue
        row = _row_parse(raw, number, errors, comma_separated=comma_separated)
        if row is not None:
            parsed.append((number, row))
            _tracks_cash_parse(raw, number, errors, tracks_said)
        if len(errors) >= MAX_ERRORS:
            break
    if not rows:
        errors.append(RowError(2, None, "The file has a header but no transactions."))
    if errors:
        raise ImportRejected(errors[:MAX_ERRORS])

    if (broker := broker_format_named(layout)) is not None and broker.newest_first:
        parsed.reverse()  # entered oldest first, each row still named by its number in the file
    if rows and skipped == len(rows):
        raise ImportRejected([RowError(0, None, "The file holds no transactions (only currency conversions and "
                                                "the like).")])
    result = ImportResult(format=layout, skipped_other=skipped)
    with transaction.atomic():
        portfolio_write_lock(portfolio_id=portfolio.pk)
        existing = list(
            Transaction.objects.filter(portfolio=portfolio).select_related("instrument", "account")
            .order_by("date", "id")
        )
        default = account_default_get(portfolio=portfolio)
        # Read again under the portfolio's lock (an account is deleted under it): as it is now, if still there.
        target = default if account is None else Account.objects.filter(pk=account.pk, portfolio=portfolio).first()
        if target is None:
            raise ImportRejected([RowError(0, "account", "The account chosen is not this portfolio's (deleted "
                                                         "meanwhile?): nothing was imported.")])
        accounts = {known.name: known for known in Account.objects.filter(portfolio=portfolio)}
        # One instance per account (names are unique in a portfolio): the rows naming none and those naming the
        # target see the same cash tracking once the file's is applied (_tracks_cash_apply).
        target = accounts.get(target.name, target)
        present = {_identity(tx.instrument.symbol if tx.instrument else "", (tx.account or default).name, tx)
                   for tx in existing}
        fresh = []
        for number, row in parsed:
            if _identity(_stored_symbol(row), row.account_name or target.name, row) in present:
                result.skipped_duplicates += 1
            elif layout != GENERIC and row.type in MOVES_OF_CASH and not target.tracks_cash:
                # A broker's deposits and withdrawals say what came in and out of its account; one that does
                # not track cash has no place for them (its buys bring the money in). A generic file's
                # rows are the user's own, so there such a row is an error naming it (_cash_check).
                result.skipped_other += 1
            else:
                fresh.append((number, row))
        if not fresh and not result.skipped_duplicates:
            raise ImportRejected([RowError(0, "account", f"'{target.name}' does not track cash, and the file holds "
                                                         f"only deposits and withdrawals: nothing to import.")])
        _tracks_cash_apply(tracks_said, accounts=accounts, target=target, existing=existing)
        for _, row in fresh:  # an account the file names that the portfolio does not have yet is made
            if row.account_name and row.account_name not in accounts:
                said = tracks_said.get(row.account_name)
                accounts[row.account_name] = Account.objects.create(
                    portfolio=portfolio, name=row.account_name, currency=portfolio.base_currency,
                    tracks_cash=True if said is None else said[0])
        # The same symbol can name the owner's manual instrument on one row (provider manual) and the
        # shared one on another (provider yahoo): one look-up per distinct request, in file order.
        instruments: dict[tuple, Instrument] = {}
        unknown: list[RowError] = []
        for number, row in fresh:
            if row.type not in CASH_TYPES and (request := _instrument_request(row)) not in instruments:
                try:
                    instruments[request] = instrument_get_or_create(
                        symbol=row.symbol, currency=row.currency, provider=row.provider,
                        asset_class=row.asset_class, owner=portfolio.owner)
                except ValidationError as error:  # a symbol its provider says it does not know: the row's error
                    unknown.extend(RowError(number, column, " ".join(messages))
                                   for column, messages in error.message_dict.items())
                    instruments[request] = None
        if unknown:
            raise ImportRejected(unknown[:MAX_ERRORS])
        new = [
            (number, Transaction(portfolio=portfolio, account=accounts.get(row.account_name, target),
                                 instrument=None if row.type in CASH_TYPES else instruments[_instrument_request(row)],
                                 type=row.type, date=row.date, quantity=row.quantity, price=row.price, fee=row.fee,
                                 currency=row.currency, note=row.note))
            for number, row in fresh
        ]
        _positions_check(existing=existing, new=new)
        _cash_check(existing=existing, new=new)
        Transaction.objects.bulk_create([tx for _, tx in new], batch_size=2000)
        result.created = len(new)
        if new:
            portfolio_version_bump(portfolio_id=portfolio.pk)
            created = [tx for _, tx in new]
            transaction.on_commit(lambda: portfolio_history_request_for(portfolio=portfolio, transactions=created))
    return result


def _tracks_cash_apply(said: dict[str, tuple[bool, int]], *, accounts: dict[str, Account], target: Account,
                       existing: list[Transaction]) -> None:
    """Give the portfolio's accounts the cash tracking the file says they have (`account_tracks_cash`: an export's
    rows say it of their account), so that export then import gives the same values. An account that holds no
    transaction yet takes it (a new portfolio's default account, which tracks cash, receiving an export of one that
    does not); one that holds transactions and tracks cash otherwise is an error of the first row saying it:
    changing it would change what its transactions did."""
    used = {tx.account_id for tx in existing}
    errors = []
    for name, (tracks, number) in said.items():
        account = accounts.get(name) if name else target
        if account is None or account.tracks_cash == tracks:
            continue  # made by the import as the file says, or as it is already
        if account.pk in used:
            errors.append(RowError(number, "account_tracks_cash", (
                f"The file says '{account.name}' {_tracking(tracks)}, but it {_tracking(account.tracks_cash)} and "
                f"holds transactions: change the account's cash tracking first, or leave this column empty.")))
            continue
        Account.objects.filter(pk=account.pk).update(tracks_cash=tracks)
        account.tracks_cash = tracks
    if errors:
        raise ImportRejected(errors)


def _cash_check(*, existing: list[Transaction], new: list[tuple[int, Transaction]]) -> None:
    """Deposits and withdrawals only in accounts that track cash, and no withdrawal beyond the cash its
    account holds on its date (the new rows after existing ones of the same date, in file order); each
    error names the file row."""
    errors = [RowError(number, "account", f"'{tx.account.name}' does not track cash: no deposit or withdrawal "
                                          f"in it.")
              for number, tx in new
              if tx.type in (TransactionType.DEPOSIT, TransactionType.WITHDRAWAL) and not tx.account.tracks_cash]
    if errors:
        raise ImportRejected(errors)
    entries = sorted([((tx.date, 0, tx.pk), None, tx) for tx in existing]
                     + [((tx.date, 1, order), number, tx) for order, (number, tx) in enumerate(new)],
                     key=lambda entry: entry[0])
    transactions = [tx for _, _, tx in entries]
    if not any(tx.type == TransactionType.WITHDRAWAL for tx in transactions):
        return  # new buys may take cash a withdrawal already there needs: checked then too
    expansion = cash_expand(transactions, accounts=[tx.account_id for tx in transactions],
                            tracked={tx.account_id for tx in transactions if tx.account and tx.account.tracks_cash})
    if expansion.overdrawn:
        numbers = {id(tx): number for _, number, tx in entries}
        raise ImportRejected([RowError(numbers[id(tx)] or 0, "price", overdrawn_message(tx, held))
                              for tx, held in expansion.overdrawn])


def _positions_check(*, existing: list[Transaction], new: list[tuple[int, Transaction]]) -> None:
    """Replay each instrument's history with the new rows (after existing ones of the same date, in file
    order); an oversell names the file row that caused it."""
    by_instrument: dict[int, list[tuple[tuple, int | None, Transaction]]] = defaultdict(list)
    for tx in existing:
        if tx.instrument_id is not None:  # the cash types have no position
            by_instrument[tx.instrument_id].append(((tx.date, 0, tx.pk), None, tx))
    for order, (number, tx) in enumerate(new):
        if tx.type not in CASH_TYPES:
            by_instrument[tx.instrument_id].append(((tx.date, 1, order), number, tx))
    errors = []
    for instrument_id, entries in by_instrument.items():
        entries.sort(key=lambda entry: entry[0])
        position = Position(instrument_id=instrument_id)
        for _, number, tx in entries:
            try:
                position_apply(position, tx)
            except OversellError as error:
                errors.append(RowError(number or 0, "quantity", error.message_dict["quantity"][0]))
                break
        else:  # and each account sells only the shares it holds
            if (oversold := account_oversell_find([tx for _, _, tx in entries],
                                                  [tx.account_id for _, _, tx in entries])) is not None:
                tx, held = oversold
                number = next(number for _, number, entry in entries if entry is tx)
                errors.append(RowError(number or 0, "quantity", account_oversell_message(tx, held)))
    if errors:
        raise ImportRejected(sorted(errors, key=lambda e: e.row))
