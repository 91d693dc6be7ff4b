from decimal import Decimal

from django.conf import settings
from django.db import models

from prices.models import Instrument

VERSION_FIELDS = ("data_version", "history_version")


class PortfolioQuerySet(models.QuerySet):
    """Refuses to move a portfolio to another owner, as Portfolio.save does."""

    def update(self, **kwargs):
        if {"owner", "owner_id"} & kwargs.keys():
            raise ValueError("A portfolio's owner cannot change.")
        return super().update(**kwargs)

    def bulk_update(self, objs, fields, batch_size=None):
        if {"owner", "owner_id"} & set(fields):
            raise ValueError("A portfolio's owner cannot change.")
        return super().bulk_update(objs, fields, batch_size=batch_size)


class Portfolio(models.Model):
    # Never changes once the portfolio exists (save and the queryset refuse it; the admin shows it read-only).
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="portfolios")
    name = models.CharField(max_length=100)
    base_currency = models.CharField(max_length=3, default="USD")
    # An index to compare the portfolio's time-weighted return with (e.g. SPY); optional.
    benchmark = models.ForeignKey(
        Instrument, null=True, blank=True, on_delete=models.SET_NULL, related_name="benchmark_of"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # Bumped in the same transaction as every write to the portfolio's data (portfolio/cache.py): what
    # cached reads and charts are keyed by.
    data_version = models.BigIntegerField(default=0, editable=False)
    # Bumped with data_version except when only today's (not yet final) closes changed: what the cached
    # chart history is keyed by, so an intraday quote refresh leaves every chart's history current.
    history_version = models.BigIntegerField(default=0, editable=False)

    objects = PortfolioQuerySet.as_manager()

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="portfolio_owner_name_uniq"),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        # A portfolio's owner never changes: the warm dashboard reads trust Redis's copy of who owns it
        # (portfolio/access_copy.py), which follows its versions, not its owner. A new portfolio is inserted,
        # never written over an existing row (an instance made with an existing id would be).
        if self._state.adding:
            kwargs.setdefault("force_insert", True)
        elif self._owner_in_db() != self.owner_id:
            raise ValueError("A portfolio's owner cannot change.")
        # The versions only ever move by an UPDATE that adds 1 (portfolio/cache.py): saving a
        # portfolio loaded earlier must never write its older versions back.
        if not self._state.adding and "update_fields" not in kwargs:
            kwargs["update_fields"] = [f.name for f in self._meta.concrete_fields
                                       if not f.primary_key and f.name not in (*VERSION_FIELDS, "owner")]
        super().save(*args, **kwargs)
        self._owner_loaded = self.owner_id

    @classmethod
    def from_db(cls, db, field_names, values):
        portfolio = super().from_db(db, field_names, values)
        if "owner_id" in portfolio.__dict__:  # (deferred: read when a save needs it)
            portfolio._owner_loaded = portfolio.owner_id
        return portfolio

    def _owner_in_db(self) -> int | None:
        if "_owner_loaded" in self.__dict__:
            return self._owner_loaded
        return Portfolio.objects.filter(pk=self.pk).values_list("owner_id", flat=True).first()


class Account(models.Model):
    """Where a portfolio's money and shares sit: a broker or platform account. Cash is kept per account and
    per currency (portfolio/cash.py); `currency` is the account's usual one (what a deposit defaults to)."""

    portfolio = models.ForeignKey(Portfolio, on_delete=models.CASCADE, related_name="accounts")
    name = models.CharField(max_length=100)
    platform = models.CharField(max_length=100, blank=True)  # the broker or platform, free text
    currency = models.CharField(max_length=3)
    # Whether the account holds cash (portfolio/cash.py): then deposits, withdrawals and interest go in and
    # out of it and every trade's money moves its cash. An account that does not — the default account of a
    # portfolio recorded before accounts existed — counts every buy as money brought in and every sell as
    # money taken out, as Folio always had; deposits and withdrawals are refused in it.
    tracks_cash = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]  # the oldest first: it is the portfolio's default account
        constraints = [
            models.UniqueConstraint(fields=["portfolio", "name"], name="account_portfolio_name_uniq"),
        ]

    def __str__(self) -> str:
        return self.name


class TransactionType(models.TextChoices):
    BUY = "BUY", "Buy"
    SELL = "SELL", "Sell"
    # quantity × price is the gross dividend; fee is the tax withheld.
    DIVIDEND = "DIVIDEND", "Dividend"
    # A cost not tied to a trade (custody, account fee): the amount is in `fee`.
    FEE = "FEE", "Fee"
    # quantity is the ratio of new shares per old share: 4 for a 4-for-1, 0.5 for a 1-for-2.
    SPLIT = "SPLIT", "Split"
    # Cash moved into or out of an account, and interest paid on its cash: no instrument; the amount is
    # quantity × price (quantity 1 and price = the amount, like a dividend's total); an interest's fee is
    # the tax withheld.
    DEPOSIT = "DEPOSIT", "Deposit"
    WITHDRAWAL = "WITHDRAWAL", "Withdrawal"
    INTEREST = "INTEREST", "Interest"


# The types that move cash only: they name no instrument.
CASH_TYPES = frozenset({TransactionType.DEPOSIT.value, TransactionType.WITHDRAWAL.value,
                        TransactionType.INTEREST.value})


class Transaction(models.Model):
    portfolio = models.ForeignKey(Portfolio, on_delete=models.CASCADE, related_name="transactions")
    # RESTRICT: an instrument with transactions is never deleted on its own (price history and other
    # portfolios may depend on it); deleting a user deletes their manual instruments along with their
    # portfolios and the transactions in them (PROTECT would refuse that).
    # Null only for the cash types (CASH_TYPES), which name no instrument (the services check it).
    instrument = models.ForeignKey(Instrument, null=True, blank=True, on_delete=models.RESTRICT,
                                   related_name="transactions")
    # Null only for rows written before accounts existed or by bulk tools: they count in the portfolio's
    # default account. RESTRICT: an account with transactions is not deleted on its own (the services
    # refuse it, naming the count), while deleting the portfolio deletes both.
    account = models.ForeignKey(Account, null=True, blank=True, on_delete=models.RESTRICT,
                                related_name="transactions")
    type = models.CharField(max_length=10, choices=TransactionType.choices)
    date = models.DateField()
    quantity = models.DecimalField(max_digits=28, decimal_places=10)
    price = models.DecimalField(max_digits=20, decimal_places=6, default=Decimal("0"))
    fee = models.DecimalField(max_digits=20, decimal_places=6, default=Decimal("0"))
    currency = models.CharField(max_length=3)
    note = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["date", "id"]
        indexes = [
            # Holdings replay a portfolio's transactions in date order.
            models.Index(fields=["portfolio", "date"], name="transaction_portfolio_date_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.quantity} {self.instrument_id} on {self.date}"


class WatchlistItem(models.Model):
    """An instrument a user follows without holding it: priced and refreshed like a held one
    (portfolio/watchlist.py tells prices it is needed)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="watchlist")
    # RESTRICT as for transactions: a followed instrument is not deleted from under its followers.
    instrument = models.ForeignKey(Instrument, on_delete=models.RESTRICT, related_name="watchers")
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["instrument__symbol", "id"]
        constraints = [
            models.UniqueConstraint(fields=["user", "instrument"], name="watchlist_user_instrument_uniq"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} watches {self.instrument_id}"


class KeptReplay(models.Model):
    """A portfolio's transactions replayed (portfolio/kept.py), kept so that a valuation need not replay them
    again. The database adds 1 to `version` (triggers, migration 0009) in the transaction of every write that
    changes what the replay gives; the replay in `state` serves while `state_version` is `version`. Written by
    the read that replayed; a row per portfolio, made by a trigger as the portfolio is.

    No foreign key in the database: checking one would make a read's store wait for the lock of any writer
    holding the portfolio row (a service's select_for_update) until it commits. Django still deletes the row
    with its portfolio; one left by a portfolio deleted by hand is outdated should its id come back.

    The table also has a `generation` column the model leaves out (migration 0011): a number each row is given as
    it is made, and anew when an UPDATE lowers its version (a fixture loaded again: its stored replay dropped too),
    never handed out twice, read only by raw SQL (portfolio/kept.py replay_version_get) — a row made again or set
    back counts its versions from below again, and (generation, version) tells the states apart."""

    portfolio = models.OneToOneField(Portfolio, on_delete=models.CASCADE, primary_key=True, related_name="kept",
                                     db_constraint=False)
    version = models.BigIntegerField(default=0, db_default=0)
    state_version = models.BigIntegerField(null=True)
    state = models.TextField(null=True)

    def __str__(self) -> str:
        return f"replay of portfolio {self.portfolio_id}, version {self.version}"
