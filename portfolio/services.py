"""Writes to portfolios and transactions. Views, serializers and forms only call these."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from portfolio.cache import portfolio_version_bump, portfolio_versions_bump
from portfolio.cash import cash_expand, overdrawn_message
from portfolio.history import portfolio_history_request_for
from portfolio.holdings import account_oversell_find, account_oversell_message, positions_compute
from portfolio.kept import portfolio_write_lock
from portfolio.models import CASH_TYPES, Account, Portfolio, Transaction, TransactionType
from portfolio.signals import portfolio_deleted
from prices.currencies import currency_codes, currency_normalize
from prices.models import AssetClass, Instrument
from prices.services import instrument_get_or_create

ZERO = Decimal("0")
# Nothing older is a plausible trade in a personal portfolio; catches typos such as 0202 or 1820.
EARLIEST_TRANSACTION_DATE = date(1900, 1, 1)


# --- Portfolios


def portfolio_create(*, owner: AbstractBaseUser, name: str, base_currency: str = "USD") -> Portfolio:
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "A portfolio needs a name."})
    base_currency = currency_normalize(code=base_currency, field="base_currency")
    try:
        with transaction.atomic():
            portfolio = Portfolio.objects.create(owner=owner, name=name, base_currency=base_currency)
            Account.objects.create(portfolio=portfolio, name=DEFAULT_ACCOUNT_NAME, currency=base_currency)
            return portfolio
    except IntegrityError:
        raise ValidationError({"name": f"You already have a portfolio named '{name}'."}) from None


NO_CHANGE = object()


def portfolio_update(*, portfolio: Portfolio, name: str | None = None, base_currency: str | None = None,
                     benchmark: str | None | object = NO_CHANGE) -> Portfolio:
    if name is not None:
        name = name.strip()
        if not name:
            raise ValidationError({"name": "A portfolio needs a name."})
        if _name_taken(portfolio=portfolio, name=name):
            raise ValidationError({"name": f"You already have a portfolio named '{name}'."})
        portfolio.name = name
    if base_currency is not None:
        portfolio.base_currency = currency_normalize(code=base_currency, field="base_currency")
    if benchmark is not NO_CHANGE:
        portfolio.benchmark = (None if not benchmark
                               else benchmark_instrument_get(symbol=benchmark, owner=portfolio.owner))
    try:
        with transaction.atomic():
            portfolio_write_lock(portfolio_id=portfolio.pk)
            portfolio.save()
            portfolio_version_bump(portfolio_id=portfolio.pk)
            if base_currency is not None or (benchmark is not NO_CHANGE and portfolio.benchmark_id):
                # A new base needs every foreign currency's rates, a new benchmark its closes, from the first trade.
                transaction.on_commit(lambda: portfolio_history_request_for(portfolio=portfolio))
    except IntegrityError:
        # The check above passed, but a concurrent rename (or create) committed the name before this save:
        # the unique (owner, name) constraint refused it. Any other integrity error is not the user's.
        if name is None or not _name_taken(portfolio=portfolio, name=name):
            raise
        raise ValidationError({"name": f"You already have a portfolio named '{name}'."}) from None
    return portfolio


def _name_taken(*, portfolio: Portfolio, name: str) -> bool:
    return Portfolio.objects.filter(owner_id=portfolio.owner_id, name=name).exclude(pk=portfolio.pk).exists()


def benchmark_instrument_get(*, symbol: str, owner: AbstractBaseUser) -> Instrument:
    """A benchmark is an instrument Folio prices (created pending verification if new, as an ETF), or
    one of the owner's own manual instruments; never another user's."""
    try:
        instrument = instrument_get_or_create(symbol=symbol, currency="USD", asset_class=AssetClass.ETF, owner=owner)
    except ValidationError as error:
        raise ValidationError({"benchmark": error.message_dict["symbol"]}) from None
    if instrument.verification_status == "unknown":
        raise ValidationError({"benchmark": f"{instrument.symbol} is unknown to its price provider."})
    return instrument


def portfolio_delete(*, portfolio: Portfolio) -> None:
    with transaction.atomic():
        portfolio_id = portfolio.pk
        portfolio_write_lock(portfolio_id=portfolio_id)  # the delete of its transactions takes its kept row
        portfolio.delete()
        transaction.on_commit(lambda: portfolio_deleted.send(sender=Portfolio, portfolio_id=portfolio_id))


# --- Accounts

DEFAULT_ACCOUNT_NAME = "Default"


def account_default_get(*, portfolio: Portfolio) -> Account:
    """The portfolio's default account — its oldest — where a transaction naming none goes (made when the
    portfolio has none left)."""
    account = Account.objects.filter(portfolio=portfolio).order_by("id").first()
    if account is None:
        account, _ = Account.objects.get_or_create(portfolio=portfolio, name=DEFAULT_ACCOUNT_NAME,
                                                   defaults={"currency": portfolio.base_currency})
    return account


def _account_fields_validate(*, portfolio: Portfolio, name: str | None, platform: str | None,
                             currency: str | None, account: Account | None) -> dict:
    errors: dict[str, str] = {}
    fields: dict = {}
    if name is not None:
        name = name.strip()
        if not name:
            errors["name"] = "An account needs a name."
        elif (Account.objects.filter(portfolio=portfolio, name=name)
              .exclude(pk=account.pk if account else None).exists()):
            errors["name"] = f"This portfolio already has an account named '{name}'."
        fields["name"] = name
    if platform is not None:
        fields["platform"] = platform.strip()
    if currency is not None:
        try:
            fields["currency"] = currency_normalize(code=currency, field="currency")
        except ValidationError as exc:
            errors.update(exc.message_dict)
    if errors:
        raise ValidationError(errors)
    return fields


def account_create(*, portfolio: Portfolio, name: str, platform: str = "", currency: str | None = None,
                   tracks_cash: bool = True) -> Account:
    fields = _account_fields_validate(portfolio=portfolio, name=name or "", platform=platform or "",
                                      currency=currency or portfolio.base_currency, account=None)
    fields["tracks_cash"] = tracks_cash
    try:
        with transaction.atomic():
            account = Account.objects.create(portfolio=portfolio, **fields)
            portfolio_version_bump(portfolio_id=portfolio.pk)
    except IntegrityError:  # a concurrent create took the name after the check
        raise ValidationError({"name": f"This portfolio already has an account named '{fields['name']}'."}) from None
    return account


def account_update(*, account: Account, name: str | None = None, platform: str | None = None,
                   currency: str | None = None, tracks_cash: bool | None = None) -> Account:
    """tracks_cash: an account starts tracking its cash at any time (its trades then move cash from the
    first); it stops only while no deposit, withdrawal or interest is recorded in it (they would mean nothing),
    checked under the portfolio's lock, so a deposit written at the same moment is seen or waits."""
    fields = _account_fields_validate(portfolio=account.portfolio, name=name, platform=platform,
                                      currency=currency, account=account)
    try:
        with transaction.atomic():
            portfolio_write_lock(portfolio_id=account.portfolio_id)
            if tracks_cash is not None:
                if not tracks_cash and Transaction.objects.filter(account=account, type__in=CASH_TYPES).exists():
                    raise ValidationError({"tracks_cash": "The account has deposits, withdrawals or interest: "
                                                          "delete them before it stops tracking cash."})
                fields["tracks_cash"] = tracks_cash
            for key, value in fields.items():
                setattr(account, key, value)
            account.save()
            portfolio_version_bump(portfolio_id=account.portfolio_id)
    except IntegrityError:
        raise ValidationError({"name": f"This portfolio already has an account named '{fields['name']}'."}) from None
    return account


def account_delete(*, account: Account) -> None:
    """Refused while transactions name it (they are its history: move or delete them first), and for the
    portfolio's last account (a transaction always has one to go to)."""
    with transaction.atomic():
        portfolio_write_lock(portfolio_id=account.portfolio_id)
        count = Transaction.objects.filter(account=account).count()
        if count:
            raise ValidationError({"account": f"'{account.name}' still has {count} transaction"
                                              f"{'s' if count != 1 else ''}: move or delete them first."})
        if not Account.objects.filter(portfolio_id=account.portfolio_id).exclude(pk=account.pk).exists():
            raise ValidationError({"account": "A portfolio keeps at least one account."})
        account.delete()
        portfolio_version_bump(portfolio_id=account.portfolio_id)


def transaction_account_get(*, portfolio: Portfolio, account_id: int | None) -> Account:
    """The account a transaction names — one of this portfolio's, else a 400 naming the field — or the
    portfolio's default account when it names none."""
    if account_id is None:
        return account_default_get(portfolio=portfolio)
    account = Account.objects.filter(portfolio=portfolio, pk=account_id).first()
    if account is None:
        raise ValidationError({"account": f"This portfolio has no account {account_id}."})
    return account


# --- Transactions


@dataclass
class TransactionInput:
    """A transaction as the user typed it, before it is checked against the portfolio."""

    symbol: str  # empty for the cash types (deposit, withdrawal, interest)
    type: str
    date: date
    quantity: Decimal | None
    price: Decimal | None
    fee: Decimal | None
    currency: str
    note: str = ""
    provider: str | None = None
    asset_class: str | None = None
    # Shares received free (a gift, an award): the only way a buy or sell has a price of 0.
    gift: bool = False
    name: str = ""  # a new instrument's name (from the search result picked); a known one keeps its own
    account: int | None = None  # the account's id; None: the portfolio's default account
    account_name: str = ""  # or its name (a CSV import's column)


def transaction_input_from(data: dict) -> TransactionInput:
    """A TransactionInput from parsed form or serializer data (absent optional fields are None)."""
    return TransactionInput(
        symbol=(data.get("symbol") or "").strip(), type=data["type"], date=data["date"], quantity=data.get("quantity"),
        price=data.get("price"), fee=data.get("fee"), currency=data["currency"], note=data.get("note") or "",
        provider=data.get("provider") or None, asset_class=data.get("asset_class") or None,
        gift=bool(data.get("gift")), name=(data.get("name") or "").strip()[:200], account=data.get("account"),
    )


def transaction_fields_validate(data: TransactionInput) -> dict:
    """Per-type rules, each failure naming its field. Returns the cleaned field values."""
    errors: dict[str, str] = {}
    tx_type = data.type
    if tx_type not in TransactionType.values:
        errors["type"] = f"Must be one of {', '.join(TransactionType.values)}."
    quantity = data.quantity if data.quantity is not None else None
    price = data.price if data.price is not None else ZERO
    fee = data.fee if data.fee is not None else ZERO

    if tx_type in CASH_TYPES:
        if data.symbol:
            errors["symbol"] = "A deposit, withdrawal or interest names no instrument; leave the symbol empty."
    elif not data.symbol:
        errors["symbol"] = "This field is required."
    if tx_type in CASH_TYPES:
        # The amount is quantity × price, as for a dividend: quantity 1 and the amount as price when omitted.
        quantity = quantity if quantity is not None else Decimal("1")
        if quantity <= 0:
            errors["quantity"] = "Must be greater than zero."
        if data.price is None or price <= 0:
            errors["price"] = "The amount must be greater than zero."
        if tx_type != TransactionType.INTEREST and fee != 0:
            errors["fee"] = "A deposit or withdrawal has no fee; record one as a fee transaction."
    elif tx_type == TransactionType.FEE:
        quantity = quantity if quantity is not None else ZERO
        if quantity < 0:
            errors["quantity"] = "Must not be negative."
        if fee <= 0:
            errors["fee"] = "A fee transaction needs a fee greater than zero."
    elif quantity is None:
        errors["quantity"] = "This field is required."
    elif quantity <= 0:
        errors["quantity"] = (
            "The split ratio must be greater than zero (4 for a 4-for-1)."
            if tx_type == TransactionType.SPLIT
            else "Must be greater than zero."
        )
    if tx_type in CASH_TYPES:
        pass  # checked above
    elif tx_type in (TransactionType.BUY, TransactionType.SELL) and data.price is None:
        # Never 0 from an empty field: a browser sends an empty price for letters typed in a number box.
        errors["price"] = "A buy or sell needs its price per share."
    elif price < 0:
        errors["price"] = "Must not be negative."
    elif tx_type in (TransactionType.BUY, TransactionType.SELL) and price == 0 and not data.gift:
        errors["price"] = "Must be greater than zero (for shares received free, mark the transaction as a gift)."
    elif tx_type == TransactionType.DIVIDEND and price == 0:
        errors["price"] = "A dividend needs the amount per share (or the total with quantity 1)."
    elif tx_type == TransactionType.SPLIT and price != 0:
        errors["price"] = "A split has no price; leave it empty or 0."
    if fee < 0:
        errors.setdefault("fee", "Must not be negative.")
    elif tx_type == TransactionType.SPLIT and fee != 0:
        errors["fee"] = "A split has no fee; leave it empty or 0."

    today = timezone.localdate()
    if data.date > today:
        errors["date"] = f"Must not be in the future (today is {today.isoformat()})."
    elif data.date < EARLIEST_TRANSACTION_DATE:
        errors["date"] = f"Must not be before {EARLIEST_TRANSACTION_DATE.isoformat()}."

    try:
        currency = currency_normalize(code=data.currency, allow_minor=True)
    except ValidationError as exc:
        errors.update(exc.message_dict)
        currency = data.currency
    if errors:
        raise ValidationError(errors)
    return {"type": tx_type, "date": data.date, "quantity": quantity, "price": price, "fee": fee,
            "currency": currency, "note": (data.note or "").strip()}


def _position_history_validate(*, portfolio: Portfolio, instrument_id: int, replace: Transaction | None,
                               add: Transaction | None) -> None:
    """Replays the instrument's transactions with the change applied; OversellError if any sell
    would then exceed what is held on its date (so editing or deleting an old buy is checked too)."""
    existing = list(
        Transaction.objects.filter(portfolio=portfolio, instrument_id=instrument_id)
        .exclude(pk=replace.pk if replace else None).select_related("account")
        .order_by("date", "id")
    )
    if add is not None:
        existing.append(add)
        # A new transaction goes after others of its date; an edited one keeps its place.
        existing.sort(key=lambda tx: (tx.date, tx.pk if tx.pk is not None else float("inf")))
    positions_compute(existing)
    # Each account sells only the shares it holds.
    if (oversold := account_oversell_find(existing, [tx.account_id for tx in existing])) is not None:
        tx, held = oversold
        raise ValidationError({"quantity": account_oversell_message(tx, held)})


def transaction_instrument_get(*, portfolio: Portfolio, data: TransactionInput, currency: str,
                               current: Instrument | None = None) -> Instrument:
    """The instrument a transaction's symbol names for the portfolio's owner: their own manual one, or
    the shared one (instrument_get_or_create). An edit that keeps the symbol and names no provider or
    class keeps the transaction's instrument."""
    if (current is not None and not data.provider and not data.asset_class
            and (data.symbol or "").strip().upper() == current.symbol):
        return current
    return instrument_get_or_create(symbol=data.symbol, currency=currency, provider=data.provider,
                                    asset_class=data.asset_class, name=data.name, owner=portfolio.owner)


def _cash_history_validate(*, portfolio: Portfolio, replace: Transaction | None, add: Transaction | None) -> None:
    """Replays the portfolio's cash with the change applied: a withdrawal of more than its account then
    holds in that currency on its date is refused (editing or deleting an earlier deposit is checked too).
    Without a withdrawal, before or after the change, nothing can be overdrawn: then Postgres is asked whether
    there is one (EXISTS), rather than every transaction of the portfolio read into Python for each trade entered
    (the demo's 544 trades spent a third of their seeding there)."""
    others = Transaction.objects.filter(portfolio=portfolio).exclude(pk=replace.pk if replace else None)
    if ((add is None or add.type != TransactionType.WITHDRAWAL)
            and not others.filter(type=TransactionType.WITHDRAWAL).exists()):
        return
    existing = list(others.select_related("account").order_by("date", "id"))
    if add is not None:
        existing.append(add)
        existing.sort(key=lambda tx: (tx.date, tx.pk if tx.pk is not None else float("inf")))
    tracked = {tx.account_id for tx in existing if tx.account is not None and tx.account.tracks_cash}
    expansion = cash_expand(existing, accounts=[tx.account_id for tx in existing], tracked=tracked)
    if expansion.overdrawn:
        tx, held = expansion.overdrawn[0]
        raise ValidationError({"price": overdrawn_message(tx, held)})


def _history_validate(*, portfolio: Portfolio, instrument_ids: set[int | None],
                      replace: Transaction | None, add: Transaction | None) -> None:
    """Every history the change touches stays valid: each instrument's (no oversell) and the cash's."""
    for instrument_id in instrument_ids - {None}:
        _position_history_validate(portfolio=portfolio, instrument_id=instrument_id, replace=replace,
                                   add=add if add is not None and add.instrument_id == instrument_id else None)
    _cash_history_validate(portfolio=portfolio, replace=replace, add=add)


def _account_type_validate(*, account: Account, tx_type: str) -> None:
    if tx_type in (TransactionType.DEPOSIT, TransactionType.WITHDRAWAL) and not account.tracks_cash:
        raise ValidationError({"account": f"'{account.name}' does not track cash: turn its cash tracking on "
                                          f"(tracks_cash) to record deposits and withdrawals in it."})


def transaction_create(*, portfolio: Portfolio, data: TransactionInput) -> Transaction:
    fields = transaction_fields_validate(data)
    with transaction.atomic():
        # Serialise writes to one portfolio so two concurrent sells cannot both pass the check.
        portfolio_write_lock(portfolio_id=portfolio.pk)
        account = transaction_account_get(portfolio=portfolio, account_id=data.account)
        _account_type_validate(account=account, tx_type=fields["type"])
        instrument = (None if fields["type"] in CASH_TYPES else
                      transaction_instrument_get(portfolio=portfolio, data=data, currency=fields["currency"]))
        tx = Transaction(portfolio=portfolio, instrument=instrument, account=account, **fields)
        _history_validate(portfolio=portfolio, instrument_ids={tx.instrument_id}, replace=None, add=tx)
        tx.save()
        portfolio_version_bump(portfolio_id=portfolio.pk)
        transaction.on_commit(lambda: portfolio_history_request_for(portfolio=portfolio, transactions=[tx]))
    return tx


def transaction_update(*, transaction_obj: Transaction,
                       data: TransactionInput | Callable[[Transaction], TransactionInput]) -> Transaction:
    """The transaction changed to `data`, or to what `data(current)` makes of it as it is once its portfolio is
    locked (a partial edit: the fields it leaves are the row's then, not those of a read another edit committed
    over since). It is read again under the lock: one deleted meanwhile raises Transaction.DoesNotExist, never
    comes back (a save of the stale object would insert it again)."""
    portfolio = transaction_obj.portfolio
    with transaction.atomic():
        portfolio_write_lock(portfolio_id=portfolio.pk)
        transaction_obj = Transaction.objects.select_related("instrument", "account", "portfolio").get(
            pk=transaction_obj.pk, portfolio_id=portfolio.pk)
        if callable(data):
            data = data(transaction_obj)
        fields = transaction_fields_validate(data)
        # An edit that names no account keeps the transaction's own.
        account = (transaction_account_get(portfolio=portfolio, account_id=data.account)
                   if data.account is not None or transaction_obj.account_id is None else transaction_obj.account)
        _account_type_validate(account=account, tx_type=fields["type"])
        instrument = (None if fields["type"] in CASH_TYPES else transaction_instrument_get(
            portfolio=portfolio, data=data, currency=fields["currency"], current=transaction_obj.instrument))
        old_instrument_id = transaction_obj.instrument_id
        for name, value in fields.items():
            setattr(transaction_obj, name, value)
        transaction_obj.instrument = instrument
        transaction_obj.account = account
        # Moving it off the old instrument must leave that history valid too.
        _history_validate(portfolio=portfolio, instrument_ids={transaction_obj.instrument_id, old_instrument_id},
                          replace=transaction_obj, add=transaction_obj)
        transaction_obj.save()
        portfolio_version_bump(portfolio_id=portfolio.pk)
        transaction.on_commit(
            lambda: portfolio_history_request_for(portfolio=portfolio, transactions=[transaction_obj]))
    return transaction_obj


def transaction_delete(*, transaction_obj: Transaction) -> None:
    portfolio = transaction_obj.portfolio
    with transaction.atomic():
        portfolio_write_lock(portfolio_id=portfolio.pk)
        try:
            _history_validate(portfolio=portfolio, instrument_ids={transaction_obj.instrument_id},
                              replace=transaction_obj, add=None)
        except ValidationError:
            raise ValidationError(
                {"transaction": "Deleting it would leave a later sell selling more than was held, or a later "
                                "withdrawal taking more cash than its account holds."}
            ) from None
        transaction_obj.delete()
        portfolio_version_bump(portfolio_id=portfolio.pk)


def portfolios_prices_changed(*, instrument_ids: list[int], since: date | None = None) -> list[int]:
    """New closes of these instruments, from day `since` on (None: any day): the data of every portfolio
    holding one (or comparing itself with one) changed. In the caller's transaction; returns those
    portfolios."""
    if not instrument_ids:
        return []
    holders = (
        Portfolio.objects.filter(Q(transactions__instrument_id__in=instrument_ids) | Q(benchmark_id__in=instrument_ids))
        .values_list("pk", flat=True).distinct()
    )
    bumped = portfolio_versions_bump(portfolio_ids=holders, since=since)
    if since is None and bumped:
        # The instruments themselves changed (their provider or staff gave one another currency): what their
        # holders' trades need may be new, rates of that currency above all, fetched now rather than by the
        # nightly run (until then every figure would leave those holdings out, as missing a rate).
        transaction.on_commit(lambda: _holders_history_request(portfolio_ids=bumped, instrument_ids=instrument_ids))
    return bumped


def _holders_history_request(*, portfolio_ids: list[int], instrument_ids: list[int]) -> None:
    for portfolio in Portfolio.objects.filter(pk__in=portfolio_ids).iterator():
        trades = Transaction.objects.filter(portfolio=portfolio, instrument_id__in=instrument_ids).select_related(
            "instrument")
        portfolio_history_request_for(portfolio=portfolio, transactions=trades)


def portfolios_profiles_changed(*, instrument_ids: list[int]) -> list[int]:
    """New sector and country profiles of these instruments: the allocation of every portfolio holding one
    changed, nothing it has drawn before (its history stays: `since` today). In the caller's transaction."""
    holders = Portfolio.objects.filter(transactions__instrument_id__in=instrument_ids).values_list(
        "pk", flat=True).distinct()
    return portfolio_versions_bump(portfolio_ids=holders, since=timezone.localdate())


def portfolios_fx_changed(*, currencies: list[str]) -> list[int]:
    """New FX rates between these currencies: the data of every portfolio based in one of them that
    holds or trades in another changed. In the caller's transaction; returns those portfolios."""
    affected: set[int] = set()
    for currency in currencies:
        foreign = currency_codes(currency)
        bases = set().union(*(currency_codes(other) for other in currencies if other != currency))
        if not bases:
            continue
        affected |= set(
            Portfolio.objects.filter(base_currency__in=bases)
            .filter(Q(transactions__currency__in=foreign) | Q(transactions__instrument__currency__in=foreign))
            .values_list("pk", flat=True).distinct()
        )
    return portfolio_versions_bump(portfolio_ids=affected)
