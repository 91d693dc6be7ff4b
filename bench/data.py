"""Bench data: the database itself, a 500-holding portfolio with 10 years of daily closes (~1.26 M
price rows, written with COPY), and the 2,000 shared instruments of the refresh benchmark with the
portfolios that hold them.

Every portfolio is what a user's is: made with the default account portfolio_create gives it (tracking
cash), and every transaction is in that account — so each trade moves the account's cash as it does for a
user (portfolio/cash.py), and the bench measures the product's own path, cash included.

Deterministic (seeded), so two runs measure the same data. Prices follow the NYSE calendar up to the
last close that should exist now, so nothing is stale and no read queues a refresh behind our back.
"""

from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import psycopg

from bench.env import admin_dsn

SEED = 7
DASHBOARD_USER = "bench"
DASHBOARD_PASSWORD = "bench-pass-1"
REFRESH_USER_PREFIX = "bench-refresh-"
DASH_PREFIX = "DASH"
REFRESH_PREFIX = "RFSH"
# Rows per COPY write: big enough that the per-call cost vanishes, small enough to bound memory.
COPY_CHUNK_ROWS = 100_000
# The dashboard dataset's shape, part of its params: a kept dataset (--reuse-data) of another shape is made
# again. 2: portfolios made as a user's, every transaction in its default account, which tracks cash.
DATASET_LAYOUT = 2
# The transaction columns the COPYs write, in the order of their lines.
TRANSACTION_COLUMNS = ["portfolio_id", "instrument_id", "type", "date", "quantity", "price", "fee", "currency",
                       "note", "created_at", "account_id"]


@dataclass(frozen=True)
class DashboardData:
    user_id: int
    token: str
    portfolio_id: int  # the big one
    small_portfolio_id: int  # same user, few holdings: shows that query counts do not grow
    holdings: int
    small_holdings: int
    price_rows: int
    transactions: int
    sessions: int
    first_date: date
    last_date: date
    seconds: float


@dataclass(frozen=True)
class RefreshData:
    instrument_ids: list[int]
    portfolio_id: int


def database_reset() -> None:
    """Drop and recreate the bench's own database (never another one), then migrate it."""
    from django.core.management import call_command
    from django.db import connections

    dsn, name = admin_dsn()
    if not name.startswith("folio_bench"):
        raise RuntimeError(f"refusing to drop {name!r}: the bench only recreates databases named folio_bench*")
    connections.close_all()
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    call_command("migrate", verbosity=0, interactive=False)


def database_exists() -> bool:
    dsn, name = admin_dsn()
    with psycopg.connect(dsn, autocommit=True) as admin:
        return admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is not None


def _copy(table: str, columns: list[str], lines: list[str]) -> None:
    """COPY text lines into a table, in chunks."""
    from django.db import connection

    with connection.cursor() as cursor:
        sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
        with cursor.copy(sql) as copy:
            for start in range(0, len(lines), COPY_CHUNK_ROWS):
                copy.write("".join(lines[start:start + COPY_CHUNK_ROWS]))


def default_accounts_copy(portfolio_ids: list[int]) -> dict[int, int]:
    """For portfolios written with COPY (no portfolio_create per portfolio): the default account
    portfolio_create gives each (its name, the portfolio's base currency, cash tracked as the model's default
    says), written with COPY too. Portfolio id -> its account's id."""
    from django.db import connection
    from django.utils import timezone

    from portfolio.models import Account, Portfolio
    from portfolio.services import DEFAULT_ACCOUNT_NAME

    tracks = "t" if Account._meta.get_field("tracks_cash").default else "f"
    stamp = timezone.now().isoformat()
    currencies = dict(Portfolio.objects.filter(pk__in=portfolio_ids).values_list("pk", "base_currency"))
    _copy(Account._meta.db_table, ["portfolio_id", "name", "platform", "currency", "tracks_cash", "created_at"],
          [f"{pid}\t{DEFAULT_ACCOUNT_NAME}\t\t{currencies[pid]}\t{tracks}\t{stamp}\n" for pid in portfolio_ids])
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT portfolio_id, id FROM {Account._meta.db_table} WHERE portfolio_id = ANY(%s)",
                       [portfolio_ids])
        return dict(cursor.fetchall())


def _meta_get() -> dict | None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS bench_dataset (params jsonb NOT NULL, info jsonb NOT NULL)")
        cursor.execute("SELECT params, info FROM bench_dataset")
        row = cursor.fetchone()
    if row is None:
        return None
    params, info = (json.loads(v) if isinstance(v, str) else v for v in row)
    return {"params": params, "info": info}


def _meta_set(params: dict, info: dict) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS bench_dataset (params jsonb NOT NULL, info jsonb NOT NULL)")
        cursor.execute("DELETE FROM bench_dataset")
        cursor.execute("INSERT INTO bench_dataset VALUES (%s, %s)", [json.dumps(params), json.dumps(info)])


def dashboard_dataset(*, holdings: int, years: int, tx_per_holding: int, small_holdings: int,
                      reuse: bool) -> DashboardData:
    """The dashboard portfolio; kept from an earlier run only when asked and of the same sizes."""
    params = {"holdings": holdings, "years": years, "tx_per_holding": tx_per_holding,
              "small_holdings": small_holdings, "seed": SEED, "layout": DATASET_LAYOUT}
    meta = _meta_get() if reuse else None
    if meta and meta["params"] == params:
        info = meta["info"]
        info["first_date"], info["last_date"] = date.fromisoformat(info["first_date"]), date.fromisoformat(
            info["last_date"])
        return DashboardData(**{**info, "seconds": 0.0})
    data = _dashboard_generate(holdings=holdings, years=years, tx_per_holding=tx_per_holding,
                               small_holdings=small_holdings)
    info = {k: (v.isoformat() if isinstance(v, date) else v) for k, v in data.__dict__.items() if k != "seconds"}
    _meta_set(params, info)
    return data


def _dashboard_generate(*, holdings: int, years: int, tx_per_holding: int, small_holdings: int) -> DashboardData:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.utils import timezone
    from rest_framework.authtoken.models import Token

    from portfolio.services import account_default_get, portfolio_create
    from prices.market_calendar import last_expected_close_date, sessions_between
    from prices.models import AssetClass, Instrument, PriceHistory, PriceSeries, VerificationStatus
    from prices.services import cash_instruments_get_or_create

    started = time.monotonic()
    now = timezone.now()
    rng = np.random.default_rng(SEED)
    user_model = get_user_model()
    user_model.objects.filter(username=DASHBOARD_USER).delete()
    Instrument.objects.filter(symbol__startswith=DASH_PREFIX).delete()
    user = user_model.objects.create_user(DASHBOARD_USER, password=DASHBOARD_PASSWORD)
    token = Token.objects.create(user=user).key
    # As a user's: each with its default account, which tracks cash.
    big = portfolio_create(owner=user, name=f"Bench {holdings}", base_currency="USD")
    small = portfolio_create(owner=user, name="Bench small", base_currency="USD")
    # The dollar's cash instrument, which the first read of a portfolio holding dollars makes (shared by every
    # portfolio: any real database has it): made here, so that no measured read writes it.
    cash_instruments_get_or_create(currencies=["USD"])

    last = last_expected_close_date(mic="XNYS", now=now)
    sessions = sessions_between(mic="XNYS", start=last - timedelta(days=round(365.25 * years)) + timedelta(days=1),
                                end=last)
    n_days = len(sessions)
    day_text = [d.isoformat() for d in sessions]
    instruments = Instrument.objects.bulk_create([
        Instrument(symbol=f"{DASH_PREFIX}{k:04d}", name=f"Bench holding {k}",
                   asset_class=AssetClass.ETF if k % 5 == 0 else AssetClass.STOCK, currency="USD",
                   exchange_mic="XNYS", provider="simulated", verification_status=VerificationStatus.VERIFIED)
        for k in range(holdings)
    ])

    # Geometric random walks: ~7 %/year drift, ~1.5 % daily volatility, from 20-500.
    steps = rng.normal(0.0003, 0.015, size=(holdings, n_days))
    closes = rng.uniform(20, 500, size=(holdings, 1)) * np.exp(np.cumsum(steps, axis=1))
    updated = (now - timedelta(days=1)).isoformat()
    price_lines: list[str] = []
    for k, instrument in enumerate(instruments):
        prefix = f"{instrument.pk}\t"
        suffix = f"\t\\N\tsimulated\t{updated}\n"
        price_lines.extend(f"{prefix}{day}\t{close:.4f}{suffix}"
                           for day, close in zip(day_text, closes[k].tolist(), strict=True))
    _copy(PriceHistory._meta.db_table, ["instrument_id", "date", "close", "adjusted_close", "source", "last_updated"],
          price_lines)
    price_rows = len(price_lines)
    del price_lines

    tx_lines = _transactions(rng=rng, portfolio_id=big.pk, account_id=account_default_get(portfolio=big).pk,
                             instruments=instruments, closes=closes, day_text=day_text, per_holding=tx_per_holding,
                             created=now.isoformat())
    tx_lines += _transactions(rng=rng, portfolio_id=small.pk, account_id=account_default_get(portfolio=small).pk,
                              instruments=instruments[:small_holdings], closes=closes, day_text=day_text,
                              per_holding=tx_per_holding, created=now.isoformat())
    _copy("portfolio_transaction", TRANSACTION_COLUMNS, tx_lines)
    with connection.cursor() as cursor:
        # Fresh statistics and visibility map, as autovacuum would leave a table this size: the price rows,
        # and their packed series, which the COPY's triggers wrote (a kept chart read is an index-only scan of
        # the series' unique index: on pages the visibility map does not mark, it visits the rows too).
        cursor.execute(f"VACUUM ANALYZE {PriceHistory._meta.db_table}")
        cursor.execute(f"VACUUM ANALYZE {PriceSeries._meta.db_table}")
        cursor.execute("VACUUM ANALYZE portfolio_transaction")
    first = min(date.fromisoformat(line.split("\t")[3]) for line in tx_lines)
    return DashboardData(
        user_id=user.pk, token=token, portfolio_id=big.pk, small_portfolio_id=small.pk, holdings=holdings,
        small_holdings=small_holdings, price_rows=price_rows,
        transactions=sum(1 for line in tx_lines if line.startswith(f"{big.pk}\t")), sessions=n_days,
        first_date=first, last_date=last, seconds=round(time.monotonic() - started, 2),
    )


def _transactions(*, rng: np.random.Generator, portfolio_id: int, account_id: int, instruments: list,
                  closes: np.ndarray, day_text: list[str], per_holding: int, created: str) -> list[str]:
    """A first buy within the first year, then buys, partial sells and dividends on later sessions, all in
    the account `account_id`. Sells take a third of the position, so every holding stays open. In an account
    that tracks cash, sells and dividends bring cash in and buys spend it (what it cannot cover is an
    implicit deposit); what is left at the end is a holding of cash (the default sizes leave some)."""
    n_days = len(day_text)
    cycle = ["BUY", "SELL", "DIVIDEND", "BUY"]
    lines = []
    for k, instrument in enumerate(instruments):
        first = int(rng.integers(0, min(250, n_days)))
        later = sorted(rng.choice(np.arange(first + 1, n_days), size=per_holding - 1, replace=False).tolist())
        held = 0
        for number, day in enumerate([first, *later]):
            kind = "BUY" if number == 0 else cycle[(number - 1) % len(cycle)]
            close = float(closes[k, day])
            if kind == "BUY":
                quantity, price = int(rng.integers(10, 200)), close
                held += quantity
            elif kind == "SELL":
                quantity, price = max(1, held // 3), close
                held -= quantity
            else:
                quantity, price = held, close * 0.005  # a dividend of 0.5 % of the price per share
            lines.append(f"{portfolio_id}\t{instrument.pk}\t{kind}\t{day_text[day]}\t{quantity}\t{price:.4f}\t"
                         f"{1 if kind != 'DIVIDEND' else 0}\tUSD\t\t{created}\t{account_id}\n")
    return lines


def refresh_dataset(*, instruments: int) -> RefreshData:
    """`instruments` Yahoo-priced instruments, all held by one portfolio (the shared-portfolios
    variant adds its portfolios later). Replaces whatever an earlier run left."""
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from portfolio.services import account_default_get, portfolio_create
    from prices.models import Instrument, PriceHistory

    user_model = get_user_model()
    user_model.objects.filter(username__startswith=REFRESH_USER_PREFIX).delete()
    PriceHistory.objects.filter(instrument__symbol__startswith=REFRESH_PREFIX).delete()
    Instrument.objects.filter(symbol__startswith=REFRESH_PREFIX).delete()
    created = Instrument.objects.bulk_create([
        Instrument(symbol=f"{REFRESH_PREFIX}{k:05d}", name=f"Refresh {k}", currency="USD", exchange_mic="XNYS",
                   provider="yahoo")
        for k in range(instruments)
    ])
    owner = user_model.objects.create_user(f"{REFRESH_USER_PREFIX}one", password=None)
    portfolio = portfolio_create(owner=owner, name="Refresh one", base_currency="USD")
    account = account_default_get(portfolio=portfolio).pk
    day = (timezone.now().date() - timedelta(days=30)).isoformat()
    stamp = timezone.now().isoformat()
    _copy("portfolio_transaction", TRANSACTION_COLUMNS,
          [f"{portfolio.pk}\t{i.pk}\tBUY\t{day}\t10\t100\t0\tUSD\t\t{stamp}\t{account}\n" for i in created])
    return RefreshData(instrument_ids=[i.pk for i in created], portfolio_id=portfolio.pk)


def shared_portfolios_add(*, instrument_ids: list[int], portfolios: int, holdings_each: int,
                          portfolios_per_user: int = 100) -> dict:
    """`portfolios` portfolios, each holding `holdings_each` of the instruments, spread so that every
    instrument is held by about the same number of them, each with its default account holding its
    transactions (default_accounts_copy). Users share one password hash (no hashing 10,000 times)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.db import connection
    from django.utils import timezone

    started = time.monotonic()
    user_model = get_user_model()
    password = make_password(None)
    users = user_model.objects.bulk_create([
        user_model(username=f"{REFRESH_USER_PREFIX}{n:05d}", password=password)
        for n in range(-(-portfolios // portfolios_per_user))
    ])
    stamp = timezone.now().isoformat()
    buffer = io.StringIO()
    for n in range(portfolios):
        buffer.write(f"{users[n // portfolios_per_user].pk}\tShared {n}\tUSD\t{stamp}\t0\t0\n")
    # The versions have no database default (Django fills them in): COPY must name them.
    _copy("portfolio_portfolio", ["owner_id", "name", "base_currency", "created_at", "data_version",
                                  "history_version"],
          [buffer.getvalue()])
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM portfolio_portfolio WHERE name LIKE 'Shared %%' AND owner_id = ANY(%s) "
                       "ORDER BY id", [[u.pk for u in users]])
        portfolio_ids = [row[0] for row in cursor.fetchall()]
    accounts = default_accounts_copy(portfolio_ids)
    day = (timezone.now().date() - timedelta(days=30)).isoformat()
    count = len(instrument_ids)
    lines = [
        f"{pid}\t{instrument_ids[(n * holdings_each + j) % count]}\tBUY\t{day}\t10\t100\t0\tUSD\t\t{stamp}\t"
        f"{accounts[pid]}\n"
        for n, pid in enumerate(portfolio_ids) for j in range(holdings_each)
    ]
    _copy("portfolio_transaction", TRANSACTION_COLUMNS, lines)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE portfolio_account")
        cursor.execute("ANALYZE portfolio_transaction")
    return {"portfolios": len(portfolio_ids), "transactions": len(lines), "users": len(users),
            "seconds": round(time.monotonic() - started, 2)}
