from django.conf import settings
from django.db import models
from django.db.models import Q


class AssetClass(models.TextChoices):
    STOCK = "stock", "Stock"
    ETF = "etf", "ETF"
    FUND = "fund", "Fund"
    CRYPTO = "crypto", "Crypto"
    CASH = "cash", "Cash"
    OTHER = "other", "Other"


def cash_symbol(currency: str) -> str:
    """The reserved symbol of a currency's cash (portfolio/cash.py): the space keeps it out of what a user can
    type (prices.services.SYMBOL_PATTERN), so no transaction ever names it."""
    return f"CASH {currency}"


class Provider(models.TextChoices):
    SIMULATED = "simulated", "Simulated (offline)"
    MANUAL = "manual", "Manual"
    YAHOO = "yahoo", "Yahoo Finance"
    TWELVEDATA = "twelvedata", "Twelve Data"
    COINGECKO = "coingecko", "CoinGecko"
    STOOQ = "stooq", "Stooq"
    ALPHAVANTAGE = "alphavantage", "Alpha Vantage"


class VerificationStatus(models.TextChoices):
    # New symbols start pending; the workers ask the provider and either verify or flag them.
    PENDING = "pending", "Pending verification"
    VERIFIED = "verified", "Verified"
    UNKNOWN = "unknown", "Unknown to provider"


class Instrument(models.Model):
    """A priced thing. Shared instruments (no owner) are facts about the market, one per symbol, priced
    by a provider for everyone who holds them. A manual instrument made by a user's transaction belongs
    to that user (one per owner and symbol), so what one user types never prices another's holdings."""

    symbol = models.CharField(max_length=32, db_index=True)
    name = models.CharField(max_length=200, blank=True)
    asset_class = models.CharField(max_length=10, choices=AssetClass.choices, default=AssetClass.STOCK)
    # ISO 4217, or a minor unit such as GBp for pence-quoted London listings.
    currency = models.CharField(max_length=3, default="USD")
    # ISO 10383 market identifier; drives the market calendar (crypto has none: it trades 24/7).
    exchange_mic = models.CharField(max_length=4, blank=True, default="XNYS")
    provider = models.CharField(max_length=20, choices=Provider.choices, default=Provider.SIMULATED)
    # The provider's own name for it (CoinGecko ids, Stooq's aapl.us); blank means `symbol`.
    provider_symbol = models.CharField(max_length=64, blank=True)
    active = models.BooleanField(default=True)
    verification_status = models.CharField(
        max_length=10, choices=VerificationStatus.choices, default=VerificationStatus.PENDING
    )
    # Set only on manual instruments: the user whose transactions made it, the only one who sees and
    # prices it. Null: shared (provider-priced, or manual instruments staff keep for everyone).
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="instruments"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["symbol"]
        indexes = [models.Index(fields=["provider", "active"], name="instrument_provider_active_idx")]
        constraints = [
            models.UniqueConstraint(fields=["symbol"], condition=Q(owner__isnull=True),
                                    name="instrument_shared_symbol_uniq"),
            models.UniqueConstraint(fields=["owner", "symbol"], condition=Q(owner__isnull=False),
                                    name="instrument_owner_symbol_uniq"),
            # Only a manual instrument can belong to someone: a provider prices the same thing for all.
            models.CheckConstraint(condition=Q(owner__isnull=True) | Q(provider="manual"),
                                   name="instrument_owned_is_manual"),
        ]

    def __str__(self) -> str:
        return self.symbol

    @property
    def quote_symbol(self) -> str:
        return self.provider_symbol or self.symbol


class PriceHistory(models.Model):
    # The unique (instrument, date) constraint doubles as the index for every hot history read
    # (one instrument's closes over a range, or its latest close), so the FK needs no index of its own.
    instrument = models.ForeignKey(
        Instrument, on_delete=models.CASCADE, related_name="prices", db_index=False
    )
    date = models.DateField()
    close = models.DecimalField(max_digits=20, decimal_places=6)
    adjusted_close = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    source = models.CharField(max_length=20, choices=Provider.choices)
    last_updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["instrument", "date"]
        verbose_name_plural = "price history"
        # Every read of price history names its instruments: this one (instrument, date) index serves them
        # all (docs/PERFORMANCE.md, section 4). No other index: each would only slow the refresh's upserts.
        constraints = [
            models.UniqueConstraint(fields=["instrument", "date"], name="pricehistory_instrument_date_uniq"),
        ]

    def __str__(self) -> str:
        return f"{self.instrument_id} {self.date} {self.close}"


class PriceSeries(models.Model):
    """One calendar year of an instrument's closes packed in two binary strings, read whole by the charts.

    A mirror of its PriceHistory rows that the database itself keeps exact: statement triggers on
    prices_pricehistory (migration 0005) re-pack every year a statement wrote, updated or deleted a row
    of, and every later year, in the writer's own transaction, whoever wrote it (prices_upsert, COPY,
    the admin). A year per row keeps a new day's write small (this year's ~3 kB, not ten years').
    Postgres only; see prices/series.py.
    """

    instrument = models.ForeignKey(Instrument, on_delete=models.CASCADE, related_name="price_series",
                                   db_index=False)  # the unique (instrument, year) index serves it
    year = models.SmallIntegerField()
    # Days since 1970-01-01 as big-endian int32, ascending; the closes in whole millionths as big-endian
    # int64, one per day (the stored numeric(20,6) is exact in millionths).
    days = models.BinaryField()
    micros = models.BinaryField()
    # A number no other row has had, given by the database to every INSERT and UPDATE of the row (migration
    # 0009): a chart worker keeps the rows it decoded under it and asks only which revisions changed.
    revision = models.BigIntegerField(default=0, editable=False)

    class Meta:
        verbose_name_plural = "price series"
        constraints = [
            models.UniqueConstraint(fields=["instrument", "year"], name="priceseries_instrument_year_uniq"),
        ]

    def __str__(self) -> str:
        return f"{self.instrument_id} {self.year}"


class LatestClose(models.Model):
    """An instrument's newest stored close and the close before it, read by every valuation of today.

    A mirror of its PriceHistory rows that the database itself keeps exact, as PriceSeries is: statement
    triggers on prices_pricehistory (migration 0008) read the two newest closes again of every instrument a
    statement wrote, updated or deleted a row of, in the writer's own transaction, whoever wrote it. A cold
    dashboard of 500 holdings then joins 500 rows by primary key instead of walking the (instrument, date)
    index once per holding (3.5 ms of Postgres). No row: no close stored. Postgres only (prices.selectors
    reads the price rows elsewhere).
    """

    instrument = models.OneToOneField(Instrument, on_delete=models.CASCADE, primary_key=True,
                                      related_name="latest_close")
    date = models.DateField()
    close = models.DecimalField(max_digits=20, decimal_places=6)  # as PriceHistory.close
    previous_close = models.DecimalField(max_digits=20, decimal_places=6, null=True)  # None: only one close
    previous_date = models.DateField(null=True)  # the previous close's (migration 0011)

    def __str__(self) -> str:
        return f"{self.instrument_id} {self.date} {self.close}"


class FxRate(models.Model):
    """Daily reference rate: 1 `base` = `rate` `quote` (ECB rates via Frankfurter)."""

    base = models.CharField(max_length=3)
    quote = models.CharField(max_length=3)
    date = models.DateField()
    rate = models.DecimalField(max_digits=24, decimal_places=10)
    source = models.CharField(max_length=20, default="frankfurter")
    last_updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["base", "quote", "date"]
        verbose_name = "FX rate"
        constraints = [
            models.UniqueConstraint(fields=["base", "quote", "date"], name="fxrate_pair_date_uniq"),
        ]

    def __str__(self) -> str:
        return f"{self.base}/{self.quote} {self.date} {self.rate}"


class InstrumentProfile(models.Model):
    """What an instrument is exposed to, for allocation by sector, country and region: a company's sector
    and country, or a fund's breakdown by weight. Fetched by the workers from the provider
    (prices/profiles.py), or set by staff in the admin — then `locked`, and the workers leave it alone."""

    instrument = models.OneToOneField(Instrument, on_delete=models.CASCADE, primary_key=True, related_name="profile")
    sector = models.CharField(max_length=100, blank=True)
    industry = models.CharField(max_length=100, blank=True)
    country = models.CharField(max_length=100, blank=True)
    # A fund's breakdown, {"Technology": 0.31, …}: fractions summing to at most 1 (the rest is unknown).
    sector_weights = models.JSONField(default=dict, blank=True)
    country_weights = models.JSONField(default=dict, blank=True)
    source = models.CharField(max_length=20, blank=True)  # the provider's name, or "admin"
    locked = models.BooleanField(default=False, help_text="Edited by hand: the workers never overwrite it.")
    # When the provider last answered (a "does not know it" answer too); null: never asked.
    fetched_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"profile of {self.instrument_id}"
