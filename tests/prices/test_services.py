"""Price-history upserts and instrument creation."""

from datetime import date
from decimal import Decimal as D

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from portfolio.signals import portfolios_changed
from prices.models import Instrument, PriceHistory, Provider
from prices.selectors import prices_latest_get
from prices.services import PricePoint, instrument_get_or_create, prices_upsert, symbol_normalize
from prices.signals import prices_changed
from tests.factories import InstrumentFactory, PortfolioFactory, TransactionFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_upsert_is_idempotent_and_updates_in_place():
    instrument = InstrumentFactory(symbol="AAPL")
    points = [PricePoint(date(2024, 1, 2), D("185.64")), PricePoint(date(2024, 1, 3), D("184.25"))]
    assert prices_upsert(instrument=instrument, points=points, source=Provider.SIMULATED) == 2
    assert prices_upsert(instrument=instrument, points=points, source=Provider.SIMULATED) == 2
    assert PriceHistory.objects.filter(instrument=instrument).count() == 2
    first_ids = set(PriceHistory.objects.values_list("id", flat=True))

    prices_upsert(instrument=instrument, points=[PricePoint(date(2024, 1, 3), D("184.30"), D("183.9"))],
                  source=Provider.YAHOO)
    row = PriceHistory.objects.get(instrument=instrument, date=date(2024, 1, 3))
    assert (row.close, row.adjusted_close, row.source) == (D("184.30"), D("183.9"), "yahoo")
    assert set(PriceHistory.objects.values_list("id", flat=True)) == first_ids


def test_empty_or_garbage_points_never_touch_stored_history():
    instrument = InstrumentFactory(symbol="AAPL")
    prices_upsert(instrument=instrument, points=[PricePoint(date(2024, 1, 2), D("185.64"))], source="yahoo")
    assert prices_upsert(instrument=instrument, points=[], source="yahoo") == 0
    garbage = [PricePoint(date(2024, 1, 2), D("0")), PricePoint(date(2024, 1, 2), D("-3")),
               PricePoint(date(2024, 1, 2), None)]
    assert prices_upsert(instrument=instrument, points=garbage, source="yahoo") == 0
    assert PriceHistory.objects.get(instrument=instrument).close == D("185.64")


def test_a_close_below_what_the_column_keeps_is_never_stored_as_0():
    # a coin quoted at 0.00000045: kept to 6 places it would be 0.000000, and its holding valued at 0
    coin = InstrumentFactory(symbol="TINY", provider="coingecko", asset_class="crypto", exchange_mic="")
    assert prices_upsert(instrument=coin, points=[PricePoint(date(2024, 1, 2), D("0.00000045"))], source="x") == 0
    assert prices_upsert(instrument=coin, points=[PricePoint(date(2024, 1, 2), D("0.0000005"))], source="x") == 1
    assert PriceHistory.objects.get(instrument=coin).close == D("0.000001")  # half a millionth, rounded half up


def test_latest_price_and_previous_close_per_instrument():
    a, b, c = InstrumentFactory(symbol="A"), InstrumentFactory(symbol="B"), InstrumentFactory(symbol="C")
    prices_upsert(instrument=a, points=[PricePoint(date(2024, 1, d), D(100 + d)) for d in (2, 3, 4)],
                  source="simulated")
    prices_upsert(instrument=b, points=[PricePoint(date(2024, 1, 2), D("7"))], source="simulated")
    latest = prices_latest_get(instrument_ids=[a.pk, b.pk, c.pk])
    assert (latest[a.pk].close, latest[a.pk].date, latest[a.pk].previous_close) == (D(104), date(2024, 1, 4), D(103))
    assert (latest[b.pk].close, latest[b.pk].previous_close) == (D(7), None)
    assert c.pk not in latest


@pytest.mark.parametrize("raw", ["aapl", " AAPL ", "brk-b", "^gspc", "eurusd=x", "vod.l"])
def test_symbols_normalize(raw):
    assert symbol_normalize(symbol=raw) == raw.strip().upper()


@pytest.mark.parametrize("raw", ["", "A B", "AAPL;DROP", "Ω", "X" * 33, "-AAPL"])
def test_bad_symbols_are_rejected_naming_symbol(raw):
    with pytest.raises(ValidationError) as raised:
        symbol_normalize(symbol=raw)
    assert list(raised.value.message_dict) == ["symbol"]


def test_new_instruments_get_the_configured_providers(settings):
    settings.PRICE_PROVIDER = "yahoo"
    settings.CRYPTO_PRICE_PROVIDER = "coingecko"
    assert instrument_get_or_create(symbol="AAPL", currency="USD").provider == "yahoo"
    assert instrument_get_or_create(symbol="ETH", currency="USD", asset_class="crypto").provider == "coingecko"
    assert instrument_get_or_create(symbol="CASH-EUR", currency="EUR", asset_class="cash").provider == "manual"


def test_provider_symbols_follow_each_providers_naming():
    btc = instrument_get_or_create(symbol="BTC", currency="USD", asset_class="crypto", provider="coingecko")
    aapl = instrument_get_or_create(symbol="AAPL", currency="USD", provider="stooq")
    vod = instrument_get_or_create(symbol="VOD.L", currency="GBp", provider="yahoo")
    assert (btc.quote_symbol, aapl.quote_symbol, vod.quote_symbol) == ("bitcoin", "aapl.us", "VOD.L")


def test_a_coin_typed_by_its_coingecko_id_is_the_coin_and_asked_for_lower_case(settings):
    settings.CRYPTO_PRICE_PROVIDER = "coingecko"
    btc = instrument_get_or_create(symbol="bitcoin", currency="EUR", provider="coingecko")
    assert (btc.symbol, btc.provider, btc.provider_symbol, btc.asset_class) == ("BTC", "coingecko", "bitcoin", "crypto")
    assert btc.currency == "USD"  # what CoinGecko quotes in; EUR trades are converted
    # an id Folio has no ticker for is asked for as typed, lower-case
    render = instrument_get_or_create(symbol="Render-Token", currency="USD", provider="coingecko")
    assert (render.symbol, render.quote_symbol, render.asset_class) == ("RENDER-TOKEN", "render-token", "stock")


def test_coin_tickers_typed_without_a_provider_go_to_the_crypto_provider(settings):
    settings.PRICE_PROVIDER = "yahoo"
    settings.CRYPTO_PRICE_PROVIDER = "coingecko"
    eth = instrument_get_or_create(symbol="eth", currency="USD")
    assert (eth.symbol, eth.asset_class, eth.provider, eth.quote_symbol, eth.exchange_mic) == (
        "ETH", "crypto", "coingecko", "ethereum", "")
    assert instrument_get_or_create(symbol="BTC-USD", currency="USD").symbol == "BTC"
    # a stock provider named explicitly keeps the ticker a stock
    assert instrument_get_or_create(symbol="SOL", currency="USD", provider="yahoo").asset_class == "stock"


def test_coins_priced_by_yahoo_or_twelvedata_are_asked_for_by_their_pair(settings):
    settings.CRYPTO_PRICE_PROVIDER = "yahoo"
    assert instrument_get_or_create(symbol="BTC", currency="USD").quote_symbol == "BTC-USD"
    settings.CRYPTO_PRICE_PROVIDER = "twelvedata"
    assert instrument_get_or_create(symbol="ETH", currency="USD").quote_symbol == "ETH/USD"


def test_a_manual_request_is_the_owners_own_instrument_and_never_anothers(settings):
    settings.PRICE_PROVIDER = "yahoo"
    ann, ben = UserFactory(username="ann"), UserFactory(username="ben")
    # ann's hand-priced AMD, typed first
    anns = instrument_get_or_create(symbol="amd", currency="JPY", provider="manual", asset_class="crypto", owner=ann)
    # ben, naming no provider, gets the shared AMD, priced by the provider, as he typed it provisionally
    bens = instrument_get_or_create(symbol="AMD", currency="USD", owner=ben)
    assert (anns.owner, anns.provider, anns.currency, anns.asset_class) == (ann, "manual", "JPY", "crypto")
    assert (bens.owner, bens.provider, bens.currency, bens.asset_class) == (None, "yahoo", "USD", "stock")
    # ann naming no provider gets her own; naming one, the shared; cash is manual, hence her own
    assert instrument_get_or_create(symbol="AMD", currency="USD", owner=ann) == anns
    assert instrument_get_or_create(symbol="AMD", currency="USD", provider="yahoo", owner=ann) == bens
    cash = instrument_get_or_create(symbol="CASH-EUR", currency="EUR", asset_class="cash", owner=ben)
    assert (cash.owner, cash.provider) == (ben, "manual")
    assert instrument_get_or_create(symbol="CASH-EUR", currency="EUR", asset_class="cash", owner=ann).owner == ann
    # ben's manual AMD is a third instrument; without an owner only the shared one is found
    assert instrument_get_or_create(symbol="AMD", currency="EUR", provider="manual", owner=ben) not in (anns, bens)
    assert instrument_get_or_create(symbol="AMD", currency="EUR") == bens


def test_only_a_manual_instrument_can_belong_to_someone():
    with pytest.raises(IntegrityError), transaction.atomic():
        InstrumentFactory(symbol="AAPL", provider="yahoo", owner=UserFactory(username="ann"))


def test_a_deleted_user_takes_their_manual_instruments_and_their_prices_along():
    ann = UserFactory(username="ann")
    gold = InstrumentFactory(symbol="GOLDBAR", provider="manual", owner=ann)
    shared = InstrumentFactory(symbol="AAPL")
    portfolio = PortfolioFactory(owner=ann)
    TransactionFactory(portfolio=portfolio, instrument=gold)
    TransactionFactory(portfolio=portfolio, instrument=shared)
    prices_upsert(instrument=gold, points=[PricePoint(date(2024, 1, 2), D("2000"))], source="manual")
    ann.delete()
    assert list(Instrument.objects.values_list("symbol", flat=True)) == ["AAPL"]
    assert not PriceHistory.objects.exists()


def test_a_symbol_squatted_onto_the_wrong_provider_is_taken_back_once_it_proves_unknown(settings, django_user_model):
    settings.PRICE_PROVIDER, settings.CRYPTO_PRICE_PROVIDER = "yahoo", "coingecko"
    squatter, buyer = (django_user_model.objects.create_user(name, password="x") for name in ("eve", "bob"))
    # given AMD made a coin on CoinGecko by the first user who typed it, and found unknown there
    amd = instrument_get_or_create(symbol="AMD", currency="USD", provider="coingecko", owner=squatter)
    Instrument.objects.filter(pk=amd.pk).update(verification_status="unknown")
    # when another user buys AMD as the stock it is
    again = instrument_get_or_create(symbol="AMD", currency="USD", owner=buyer)
    # then it is the same instrument, back on the stock provider, waiting to be verified there
    assert again.pk == amd.pk
    assert (again.provider, again.asset_class, again.verification_status, again.quote_symbol) == (
        "yahoo", "stock", "pending", "AMD")
    # but an instrument with prices is never moved
    PriceHistory.objects.create(instrument=again, date=date(2024, 1, 2), close=D("100"), source="yahoo")
    Instrument.objects.filter(pk=amd.pk).update(verification_status="unknown")
    stays = instrument_get_or_create(symbol="AMD", currency="USD", provider="coingecko", owner=squatter)
    assert stays.provider == "yahoo"


def test_prices_changed_says_from_which_day_and_portfolios_changed_passes_it_on(django_capture_on_commit_callbacks):
    aapl = InstrumentFactory(symbol="AAPL")
    holder = PortfolioFactory()
    TransactionFactory(portfolio=holder, instrument=aapl, date=date(2024, 1, 2))
    heard: dict[str, list] = {"prices": [], "portfolios": []}

    def on_prices(sender, *, instrument_ids, since, **kwargs):
        heard["prices"].append((instrument_ids, since))

    def on_portfolios(sender, *, portfolio_ids, since=None, **kwargs):
        heard["portfolios"].append((portfolio_ids, since))

    prices_changed.connect(on_prices, dispatch_uid="test.prices")
    portfolios_changed.connect(on_portfolios, dispatch_uid="test.portfolios")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            prices_upsert(instrument=aapl, source="yahoo",
                          points=[PricePoint(date(2024, 1, 5), D("101")), PricePoint(date(2024, 1, 3), D("100"))])
    finally:
        prices_changed.disconnect(dispatch_uid="test.prices")
        portfolios_changed.disconnect(dispatch_uid="test.portfolios")

    # The earliest day written, not the first of the list: nothing before 3 January changed.
    assert heard["prices"] == [([aapl.pk], date(2024, 1, 3))]
    assert heard["portfolios"] == [([holder.pk], date(2024, 1, 3))]


def test_a_quote_resending_a_backfilled_day_keeps_its_adjusted_close_and_announces_nothing(
        django_capture_on_commit_callbacks):
    aapl = InstrumentFactory(symbol="AAPL")
    prices_upsert(instrument=aapl, source="yahoo", points=[PricePoint(date(2024, 1, 5), D("101"), D("99.5"))])
    heard = []

    def on_prices(sender, *, instrument_ids, since, **kwargs):
        heard.append((instrument_ids, since))

    prices_changed.connect(on_prices, dispatch_uid="test.prices")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            # the pre-open quote refresh re-sends the last session's close, without an adjusted close
            prices_upsert(instrument=aapl, source="yahoo", points=[PricePoint(date(2024, 1, 5), D("101"))])
        assert heard == []  # nothing a chart draws changed: no history version moves
        row = PriceHistory.objects.get(instrument=aapl, date=date(2024, 1, 5))
        assert (row.close, row.adjusted_close) == (D("101"), D("99.5"))

        with django_capture_on_commit_callbacks(execute=True):
            prices_upsert(instrument=aapl, source="yahoo", points=[PricePoint(date(2024, 1, 5), D("101.25"))])
        assert heard == [([aapl.pk], date(2024, 1, 5))]  # a corrected close is announced
        row.refresh_from_db()
        assert (row.close, row.adjusted_close) == (D("101.25"), D("99.5"))

        # a new backfill's adjusted close replaces the old one
        prices_upsert(instrument=aapl, source="yahoo", points=[PricePoint(date(2024, 1, 5), D("101.25"), D("99"))])
        row.refresh_from_db()
        assert row.adjusted_close == D("99")
    finally:
        prices_changed.disconnect(dispatch_uid="test.prices")
