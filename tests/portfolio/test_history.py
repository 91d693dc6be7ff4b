"""History on demand, through real workers and loopback providers: a trade dated in the past gets its
instrument's closes and its currency's rates fetched at once, and the chart and returns follow — no
closes are posted by hand here, the workers fetch everything from the stubs."""

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from django_redis import get_redis_connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from charts.sparklines import SPARKLINE_POINTS_MAX
from portfolio.models import Portfolio
from portfolio.ranges import months_before
from prices.market_calendar import last_expected_close_date, sessions_between
from prices.models import FxRate, Instrument, PriceHistory
from prices.providers import provider_get
from prices.services import PricePoint, prices_upsert
from tests.charts.oracle import cents
from tests.factories import InstrumentFactory
from tests.stubs.market import MarketStub
from tests.stubs.world import WorldStub
from tests.worker import worker_settle

pytestmark = pytest.mark.django_db(transaction=True)
CENT = Decimal("0.01")


def weekday_before(day: date) -> date:
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    return day


def stock_price(symbol: str, day: date) -> Decimal:
    """What the Yahoo look-alike says a stock traded at: a different whole price every day."""
    return Decimal(100 + sum(map(ord, symbol)) % 50 + day.toordinal() % 37)


def sparkline_thinned(points: list) -> list:
    """What a sparkline keeps of its closes (in date order): every n-th counted back from the latest when there
    are more than SPARKLINE_POINTS_MAX, so the latest is always a point and the first is one only when the count
    allows."""
    step = -(-len(points) // SPARKLINE_POINTS_MAX)
    return points[::-1][::step][::-1]


def usd_per_chf(day: date) -> Decimal:
    """Frankfurter's CHF→USD rate: 1.25 or 1.6, so a USD amount in CHF (× 0.8 or × 0.625) stays exact."""
    return Decimal("1.25") if day.toordinal() % 3 else Decimal("1.6")


def coin_price(coin: str, day: date) -> Decimal | None:
    return Decimal(40_000 + day.toordinal() % 100) if coin == "bitcoin" else None


@dataclass
class Providers:
    market: MarketStub
    world: WorldStub


@pytest.fixture
def providers(settings, worker) -> Iterator[Providers]:
    market, world = MarketStub(), WorldStub(coin_price_of=coin_price,
                                            rate_of=lambda base, quote, day: usd_per_chf(day)
                                            if (base, quote) == ("CHF", "USD") else None)
    market.price_of = stock_price
    with market.running(), world.running():
        settings.PROVIDERS = {
            **settings.PROVIDERS,
            "yahoo": {"base_url": market.url, "api_key": None},
            "frankfurter": {"base_url": f"{world.url}/v1", "api_key": None},
            "coingecko": {"base_url": f"{world.url}/api/v3", "api_key": None},
        }
        fast = {"requests_per_second": 1000.0, "daily_quota": None, "batch_size": None}
        settings.PROVIDER_LIMITS = {"yahoo": fast, "coingecko": fast}
        settings.PRICE_PROVIDER, settings.CRYPTO_PRICE_PROVIDER = "yahoo", "coingecko"
        settings.PROVIDER_BACKOFF_INITIAL_SECONDS, settings.PROVIDER_BACKOFF_MAX_SECONDS = 0.01, 0.05
        settings.CHART_DEBOUNCE_SECONDS = 0
        provider_get.cache_clear()  # clients are built against the stubs
        yield Providers(market, world)
    provider_get.cache_clear()


@pytest.fixture
def api() -> APIClient:
    user = get_user_model().objects.create_user("dana", password="x")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    client.user = user
    return client


def portfolio_of(api: APIClient, base_currency: str = "USD", name: str = "") -> int:
    response = api.post("/api/portfolios/", {"name": name or f"In {base_currency}", "base_currency": base_currency},
                        format="json")
    assert response.status_code == 201, response.json()
    return response.json()["id"]


def buy(api: APIClient, portfolio_id: int, **fields) -> dict:
    body = {"type": "BUY", "fee": "0", "currency": "USD", **fields}
    body["date"] = body["date"].isoformat()
    response = api.post(f"/api/portfolios/{portfolio_id}/transactions/", body, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def wait_for(what: str, fetch: Callable[[], object], timeout: float = 60.0) -> object:
    """Poll `fetch` until it answers something truthy (a minute at most: what a user would wait)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if answer := fetch():
            return answer
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout} s: {what}")


def current_chart(api: APIClient, portfolio_id: int, chart_range: str = "MAX") -> Callable[[], dict | None]:
    """A fetch for wait_for: the chart once it is made from the portfolio's present data, nothing pending."""
    def fetch() -> dict | None:
        initial = api.get(f"/api/dashboard-initial-data/{portfolio_id}/").json()
        if initial["history"]["pending"]:
            return None
        response = api.get(f"/api/dashboard-chart-data/{portfolio_id}/?range={chart_range}")
        return response.json() if response.status_code == 200 and not response.json()["outdated"] else None
    return fetch


def last_session_close(closes: dict[date, Decimal], day: date) -> Decimal:
    return closes[max(d for d in closes if d <= day)]


def test_a_400_day_old_position_shows_its_whole_history_once_the_workers_fetched_it(providers, api):
    # given a new user's portfolio, and trades in two instruments Folio has never seen, dated 400 days ago
    portfolio_id = portfolio_of(api)
    traded = weekday_before(timezone.localdate() - timedelta(days=400))
    while traded not in sessions_between(mic="XNYS", start=traded, end=traded):
        traded = weekday_before(traded - timedelta(days=1))  # a session, so the trade day has a close
    providers.market.latency = 1.0  # each history takes a second to fetch: the dashboard read below sees it
    buy(api, portfolio_id, symbol="AAPL", date=traded, quantity="10", price=str(stock_price("AAPL", traded)))
    buy(api, portfolio_id, symbol="MSFT", date=traded, quantity="5", price=str(stock_price("MSFT", traded)))

    # when the dashboard is opened right away, it says the history is being fetched: MSFT's surely; AAPL's
    # too unless it landed before MSFT was bought (then the progress counts the new request anew: 1 of 1)
    history = api.get(f"/api/dashboard-initial-data/{portfolio_id}/").json()["history"]
    assert "MSFT" in history["pending"] and set(history["pending"]) <= {"AAPL", "MSFT"}
    assert history["total"] in (1, 2) and history["done"] + len(history["pending"]) == history["total"]

    # then within a minute the workers have fetched it and the chart is made from it
    chart = wait_for("the chart made from the fetched history", current_chart(api, portfolio_id))
    last_close = last_expected_close_date(mic="XNYS", now=timezone.now())
    sessions = sessions_between(mic="XNYS", start=traded, end=last_close)
    closes = {}
    for symbol in ("AAPL", "MSFT"):
        instrument = Instrument.objects.get(symbol=symbol)
        assert (instrument.provider, instrument.verification_status) == ("yahoo", "verified")
        stored = dict(PriceHistory.objects.filter(instrument=instrument).values_list("date", "close"))
        assert sorted(stored)[: len(sessions)] == sessions  # every session from the trade on, no hole
        assert all(stored[day] == stock_price(symbol, day) for day in sessions)
        closes[symbol] = stored
    # every point of the chart is the holding valued at that day's close (the last one, on days without)
    points = chart["series"]
    assert points[0]["date"] == traded.isoformat()
    for point in points:
        day = date.fromisoformat(point["date"])
        expected = 10 * last_session_close(closes["AAPL"], day) + 5 * last_session_close(closes["MSFT"], day)
        assert Decimal(point["value"]) == expected, point
        assert Decimal(point["invested"]) == 10 * stock_price("AAPL", traded) + 5 * stock_price("MSFT", traded)
    assert providers.market.chart_requests.count("AAPL") == 1  # one request for the whole history


def test_a_holding_read_while_its_history_is_fetched_is_charted_from_that_history_and_stays_current(providers, api):
    # given a new holding whose history takes a while to fetch, read by the dashboard meanwhile (it
    # has no close at all then: stale)
    providers.market.latency = 0.5
    portfolio_id = portfolio_of(api)
    traded = weekday_before(timezone.localdate() - timedelta(days=20))
    buy(api, portfolio_id, symbol="AAPL", date=traded, quantity="3", price="100")
    assert api.get(f"/api/dashboard-initial-data/{portfolio_id}/").json()["history"]["pending"] == ["AAPL"]

    # when the chart made from the fetched history is current and the workers have nothing left to do
    chart = wait_for("the chart made from the fetched history", current_chart(api, portfolio_id))
    worker_settle()

    # then no quote was asked for on top of the backfill (one landing later would store another close
    # and outdate this chart), and the chart is still current, valued at the stored closes
    assert providers.market.quote_requests == []
    again = current_chart(api, portfolio_id)()
    assert again is not None and (again["generated_at"], again["series"]) == (chart["generated_at"], chart["series"])
    closes = dict(PriceHistory.objects.filter(instrument__symbol="AAPL").values_list("date", "close"))
    for point in chart["series"]:
        assert Decimal(point["value"]) == 3 * last_session_close(closes, date.fromisoformat(point["date"])), point


def test_a_usd_stock_in_a_chf_portfolio_is_valued_once_the_rates_are_fetched(providers, api):
    # given a CHF portfolio buying a USD stock 30 days ago, with no USD/CHF rate stored
    portfolio_id = portfolio_of(api, "CHF")
    traded = weekday_before(timezone.localdate() - timedelta(days=30))
    while traded not in sessions_between(mic="XNYS", start=traded, end=traded):
        traded = weekday_before(traded - timedelta(days=1))
    buy(api, portfolio_id, symbol="KO", date=traded, quantity="8", price=str(stock_price("KO", traded)))

    # when the workers have fetched the stock's closes and the pair's rates (without the nightly FX job)
    chart = wait_for("the chart in CHF", current_chart(api, portfolio_id))

    # then every day is valued in CHF at that day's rate, and the totals count the holding
    rates = dict(FxRate.objects.filter(base="CHF", quote="USD").values_list("date", "rate"))
    assert min(rates) <= traded
    closes = dict(PriceHistory.objects.filter(instrument__symbol="KO").values_list("date", "close"))
    for point in chart["series"]:
        day = date.fromisoformat(point["date"])
        in_chf = 8 * last_session_close(closes, day) / last_session_close(rates, day)
        assert Decimal(point["value"]) == in_chf.quantize(CENT, ROUND_HALF_EVEN), point
    # today's value: the last close at today's rate (ECB rates of a day come before that day's close)
    initial = api.get(f"/api/dashboard-initial-data/{portfolio_id}/").json()
    today = timezone.localdate()
    assert chart["series"][-1]["date"] == today.isoformat()
    assert initial["fx_missing_count"] == 0
    assert Decimal(initial["total_value"]) == (8 * last_session_close(closes, today)
                                               / last_session_close(rates, today)).quantize(CENT)
    assert initial["total_value"] == chart["series"][-1]["value"]


def test_a_coin_entered_by_its_coingecko_id_is_priced_from_coingecko(providers, api):
    portfolio_id = portfolio_of(api)
    traded = timezone.localdate() - timedelta(days=20)
    created = buy(api, portfolio_id, symbol="bitcoin", provider="coingecko", date=traded, quantity="0.5",
                  price=str(coin_price("bitcoin", traded)))
    assert (created["symbol"], created["provider"]) == ("BTC", "coingecko")

    chart = wait_for("the coin's chart", current_chart(api, portfolio_id))

    btc = Instrument.objects.get(symbol="BTC")
    assert (btc.provider_symbol, btc.asset_class, btc.verification_status) == ("bitcoin", "crypto", "verified")
    for point in chart["series"][:-1]:  # every past day at its own close (crypto trades every day)
        day = date.fromisoformat(point["date"])
        assert Decimal(point["value"]) == Decimal("0.5") * coin_price("bitcoin", day), point


def test_a_split_gives_the_same_value_before_and_after_it_from_provider_adjusted_history(providers, api):
    # given Yahoo charting AAPL split-adjusted for a 2:1 split 10 sessions ago (and listing the split)
    today = timezone.localdate()
    split_day = sessions_between(mic="XNYS", start=today - timedelta(days=30), end=today - timedelta(days=1))[-10]
    providers.market.price_of = lambda symbol, day: Decimal("200")  # in today's shares: 400 before the split
    providers.market.splits["AAPL"] = [(split_day, 2, 1)]
    portfolio_id = portfolio_of(api)
    traded = sessions_between(mic="XNYS", start=today - timedelta(days=40), end=today)[0]
    buy(api, portfolio_id, symbol="AAPL", date=traded, quantity="10", price="400")
    split = {"symbol": "AAPL", "type": "SPLIT", "date": split_day.isoformat(), "quantity": "2", "currency": "USD"}
    assert api.post(f"/api/portfolios/{portfolio_id}/transactions/", split, format="json").status_code == 201

    chart = wait_for("the chart across the split", current_chart(api, portfolio_id))

    # then the stored closes are what each day traded at, and the value never moves: 10 × 400 = 20 × 200
    closes = dict(PriceHistory.objects.filter(instrument__symbol="AAPL").values_list("date", "close"))
    assert closes[split_day - timedelta(days=1) if split_day.weekday() else split_day - timedelta(days=3)] == 400
    assert closes[split_day] == 200
    assert {point["value"] for point in chart["series"]} == {"4000.00"}
    performance = api.get(f"/api/portfolios/{portfolio_id}/performance/?range=MAX").json()
    assert (performance["gross_performance"], performance["time_weighted_return"]) == ("0.00", "0.000000")


def test_an_unknown_symbol_is_named_as_such_not_as_stale(providers, api):
    portfolio_id = portfolio_of(api)
    buy(api, portfolio_id, symbol="ZZZZ", date=timezone.localdate() - timedelta(days=10), quantity="1", price="5")

    wait_for("the symbol flagged unknown", lambda: Instrument.objects.get(symbol="ZZZZ").verification_status
             == "unknown")
    initial = wait_for("the backfill to end", lambda: (body := api.get(
        f"/api/dashboard-initial-data/{portfolio_id}/").json()) and not body["history"]["pending"] and body)

    assert (initial["unknown_symbols"], initial["stale_count"]) == (["ZZZZ"], 0)
    holding = api.get(f"/api/dashboard-holdings-data/{portfolio_id}/").json()["holdings"][0]
    assert (holding["symbol"], holding["unknown"], holding["price"]) == ("ZZZZ", True, "5")


def test_two_portfolios_asking_for_the_same_history_cause_one_backfill(providers, api):
    traded = weekday_before(timezone.localdate() - timedelta(days=60))
    providers.market.latency = 1.0  # the first backfill is still running when the second portfolio asks
    first, second = portfolio_of(api), portfolio_of(api, name="Second")
    buy(api, first, symbol="NVDA", date=traded, quantity="1", price="100")
    buy(api, second, symbol="NVDA", date=traded, quantity="2", price="100")
    wait_for("both charts", lambda: current_chart(api, first)() and current_chart(api, second)())
    assert providers.market.chart_requests.count("NVDA") == 1


def test_a_write_while_redis_is_down_outdates_the_chart_once_redis_is_back(providers, api, settings):
    # given a chart made for the portfolio's data (the warm reads' copy of its versions living 1 s)
    settings.PORTFOLIO_ACCESS_CACHE_SECONDS = 1
    portfolio_id = portfolio_of(api)
    traded = weekday_before(timezone.localdate() - timedelta(days=20))
    buy(api, portfolio_id, symbol="KO", date=traded, quantity="1", price="100")
    made = wait_for("the first chart", current_chart(api, portfolio_id))
    version = Portfolio.objects.get(pk=portfolio_id).data_version

    # when a transaction is written while the cache cannot be reached
    reachable = settings.CACHES
    settings.CACHES = {"default": {**reachable["default"], "LOCATION": "redis://127.0.0.1:1/15"}}
    try:
        buy(api, portfolio_id, symbol="KO", date=traded, quantity="1", price="100")
    finally:
        settings.CACHES = reachable

    # then the write moved the durable version, and the chart is outdated once Redis answers again (at the
    # latest when the copy of the older versions, which the writer could not update, expires)
    assert Portfolio.objects.get(pk=portfolio_id).data_version == version + 1
    stale = wait_for("the chart outdated", lambda: (lambda answer: answer if answer["outdated"] else None)(
        api.get(f"/api/dashboard-chart-data/{portfolio_id}/?range=MAX").json()), timeout=10)
    # (the last good history; today's point is moved to the live valuation only on a current chart: an
    # outdated history and the valuation after the write do not add up)
    assert stale["outdated"] is True and stale["series"][:-1] == made["series"][:-1]
    fresh = wait_for("the chart with the new buy", current_chart(api, portfolio_id))
    assert fresh["series"][-1]["invested"] == "200.00"


def test_charts_survive_the_loss_of_every_redis_key(providers, api):
    # given a chart, and then Redis losing everything (eviction, a restart without persistence)
    portfolio_id = portfolio_of(api)
    traded = weekday_before(timezone.localdate() - timedelta(days=20))
    buy(api, portfolio_id, symbol="KO", date=traded, quantity="1", price="100")
    wait_for("the first chart", current_chart(api, portfolio_id))
    client = get_redis_connection("default")
    client.delete(*[key for key in client.scan_iter() if not key.startswith((b"_kombu.", b"unacked"))])

    # when the portfolio changes again, its new chart is made, kept and served as current
    buy(api, portfolio_id, symbol="KO", date=traded, quantity="2", price="100")
    chart = wait_for("the new chart", current_chart(api, portfolio_id))
    assert chart["series"][-1]["invested"] == "300.00"


def test_a_trade_before_the_first_one_fetches_the_benchmark_closes_back_to_it(providers, api):
    # given a portfolio comparing itself with SPY, its first trade 20 days ago, the chart made
    today = timezone.localdate()
    portfolio_id = portfolio_of(api)
    buy(api, portfolio_id, symbol="KO", date=weekday_before(today - timedelta(days=20)), quantity="10", price="100")
    assert api.patch(f"/api/portfolios/{portfolio_id}/", {"benchmark": "SPY"}, format="json").status_code == 200
    wait_for("the chart", current_chart(api, portfolio_id))
    spy = Instrument.objects.get(symbol="SPY")

    # when a trade dated 200 days ago is recorded (its history fetched by the workers)
    first = weekday_before(today - timedelta(days=200))
    buy(api, portfolio_id, symbol="PEP", date=first, quantity="5", price="90")
    chart = wait_for("the chart with the old trade", current_chart(api, portfolio_id))

    # then the benchmark's closes reach back to the new first trade, as the portfolio's own do, and the MAX
    # comparison has both lines from the first day (the portfolio's from the day before it, as its return: the
    # first day's move from the trade's 90 to the day's close)
    assert PriceHistory.objects.filter(instrument__symbol="PEP", date__lte=first + timedelta(days=4)).exists()
    compared = chart["benchmark"]["series"]
    assert compared[0]["date"] == first.isoformat()
    assert compared[0]["benchmark"] is not None
    assert compared[0]["portfolio"] == f"{float(stock_price('PEP', first) / 90) - 1:.6f}"
    assert PriceHistory.objects.filter(instrument=spy, date__lte=first + timedelta(days=4)).exists()


def test_a_benchmark_chosen_before_the_first_trade_has_its_closes_fetched_with_it(providers, api):
    # given a new portfolio comparing itself with SPY from the start
    today = timezone.localdate()
    portfolio_id = portfolio_of(api)
    assert api.patch(f"/api/portfolios/{portfolio_id}/", {"benchmark": "SPY"}, format="json").status_code == 200

    # when its first trade, dated 100 days ago, is recorded and the workers have fetched what it needs
    first = weekday_before(today - timedelta(days=100))
    buy(api, portfolio_id, symbol="KO", date=first, quantity="10", price="100")
    chart = wait_for("the chart", current_chart(api, portfolio_id))

    # then the comparison has the benchmark's line
    compared = chart["benchmark"]["series"]
    assert [point["benchmark"] for point in compared if point["benchmark"] is not None] != []


def test_a_currency_the_provider_gives_a_new_instrument_has_its_rates_fetched(providers, api):
    # given a CHF portfolio, and a US stock Folio has never seen bought 30 days ago, paid in CHF (its trade in CHF:
    # the instrument is made in CHF until its provider says it is quoted in USD)
    today = timezone.localdate()
    portfolio_id = portfolio_of(api, "CHF")
    buy(api, portfolio_id, symbol="KO", date=weekday_before(today - timedelta(days=30)), quantity="10", price="90",
        currency="CHF")

    # when the workers have fetched its history (its provider says USD)
    wait_for("the chart", current_chart(api, portfolio_id))
    worker_settle()
    assert Instrument.objects.get(symbol="KO").currency == "USD"

    # then the USD rates it is valued with are fetched too, and the dashboard values it
    initial = api.get(f"/api/dashboard-initial-data/{portfolio_id}/").json()
    holding = api.get(f"/api/dashboard-holdings-data/{portfolio_id}/").json()["holdings"][0]
    assert (initial["fx_missing_count"], holding["fx_missing"], holding["market_value"] is not None) == (0, False, True)
    assert FxRate.objects.filter(base="CHF", quote="USD").exists()


def test_a_trade_in_an_instrument_nobody_held_for_a_year_fetches_the_closes_it_misses(providers, api):
    # given KO's closes stored for a month two years ago (someone held it then), none since
    today = timezone.localdate()
    ko = InstrumentFactory(symbol="KO", provider="yahoo")
    old = [weekday_before(today - timedelta(days=730 - n)) for n in range(0, 30)]
    prices_upsert(instrument=ko, points=[PricePoint(day, stock_price("KO", day)) for day in old], source="yahoo")

    # when a trade dated 60 days ago is recorded, and the workers have fetched what it needs
    traded = weekday_before(today - timedelta(days=60))
    portfolio_id = portfolio_of(api)
    buy(api, portfolio_id, symbol="KO", date=traded, quantity="10", price="100")
    chart = wait_for("the chart", current_chart(api, portfolio_id, chart_range="3M"))

    # then KO's closes since the trade are there, and the chart values it at them, not at the trade's price
    assert {p["date"]: p["value"] for p in chart["series"]}[(traded + timedelta(days=7)).isoformat()] != "1000.00"
    assert PriceHistory.objects.filter(instrument=ko, date__gte=traded).count() >= 30


def _no_cash(api: APIClient, portfolio_id: int) -> None:
    account = api.get(f"/api/portfolios/{portfolio_id}/accounts/").json()[0]
    response = api.patch(f"/api/portfolios/{portfolio_id}/accounts/{account['id']}/", {"tracks_cash": False},
                         format="json")
    assert response.status_code == 200, response.json()


def test_a_new_holdings_sparkline_covers_its_last_3_months_once_the_workers_fetched_history(providers, api):
    # given a new user's trade 10 days ago in an instrument Folio has never seen (its history fetched by workers)
    today = timezone.localdate()
    traded = sessions_between(mic="XNYS", start=today - timedelta(days=14), end=today - timedelta(days=8))[0]
    pid = portfolio_of(api)
    buy(api, pid, symbol="AAPL", date=traded, quantity="10", price=str(stock_price("AAPL", traded)))
    wait_for("chart", current_chart(api, pid))

    # when the chart is read with its sparklines
    body = wait_for("sparklines", lambda: (r := api.get(
        f"/api/dashboard-chart-data/{pid}/?range=MAX&include=sparklines")).status_code == 200 and r.json())
    (instrument_id, line), = body["sparklines"].items()

    # then the sparkline spans the instrument's last 3 months (docs/api.md, the schema: "its closes of the
    # last 3 months"), as the same sparkline does for a holding whose closes were already stored: the workers
    # fetched its closes from the window's first session on, and the line is those before today, every n-th
    # counted back from the latest when there are more than SPARKLINE_POINTS_MAX (so whether the first session
    # is a point of its own depends on how many sessions the window holds), then today's close once today's
    # session has closed and the workers fetched it
    since = months_before(today, 3)
    first_session = sessions_between(mic="XNYS", start=since, end=today)[0]
    closes = PriceHistory.objects.filter(instrument_id=int(instrument_id), date__gte=since).order_by("date")
    fetched = list(closes.filter(date__lt=today).values_list("date", flat=True))
    assert fetched[0] == first_session
    todays = list(closes.filter(date=today).values_list("date", flat=True))
    assert [point["date"] for point in line] == [day.isoformat() for day in sparkline_thinned(fetched) + todays]


def test_the_max_benchmark_line_is_measured_from_the_close_before_the_first_day(providers, api):
    # given a portfolio comparing itself with SPY, its first trade 30 days ago (all history fetched by workers)
    today = timezone.localdate()
    sessions = sessions_between(mic="XNYS", start=today - timedelta(days=60), end=today - timedelta(days=1))
    first = sessions[-20]
    before = sessions[-21]  # the session before the first day
    pid = portfolio_of(api)
    _no_cash(api, pid)
    assert api.patch(f"/api/portfolios/{pid}/", {"benchmark": "SPY"}, format="json").status_code == 200
    buy(api, pid, symbol="KO", date=first, quantity="10", price=str(stock_price("KO", before)))
    chart = wait_for("chart", current_chart(api, pid))

    # then the MAX comparison measures both lines from the day before the first (docs/charts.md, charts/benchmark.py:
    # "measured from the day before it (the portfolio's growth 1, the benchmark's last close before it)"): the
    # portfolio's first point is the first day's move from the trade price (here the close of the day before) ...
    compared = chart["benchmark"]["series"]
    ko_move = stock_price("KO", first) / stock_price("KO", before) - 1
    assert compared[0]["portfolio"] == f"{float(ko_move):.6f}"
    # ... and the benchmark's too, from SPY's close of the day before
    spy_move = stock_price("SPY", first) / stock_price("SPY", before) - 1

    assert compared[0]["benchmark"] == f"{float(spy_move):.6f}", (compared[0], f"{float(spy_move):.6f}")


def test_a_trade_a_few_sessions_before_the_first_close_gets_those_sessions_closes(providers, api):
    # given KO bought on a Monday, its closes fetched by the workers from that day
    today = timezone.localdate()
    sessions = sessions_between(mic="XNYS", start=today - timedelta(days=60), end=today - timedelta(days=1))
    monday = [d for d in sessions[:-10] if d.weekday() == 0][-1]
    thursday, friday = sessions[sessions.index(monday) - 2], sessions[sessions.index(monday) - 1]
    pid = portfolio_of(api)
    _no_cash(api, pid)
    buy(api, pid, symbol="KO", date=monday, quantity="10", price="100")
    wait_for("chart", current_chart(api, pid))
    worker_settle()

    # when a second buy is recorded on the Thursday before (two sessions before its first stored close)
    buy(api, pid, symbol="KO", date=thursday, quantity="1", price="50")
    chart = wait_for("chart", current_chart(api, pid))
    worker_settle()
    chart = wait_for("chart", current_chart(api, pid))

    # then the Thursday's and Friday's closes are fetched and the chart values those days at them, not at the
    # trade's price (as for any trade dated before the stored closes)
    stored = set(PriceHistory.objects.filter(instrument__symbol="KO").values_list("date", flat=True))
    by_day = {p["date"]: p["value"] for p in chart["series"]}
    assert (thursday in stored, friday in stored) == (True, True), sorted(stored)[:3]
    assert by_day[friday.isoformat()] == cents(Fraction(stock_price("KO", friday))), by_day[friday.isoformat()]

