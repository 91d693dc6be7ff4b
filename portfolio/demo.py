"""The demo user and portfolio: ~25 real-world symbols with three years of history, priced offline.

Deterministic (a fixed random seed, the simulated provider's deterministic prices) and idempotent:
running it again creates nothing twice and only tops the price history up to today.
"""

import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from portfolio.models import Account, Portfolio, TransactionType
from portfolio.services import TransactionInput, transaction_create
from prices.market_calendar import sessions_between
from prices.models import AssetClass, Instrument, Provider, VerificationStatus
from prices.profiles import instrument_profiles_refresh
from prices.providers.simulated import SimulatedProvider
from prices.services import PricePoint, prices_upsert

DEMO_PORTFOLIO_NAME = "Demo portfolio"
DEMO_YEARS = 3

# symbol, name, asset class, quarterly dividend per share (0 = none)
DEMO_INSTRUMENTS = [
    ("AAPL", "Apple Inc.", AssetClass.STOCK, "0.25"),
    ("MSFT", "Microsoft Corporation", AssetClass.STOCK, "0.83"),
    ("GOOGL", "Alphabet Inc. Class A", AssetClass.STOCK, "0.20"),
    ("AMZN", "Amazon.com, Inc.", AssetClass.STOCK, "0"),
    ("NVDA", "NVIDIA Corporation", AssetClass.STOCK, "0.01"),
    ("META", "Meta Platforms, Inc.", AssetClass.STOCK, "0.50"),
    ("TSLA", "Tesla, Inc.", AssetClass.STOCK, "0"),
    ("JPM", "JPMorgan Chase & Co.", AssetClass.STOCK, "1.40"),
    ("V", "Visa Inc.", AssetClass.STOCK, "0.59"),
    ("JNJ", "Johnson & Johnson", AssetClass.STOCK, "1.30"),
    ("PG", "Procter & Gamble Co.", AssetClass.STOCK, "1.06"),
    ("KO", "The Coca-Cola Company", AssetClass.STOCK, "0.51"),
    ("XOM", "Exxon Mobil Corporation", AssetClass.STOCK, "0.99"),
    ("BRK-B", "Berkshire Hathaway Inc. Class B", AssetClass.STOCK, "0"),
    ("COST", "Costco Wholesale Corporation", AssetClass.STOCK, "1.30"),
    ("SPY", "SPDR S&P 500 ETF Trust", AssetClass.ETF, "1.80"),
    ("VTI", "Vanguard Total Stock Market ETF", AssetClass.ETF, "0.95"),
    ("QQQ", "Invesco QQQ Trust", AssetClass.ETF, "0.70"),
    ("VXUS", "Vanguard Total International Stock ETF", AssetClass.ETF, "0.45"),
    ("BND", "Vanguard Total Bond Market ETF", AssetClass.ETF, "0.60"),
    ("GLD", "SPDR Gold Shares", AssetClass.ETF, "0"),
    ("VNQ", "Vanguard Real Estate ETF", AssetClass.ETF, "0.90"),
    ("SCHD", "Schwab U.S. Dividend Equity ETF", AssetClass.ETF, "0.26"),
    ("BTC", "Bitcoin", AssetClass.CRYPTO, "0"),
    ("ETH", "Ethereum", AssetClass.CRYPTO, "0"),
    ("SOL", "Solana", AssetClass.CRYPTO, "0"),
]
CENT = Decimal("0.01")
# The demo's accounts (the first is the default): the securities at a broker, the coins in a wallet. Each
# starts with a deposit; buys beyond the cash are money brought in (portfolio/cash.py).
BROKER, WALLET = "Brokerage", "Crypto wallet"
DEMO_ACCOUNTS = [(BROKER, "Interactive Brokers", "20000"), (WALLET, "Coinbase", "3000")]
QUARTERLY_INTEREST = Decimal("18.40")  # on the brokerage's cash


@dataclass(frozen=True)
class DemoResult:
    username: str
    password: str
    portfolio_id: int
    transactions_created: int
    prices_written: int


def _plan_transactions(today: date, rng: random.Random) -> list[TransactionInput]:
    """Buys every few months, some trims, quarterly dividends: a believable three-year history."""
    provider = SimulatedProvider()
    start = today - timedelta(days=365 * DEMO_YEARS)
    planned: list[TransactionInput] = []
    for symbol, _name, asset_class, dividend in DEMO_INSTRUMENTS:
        mic = "" if asset_class == AssetClass.CRYPTO else "XNYS"
        sessions = sessions_between(mic=mic, start=start, end=today - timedelta(days=1))
        closes = {bar.date: bar.close for bar in provider.daily_history(symbol, sessions[0], sessions[-1])}
        held = Decimal("0")
        first = rng.randrange(0, 120)
        for index in range(first, len(sessions), rng.choice([42, 63, 84])):
            day = sessions[index]
            price = closes[day]
            budget = Decimal(rng.choice([500, 1000, 1500, 2500]))
            if asset_class == AssetClass.CRYPTO:
                quantity = (budget / price).quantize(Decimal("0.00001"))
            else:
                quantity = max(Decimal(1), (budget / price).quantize(Decimal(1)))
            trim = held > 0 and rng.random() < 0.12
            if trim:
                quantity = (held / 3).quantize(Decimal("0.00001") if asset_class == AssetClass.CRYPTO else Decimal(1))
            if quantity <= 0:
                continue
            tx_type = TransactionType.SELL if trim else TransactionType.BUY
            held += -quantity if trim else quantity
            planned.append(TransactionInput(
                symbol=symbol, type=tx_type, date=day, quantity=quantity, price=price,
                fee=Decimal(rng.choice(["0", "0", "1.00", "4.95"])), currency="USD",
                asset_class=asset_class, provider=Provider.SIMULATED,
                account_name=WALLET if asset_class == AssetClass.CRYPTO else BROKER,
            ))
        if Decimal(dividend) > 0:
            for day in sessions[first + 60 :: 63]:
                shares = sum(
                    (tx.quantity if tx.type == TransactionType.BUY else -tx.quantity)
                    for tx in planned
                    if tx.symbol == symbol and tx.date < day and tx.type != TransactionType.DIVIDEND
                )
                if shares > 0:
                    gross = shares * Decimal(dividend)
                    planned.append(TransactionInput(
                        symbol=symbol, type=TransactionType.DIVIDEND, date=day, quantity=shares,
                        price=Decimal(dividend),
                        fee=(gross * Decimal("0.15")).quantize(CENT, ROUND_HALF_UP),  # withholding tax
                        currency="USD", note="Quarterly dividend", account_name=BROKER,
                    ))
    sessions = sessions_between(mic="XNYS", start=start, end=today - timedelta(days=1))
    for name, _platform, amount in DEMO_ACCOUNTS:
        planned.append(TransactionInput(symbol="", type=TransactionType.DEPOSIT, date=sessions[0], quantity=Decimal(1),
                                        price=Decimal(amount), fee=Decimal(0), currency="USD", account_name=name))
    for day in sessions[30::63]:
        planned.append(TransactionInput(symbol="", type=TransactionType.INTEREST, date=day, quantity=Decimal(1),
                                        price=QUARTERLY_INTEREST, fee=Decimal(0), currency="USD",
                                        note="Interest on cash", account_name=BROKER))
    planned.sort(key=lambda tx: (tx.date, tx.symbol, tx.type))
    return planned


def demo_seed(*, progress: Callable[[int, int], None] | None = None) -> DemoResult:
    """Create (once) the demo user, instruments and portfolio; top its prices up to today."""
    User = get_user_model()
    today = timezone.localdate()
    with transaction.atomic():
        # Staff (not superuser), so the demo shows /monitoring and Flower's numbers too.
        user, created = User.objects.get_or_create(username=settings.DEMO_USERNAME, defaults={"is_staff": True})
        if created:
            user.set_password(settings.DEMO_PASSWORD)
            user.save()
        for symbol, name, asset_class, _ in DEMO_INSTRUMENTS:
            Instrument.objects.get_or_create(
                symbol=symbol,
                owner=None,  # the shared instrument, never a user's manual one of that symbol
                defaults={
                    "name": name, "asset_class": asset_class, "currency": "USD",
                    "exchange_mic": "" if asset_class == AssetClass.CRYPTO else "XNYS",
                    "provider": Provider.SIMULATED, "verification_status": VerificationStatus.VERIFIED,
                },
            )
        portfolio, created = Portfolio.objects.get_or_create(
            owner=user, name=DEMO_PORTFOLIO_NAME, defaults={"base_currency": "USD"}
        )
        created_count = 0
        if created:
            accounts = {name: Account.objects.create(portfolio=portfolio, name=name, platform=platform,
                                                     currency="USD").pk
                        for name, platform, _ in DEMO_ACCOUNTS}
            planned = _plan_transactions(today, random.Random(2026))
            for index, tx in enumerate(planned, start=1):
                transaction_create(portfolio=portfolio, data=replace(tx, account=accounts[tx.account_name]))
                if progress:
                    progress(index, len(planned))
            created_count = len(planned)

    provider = SimulatedProvider()
    written = 0
    start = today - timedelta(days=365 * DEMO_YEARS + 7)
    for instrument in Instrument.objects.filter(symbol__in=[row[0] for row in DEMO_INSTRUMENTS], owner__isnull=True):
        bars = provider.daily_history(instrument.symbol, start, today)
        written += prices_upsert(
            instrument=instrument,
            points=[PricePoint(date=bar.date, close=bar.close, adjusted_close=bar.adjusted_close) for bar in bars],
            source=Provider.SIMULATED,
        )
    # Sector and country for the allocation donuts, from the simulated provider (offline): there at once.
    instrument_profiles_refresh(instrument_ids=Instrument.objects.filter(
        symbol__in=[row[0] for row in DEMO_INSTRUMENTS], owner__isnull=True).values_list("pk", flat=True))
    return DemoResult(
        username=user.username, password=settings.DEMO_PASSWORD, portfolio_id=portfolio.pk,
        transactions_created=created_count, prices_written=written,
    )
