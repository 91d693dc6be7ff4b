"""Dashboard data endpoints: exact values on a hand-computed portfolio, constant queries, caching."""

import json
from datetime import date, timedelta
from decimal import Decimal as D

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.renderers import JSONRenderer

from portfolio.cache import portfolio_version_bump
from portfolio.models import Transaction
from prices.models import Instrument, PriceHistory
from tests.factories import (
    InstrumentFactory,
    PortfolioFactory,
    PriceFactory,
    TransactionFactory,
    default_account_of,
)

pytestmark = pytest.mark.django_db


def closed_yesterday_and_today(today, *closes) -> None:
    """Each (instrument, yesterday's close, today's close)."""
    for instrument, previous, latest in closes:
        PriceFactory(instrument=instrument, date=today - timedelta(days=1), close=D(previous))
        PriceFactory(instrument=instrument, date=today, close=D(latest))


def dashboard_read(api, portfolio) -> tuple[dict, dict]:
    """The dashboard's totals, and its holdings rows by symbol."""
    initial = api.get(f"/api/dashboard-initial-data/{portfolio.pk}/").json()
    rows = {row["symbol"]: row for row in api.get(f"/api/dashboard-holdings-data/{portfolio.pk}/").json()["holdings"]}
    return initial, rows


@pytest.fixture
def priced(portfolio):
    """AAPL: 10 @ 100 + 1 fee, 4 sold @ 150 → 6 left costing 600.60; closes 110 then 120.
    MSFT: 2 @ 300; closes 300 then 310.50. Latest closes are today's: nothing is stale."""
    today = timezone.localdate()
    aapl, msft = InstrumentFactory(symbol="AAPL", exchange_mic=""), InstrumentFactory(symbol="MSFT", exchange_mic="")
    TransactionFactory(portfolio=portfolio, instrument=aapl, quantity=D("10"), price=D("100"), fee=D("1"),
                       date=date(2024, 1, 2))
    TransactionFactory(portfolio=portfolio, instrument=aapl, type="SELL", quantity=D("4"), price=D("150"),
                       date=date(2024, 2, 1))
    TransactionFactory(portfolio=portfolio, instrument=msft, quantity=D("2"), price=D("300"), date=date(2024, 1, 2))
    for instrument, previous, latest in ((aapl, "110", "120"), (msft, "300", "310.50")):
        PriceFactory(instrument=instrument, date=today - timedelta(days=1), close=D(previous))
        PriceFactory(instrument=instrument, date=today, close=D(latest))
    return portfolio


def test_initial_data_values(api, priced):
    body = api.get(f"/api/dashboard-initial-data/{priced.pk}/").json()
    account = default_account_of(priced)
    assert body == {
        "portfolio": {"id": priced.pk, "name": "Main", "base_currency": "USD"},
        "total_value": "1341.00",  # 6 × 120 + 2 × 310.50
        "total_cost": "1200.60",
        "unrealized_gain": "140.40",
        "unrealized_gain_percent": "11.69",  # 140.40 / 1200.60
        "realized_gain": "199.60",  # 600 − 400.40
        "dividends": "0.00",
        "fees": "1.00",
        "day_change": "81.00",  # 6 × 10 + 2 × 10.50
        "day_change_percent": "6.43",  # 81 / (1341 − 81)
        "holdings_count": 2,
        "prices_as_of": timezone.localdate().isoformat(),
        "stale_count": 0,
        "unpriced_count": 0,
        "fx_missing_count": 0,
        "providers_failing": [],
        "unknown_symbols": [],
        "history": {"pending": [], "done": 0, "total": 0},
        # Its default account does not track cash (recorded before accounts): all of it is holdings.
        "accounts": [{"id": account.pk, "name": "Default", "platform": "", "currency": "USD", "tracks_cash": False,
                      "cash": [], "cash_value": "0.00", "holdings_value": "1341.00", "total_value": "1341.00"}],
    }


def test_holdings_data_values(api, priced):
    rows = api.get(f"/api/dashboard-holdings-data/{priced.pk}/").json()["holdings"]
    assert [r["symbol"] for r in rows] == ["AAPL", "MSFT"]  # largest market value first
    assert rows[0] == {
        "instrument_id": Instrument.objects.get(symbol="AAPL").pk,
        "symbol": "AAPL", "name": "AAPL Inc.", "asset_class": "stock", "currency": "USD", "provider": "simulated",
        "quantity": "6", "average_cost": "100.10", "price": "120", "market_value": "720.00",
        "cost_basis": "600.60", "unrealized_gain": "119.40", "unrealized_gain_percent": "19.88",
        "day_change": "60.00", "weight": "0.536913", "price_as_of": timezone.localdate().isoformat(),
        "stale": False, "unknown": False, "fx_missing": False,
    }
    assert (rows[1]["market_value"], rows[1]["weight"], rows[1]["price"]) == ("621.00", "0.463087", "310.5")


def test_stale_prices_are_counted_and_flagged(api, portfolio):
    old = InstrumentFactory(symbol="OLD")
    TransactionFactory(portfolio=portfolio, instrument=old)
    PriceFactory(instrument=old, date=date(2024, 3, 4), close=D("5"))
    initial = api.get(f"/api/dashboard-initial-data/{portfolio.pk}/").json()
    row = api.get(f"/api/dashboard-holdings-data/{portfolio.pk}/").json()["holdings"][0]
    assert (initial["stale_count"], initial["prices_as_of"]) == (1, "2024-03-04")
    assert (row["stale"], row["price_as_of"], row["price"]) == (True, "2024-03-04", "5")


def test_responses_are_cached_until_the_portfolio_changes(api, priced, django_capture_on_commit_callbacks):
    url = f"/api/dashboard-initial-data/{priced.pk}/"
    first = api.get(url).json()
    PriceHistory.objects.filter(instrument__symbol="AAPL", date=timezone.localdate()).update(close=D("1000"))
    assert api.get(url).json() == first  # a direct DB write bumps nothing: still the cached answer
    with django_capture_on_commit_callbacks(execute=True):
        api.post(f"/api/portfolios/{priced.pk}/transactions/", {
            "symbol": "MSFT", "type": "BUY", "date": "2024-03-01", "quantity": "1", "price": "300",
            "currency": "USD"}, format="json")
    fresh = api.get(url).json()
    assert fresh["total_value"] == "6931.50"  # 6 × 1000 + 3 × 310.50
    assert fresh["holdings_count"] == 2


def _portfolio_of(size: int, owner):
    """A portfolio of `size` holdings written in bulk: half with two closes, half hand-priced (valued at
    their trade, 10, with no close), a SPLIT of 1 on every one of them."""
    portfolio = PortfolioFactory(owner=owner)
    today = timezone.localdate()
    instruments = Instrument.objects.bulk_create(
        [Instrument(symbol=f"B{size}N{n}", currency="USD", exchange_mic="") for n in range(size)])
    Transaction.objects.bulk_create([
        Transaction(portfolio=portfolio, instrument=i, type=kind, date=day, quantity=D("1"),
                    price=D("10") if kind == "BUY" else D("0"), currency="USD")
        for i in instruments for kind, day in (("BUY", date(2024, 1, 2)), ("SPLIT", date(2024, 1, 3)))])
    PriceHistory.objects.bulk_create([
        PriceHistory(instrument=i, date=today - timedelta(days=d), close=D("11"), source="simulated")
        for i in instruments[: size // 2] for d in (0, 1)])
    return portfolio


def test_queries_do_not_grow_with_holdings(api, user):
    api.get("/api/portfolios/")  # the token's user is cached from here on, for both sizes alike
    counts = {}
    for size in (6, 500):
        portfolio = _portfolio_of(size, user)
        with CaptureQueriesContext(connection) as cold:
            initial = api.get(f"/api/dashboard-initial-data/{portfolio.pk}/").json()
        with CaptureQueriesContext(connection) as warm:
            holdings = api.get(f"/api/dashboard-holdings-data/{portfolio.pk}/").json()
        assert initial["holdings_count"] == size and len(holdings["holdings"]) == size
        assert initial["total_value"] == f"{(11 + 10) * size // 2}.00"
        assert initial["unpriced_count"] == 0
        portfolio_version_bump(portfolio_id=portfolio.pk)  # answers outdated (as a price refresh does), not the replay
        with CaptureQueriesContext(connection) as kept:
            again = api.get(f"/api/dashboard-initial-data/{portfolio.pk}/").json()
        assert again == initial
        counts[size] = (len(cold), len(warm), len(kept))
    assert counts[6] == counts[500]
    cold_queries, warm_queries, kept_queries = counts[6]
    # Cold: owner and version, the kept replay's version with the portfolio and its accounts, the transactions,
    # their instruments and closes, the replay kept (a savepoint around it here, in the test's transaction), the
    # calendar's look-up. From the kept replay: no transactions read, nothing kept. Warm: none (the token's user,
    # the owner and version — as this process read them with the first answer, confirmed by their copy — and the
    # answer come from Redis).
    assert (cold_queries, kept_queries, warm_queries) == (8, 4, 0)


@pytest.mark.parametrize("endpoint", ["dashboard-initial-data", "dashboard-holdings-data"])
def test_another_users_dashboard_is_404(api, foreign_portfolio, endpoint):
    assert api.get(f"/api/{endpoint}/{foreign_portfolio.pk}/").status_code == 404


def test_a_hand_priced_holding_shows_its_trade_price_and_date(api, portfolio):
    # given a hand-priced instrument bought twice, without any stored close
    art = InstrumentFactory(symbol="ART", provider="manual", exchange_mic="")
    today = timezone.localdate()
    TransactionFactory(portfolio=portfolio, instrument=art, date=today - timedelta(days=9), quantity=D("2"),
                       price=D("142.90"), fee=D("1.60"))
    TransactionFactory(portfolio=portfolio, instrument=art, date=today - timedelta(days=3), quantity=D("2"),
                       price=D("136.60"), fee=D("1.60"))

    initial = api.get(f"/api/dashboard-initial-data/{portfolio.pk}/").json()
    row = api.get(f"/api/dashboard-holdings-data/{portfolio.pk}/").json()["holdings"][0]

    # the latest trade prices the whole position: 4 × 136.60, never 0
    assert (row["price"], row["price_as_of"], row["market_value"], row["cost_basis"], row["unrealized_gain"]) == (
        "136.6", (today - timedelta(days=3)).isoformat(), "546.40", "562.20", "-15.80")
    assert row["stale"] is True  # older than yesterday's close of a 24/7 calendar: flagged with its date
    assert (initial["total_value"], initial["unpriced_count"], initial["day_change"]) == ("546.40", 0, None)


def test_an_unchanged_day_is_a_change_of_zero_percent(api, portfolio):
    aaa = InstrumentFactory(symbol="AAA", exchange_mic="")
    today = timezone.localdate()
    TransactionFactory(portfolio=portfolio, instrument=aaa, date=today - timedelta(days=5), quantity=D("10"),
                       price=D("100"))
    PriceFactory(instrument=aaa, date=today - timedelta(days=1), close=D("100"))
    PriceFactory(instrument=aaa, date=today, close=D("100"))

    initial = api.get(f"/api/dashboard-initial-data/{portfolio.pk}/").json()

    # 10 × (100 − 100) = 0.00 of the 1,000.00 held yesterday: 0 %, not "no percentage"
    assert (initial["day_change"], initial["day_change_percent"]) == ("0.00", "0.00")


def test_shares_bought_today_count_in_the_day_change_from_their_price(api, portfolio):
    aaa, bbb = InstrumentFactory(symbol="AAA", exchange_mic=""), InstrumentFactory(symbol="BBB", exchange_mic="")
    today = timezone.localdate()
    # AAA: none held yesterday; 10 bought today at 100 (+1 fee); closes 95 yesterday, 105 today
    TransactionFactory(portfolio=portfolio, instrument=aaa, date=today, quantity=D("10"), price=D("100"), fee=D("1"))
    # BBB: 4 held since last week; 2 more bought today at 52, 1 sold today at 49; closes 50 then 51
    TransactionFactory(portfolio=portfolio, instrument=bbb, date=today - timedelta(days=7), quantity=D("4"),
                       price=D("40"))
    TransactionFactory(portfolio=portfolio, instrument=bbb, date=today, quantity=D("2"), price=D("52"))
    TransactionFactory(portfolio=portfolio, instrument=bbb, type="SELL", date=today, quantity=D("1"), price=D("49"))
    closed_yesterday_and_today(today, (aaa, "95", "105"), (bbb, "50", "51"))

    initial, rows = dashboard_read(api, portfolio)

    # AAA: 10 × (105 − 100) = 50, not 10 × (105 − 95) = 100 as if held yesterday (the fee is no price move)
    # BBB: the 3 held since yesterday 3 × (51 − 50) = 3, the one sold at 49: −1, the 2 bought at 52: 2 × (51 − 52)
    # = −2; so 0 (not 5 × (51 − 50) = 5): worth 255 from 200 held and 104 − 49 = 55 put in
    assert (rows["AAA"]["day_change"], rows["BBB"]["day_change"]) == ("50.00", "0.00")
    # 50.00 of a day's start worth 1,050 + 255 − 50 = 1,255: yesterday's 200 and today's 1,000 + 55 put in
    assert (initial["day_change"], initial["day_change_percent"]) == ("50.00", "3.98")


def test_a_realized_gain_is_rounded_half_even_once(api, portfolio):
    # given a sell whose realized gain is exactly 2.675 (float64 would make it 2.67499999…)
    aaa = InstrumentFactory(symbol="AAA", exchange_mic="")
    TransactionFactory(portfolio=portfolio, instrument=aaa, date=date(2024, 1, 2), quantity=D("1"), price=D("10"))
    TransactionFactory(portfolio=portfolio, instrument=aaa, type="SELL", date=date(2024, 1, 3), quantity=D("1"),
                       price=D("12.675"))

    initial = api.get(f"/api/dashboard-initial-data/{portfolio.pk}/").json()

    assert (initial["realized_gain"], initial["total_value"], initial["holdings_count"]) == ("2.68", "0.00", 0)


def test_two_holdings_of_one_symbol_are_told_apart_and_each_link_opens_its_own(api, user, portfolio):
    # given the user's own manual KO made first (the lower id) and the shared KO, both held, worth the same
    today = timezone.localdate()
    manual = InstrumentFactory(symbol="KO", owner=user, provider="manual", name="My KO", exchange_mic="")
    shared = InstrumentFactory(symbol="KO", exchange_mic="")
    assert manual.pk < shared.pk
    for instrument, bought in ((shared, date(2024, 1, 2)), (manual, date(2024, 1, 3))):  # the shared one first
        TransactionFactory(portfolio=portfolio, instrument=instrument, quantity=D("5"), price=D("30"), date=bought)
        PriceFactory(instrument=instrument, date=today, close=D("50"))

    # when the holdings are read
    rows = api.get(f"/api/dashboard-holdings-data/{portfolio.pk}/").json()["holdings"]

    # then each KO is a row of its own, carrying its instrument's id and provider
    assert sorted((r["instrument_id"], r["symbol"], r["provider"], r["market_value"]) for r in rows) == [
        (manual.pk, "KO", "manual", "250.00"), (shared.pk, "KO", "simulated", "250.00")]

    # and the link the table makes (/instruments/KO/?instrument=<id>) opens each its own page and prices,
    # where the symbol alone opens the user's manual one
    web = Client()
    web.force_login(user)
    assert "priced by Manual" in web.get("/instruments/KO/").content.decode()
    for instrument, priced_by in ((manual, "Manual"), (shared, "Simulated")):
        page = web.get(f"/instruments/KO/?instrument={instrument.pk}").content.decode()
        assert f"priced by {priced_by}" in page
        assert f"/api/instruments/KO/prices/?instrument={instrument.pk}" in page
        prices = api.get(f"/api/instruments/KO/prices/?instrument={instrument.pk}&start={today}").json()
        assert (prices["provider"], prices["prices"][0]["close"]) == (instrument.provider, "50.000000")
    # an id that is not one of the two the symbol names is no page at all, a malformed one a 400 naming it
    other = InstrumentFactory(symbol="PEP")
    assert web.get(f"/instruments/KO/?instrument={other.pk}").status_code == 404
    assert web.get("/instruments/KO/?instrument=x").status_code == 404
    assert api.get(f"/api/instruments/KO/prices/?instrument={other.pk}").status_code == 404
    answer = api.get("/api/instruments/KO/prices/?instrument=x")
    assert answer.status_code == 400 and "instrument" in answer.json()


def test_the_holdings_answer_is_exactly_what_the_api_renderer_writes(api, user, portfolio):
    # given holdings whose names need escaping (quote, backslash, a control character, the line separators
    # JavaScript refuses raw) or none (non-ASCII), one priced, one never priced (nulls), one unknown to its provider
    today = timezone.localdate()
    odd = InstrumentFactory(symbol="ODD", name='Quote " back \\ tab \t sep \u2028 par \u2029 ünï €', exchange_mic="")
    unpriced = InstrumentFactory(symbol="NONE", name="Never priced", currency="CHF", exchange_mic="")
    unknown = InstrumentFactory(symbol="WHO", name="Unknown", verification_status="unknown", exchange_mic="")
    TransactionFactory(portfolio=portfolio, instrument=odd, quantity=D("1.50"), price=D("10"), fee=D("0.1"))
    TransactionFactory(portfolio=portfolio, instrument=unpriced, quantity=D("3"), price=D("0"), currency="CHF")
    TransactionFactory(portfolio=portfolio, instrument=unknown, quantity=D("2"), price=D("7"))
    PriceFactory(instrument=odd, date=today - timedelta(days=1), close=D("11"))
    PriceFactory(instrument=odd, date=today, close=D("12.345"))

    # when the holdings are read (written directly as JSON, not by the renderer)
    body = api.get(f"/api/dashboard-holdings-data/{portfolio.pk}/").content

    # then they are the renderer's bytes for the same rows, escapes included
    assert JSONRenderer().render(json.loads(body)) == body
    assert b"\\u2028" in body and b"\\u2029" in body and "ünï €".encode() in body
    rows = {row["symbol"]: row for row in json.loads(body)["holdings"]}
    assert rows["ODD"]["name"] == odd.name
    assert {k: rows["ODD"][k] for k in ("quantity", "price", "market_value", "cost_basis", "average_cost",
                                        "unrealized_gain", "unrealized_gain_percent", "day_change", "stale")} == {
        "quantity": "1.5", "price": "12.345", "market_value": "18.52", "cost_basis": "15.10", "average_cost": "10.07",
        "unrealized_gain": "3.42", "unrealized_gain_percent": "22.63", "day_change": "2.02", "stale": False}
    assert {k: rows["NONE"][k] for k in ("price", "market_value", "unrealized_gain", "weight", "price_as_of",
                                         "day_change", "stale", "unknown")} == {
        "price": None, "market_value": None, "unrealized_gain": None, "weight": None, "price_as_of": None,
        "day_change": None, "stale": True, "unknown": False}
    assert (rows["WHO"]["unknown"], rows["WHO"]["price"], rows["WHO"]["instrument_id"]) == (True, "7", unknown.pk)


def test_a_percentage_of_more_than_26_whole_digits_is_written_in_full(api, portfolio):
    # given shares received for nothing but a 0.0001 fee, now worth 10^25: a gain of ~10^31 % of their cost
    gift = InstrumentFactory(symbol="GIFT", exchange_mic="")
    TransactionFactory(portfolio=portfolio, instrument=gift, quantity=D("1000000000000"), price=D("0"),
                       fee=D("0.0001"), date=date(2024, 1, 2))
    PriceFactory(instrument=gift, date=timezone.localdate(), close=D("10000000000000"))

    initial = api.get(f"/api/dashboard-initial-data/{portfolio.pk}/")
    holdings = api.get(f"/api/dashboard-holdings-data/{portfolio.pk}/")

    # then both answer, the percentage with all its digits and its cents, as percent_format writes any (the
    # watchlist's), where the default context's 28 digits cannot round it to cents
    assert initial.status_code == holdings.status_code == 200
    row = holdings.json()["holdings"][0]
    assert (row["cost_basis"], row["market_value"]) == ("0.00", "10000000000000000000000000.00")
    # (10^25 − 0.0001 is 10^25 in 28 digits, and 10^25 / 0.0001 × 100 is 10^31: 32 digits)
    assert initial.json()["unrealized_gain_percent"] == row["unrealized_gain_percent"] == f"1{'0' * 31}.00"


def test_a_position_sold_out_today_counts_in_the_day_change_and_a_deposit_moves_no_price_date(api, portfolio):
    # AAA: 10 held since last week; closes 100 yesterday, 105 today; all 10 sold today at 110. BBB: 10 held since
    # last week; closes 50 yesterday, 51 today; 4 of them sold today at 55. CCC: bought and sold today, no close.
    aaa, bbb, ccc = (InstrumentFactory(symbol=symbol, exchange_mic="") for symbol in ("AAA", "BBB", "CCC"))
    today = timezone.localdate()
    for instrument, price in ((aaa, "90"), (bbb, "40")):
        TransactionFactory(portfolio=portfolio, instrument=instrument, date=today - timedelta(days=7),
                           quantity=D("10"), price=D(price))
    TransactionFactory(portfolio=portfolio, instrument=aaa, type="SELL", date=today, quantity=D("10"), price=D("110"))
    TransactionFactory(portfolio=portfolio, instrument=bbb, type="SELL", date=today, quantity=D("4"), price=D("55"))
    TransactionFactory(portfolio=portfolio, instrument=ccc, date=today, quantity=D("3"), price=D("20"))
    TransactionFactory(portfolio=portfolio, instrument=ccc, type="SELL", date=today, quantity=D("3"), price=D("21.5"))
    closed_yesterday_and_today(today, (aaa, "100", "105"), (bbb, "50", "51"))

    initial, rows = dashboard_read(api, portfolio)

    # BBB, partly sold: 6 × (51 − 50) + 4 × (55 − 50) = 26; AAA, sold out: 10 × (110 − 100) = 100, no longer listed;
    # CCC, bought and sold today: 3 × (21.5 − 20) = 4.50
    assert list(rows) == ["BBB"] and rows["BBB"]["day_change"] == "26.00"
    assert initial["day_change"] == "130.50"
    # of yesterday's value and today's money in: 306 (BBB's 6 × 51) − 130.50
    assert initial["day_change_percent"] == "74.36"


def test_prices_as_of_is_the_newest_price_date_of_the_holdings_not_the_day_cash_last_moved(api):
    today = timezone.localdate()
    last_close = today - timedelta(days=10)
    aaa = InstrumentFactory(symbol="AAA")
    PriceFactory(instrument=aaa, date=last_close, close=D("50"))
    pid = api.post("/api/portfolios/", {"name": "Main", "base_currency": "USD"}, format="json").json()["id"]
    url = f"/api/portfolios/{pid}/transactions/"
    for body in ({"type": "BUY", "symbol": "AAA", "date": (today - timedelta(days=30)).isoformat(), "quantity": "10",
                  "price": "40", "fee": "0", "currency": "USD"},
                 {"type": "DEPOSIT", "date": today.isoformat(), "price": "100", "currency": "USD"}):
        assert api.post(url, body, format="json").status_code == 201

    initial = api.get(f"/api/dashboard-initial-data/{pid}/").json()

    # AAA's only price is 10 days old (stale); the 100 USD deposited today is cash, no price observed today
    assert initial["stale_count"] == 1 and initial["total_value"] == "600.00"
    assert initial["prices_as_of"] == last_close.isoformat()
