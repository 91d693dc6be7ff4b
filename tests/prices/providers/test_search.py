"""The providers' search endpoints against loopback stubs speaking their wire formats, and the offline
simulated universe."""

import pytest

from prices.providers import searchable
from prices.providers.base import PermanentError, QuotaExhaustedError, RateLimitedError, SearchHit, TransientError
from prices.providers.coingecko import CoinGeckoProvider
from prices.providers.simulated import SimulatedProvider
from prices.providers.stooq import StooqProvider
from prices.providers.twelvedata import TwelveDataProvider
from prices.providers.yahoo import YahooProvider, suffix_currency
from tests.stubs import html_response, json_response, text_response

YAHOO_SEARCH = """{"explains":[],"count":3,"quotes":[
 {"exchange":"EBS","shortname":"BALOISE N","quoteType":"EQUITY","symbol":"BALN.SW","index":"quotes","score":20017.0,
  "typeDisp":"Equity","longname":"Bâloise Holding AG","exchDisp":"Swiss","sector":"Financial Services",
  "sectorDisp":"Financial Services","industry":"Insurance—Diversified","isYahooFinance":true},
 {"exchange":"CCC","shortname":"Bitcoin USD","quoteType":"CRYPTOCURRENCY","symbol":"BTC-EUR","index":"quotes",
  "score":20010.0,"typeDisp":"Cryptocurrency","exchDisp":"CCC","isYahooFinance":true},
 {"exchange":"PCX","shortname":"SPDR S&P 500","quoteType":"ETF","symbol":"SPY","index":"quotes","score":20005.0,
  "typeDisp":"ETF","longname":"SPDR S&P 500 ETF Trust","exchDisp":"NYSEArca","isYahooFinance":true},
 {"index":"78ddc07626ff4bbcae663e88514c23a0","name":"Baloise","permalink":"baloise","isYahooFinance":false}],
 "news":[],"nav":[],"lists":[],"researchReports":[],"screenerFieldResults":[],"totalTime":25,
 "timeTakenForQuotes":418,"timeTakenForNews":0,"timeTakenForAlgowatchlist":400,"timeTakenForPredefinedScreener":400,
 "timeTakenForCrunchbase":0,"timeTakenForNav":400,"timeTakenForResearchReports":0,
 "timeTakenForScreenerField":0,"timeTakenForCulturalAssets":0}"""
YAHOO_BAD_REQUEST = '{"finance":{"result":null,"error":{"code":"Bad Request","description":"Invalid Search Query"}}}'
TD_SEARCH = """{"data":[{"symbol":"AAPL","instrument_name":"Apple Inc","exchange":"NASDAQ","mic_code":"XNGS",
 "exchange_timezone":"America/New_York","instrument_type":"Common Stock","country":"United States","currency":"USD"},
 {"symbol":"AAPL","instrument_name":"Apple Inc","exchange":"BMV","mic_code":"XMEX",
 "exchange_timezone":"America/Mexico_City","instrument_type":"Common Stock","country":"Mexico","currency":"MXN"},
 {"symbol":"BTC/USD","instrument_name":"Bitcoin US Dollar","exchange":"Coinbase Pro","mic_code":"",
 "exchange_timezone":"UTC","instrument_type":"Digital Currency","country":"","currency":""}],"status":"ok"}"""
TD_RATE_LIMITED = ('{"code":429,"message":"You have run out of API credits for the current minute. 9 API credits '
                   'were used, with the current limit being 8. Wait for the next minute or consider switching to '
                   'a higher tier plan at https://twelvedata.com/pricing","status":"error"}')
TD_BAD_KEY = ('{"code":401,"message":"**apikey** parameter is incorrect or not specified. You can get your free '
              'API key instantly following this link: https://twelvedata.com/pricing","status":"error"}')
CG_SEARCH = """{"coins":[{"id":"bitcoin","name":"Bitcoin","api_symbol":"bitcoin","symbol":"BTC","market_cap_rank":1,
 "thumb":"https://coin-images.coingecko.com/coins/images/1/thumb/bitcoin.png",
 "large":"https://coin-images.coingecko.com/coins/images/1/large/bitcoin.png"},
 {"id":"wrapped-bitcoin","name":"Wrapped Bitcoin","api_symbol":"wrapped-bitcoin","symbol":"WBTC",
 "market_cap_rank":17,"thumb":"…","large":"…"}],
 "exchanges":[],"icos":[],"categories":[{"id":"bitcoin-ecosystem","name":"Bitcoin Ecosystem"}],"nfts":[]}"""
CG_RATE_LIMITED = ('{"status":{"error_code":429,"error_message":"You\'ve exceeded the Rate Limit. Please visit '
                   'https://www.coingecko.com/en/api/pricing to subscribe to our API plans for higher rate limits."}}')


@pytest.fixture
def yahoo(stub):
    return YahooProvider(base_url=stub.url, timeout=1)


@pytest.fixture
def twelve(stub):
    return TwelveDataProvider(base_url=stub.url, api_key="TDKEY", timeout=1)


@pytest.fixture
def gecko(stub):
    return CoinGeckoProvider(base_url=f"{stub.url}/api/v3", api_key="CG-key", timeout=1)


def test_yahoo_search_maps_listings_with_currency_from_suffix_and_skips_non_finance_entities(stub, yahoo):
    stub.route("/v1/finance/search", json_response(YAHOO_SEARCH))

    hits = yahoo.search("baloise")

    assert hits == [
        SearchHit("BALN.SW", "Bâloise Holding AG", "Swiss", "CHF", "stock", "yahoo"),
        SearchHit("BTC-EUR", "Bitcoin USD", "CCC", "EUR", "crypto", "yahoo"),
        SearchHit("SPY", "SPDR S&P 500 ETF Trust", "NYSEArca", "USD", "etf", "yahoo"),
    ]
    request = stub.requests_to("/v1/finance/search")[0]
    assert (request.param("q"), request.param("quotesCount"), request.param("newsCount")) == ("baloise", "10", "0")
    assert "crumb" not in request.query  # search needs no cookie dance


@pytest.mark.parametrize(("response", "error"), [
    (text_response("Edge: Too Many Requests", status=429), RateLimitedError),
    (json_response(YAHOO_BAD_REQUEST, status=400), PermanentError),
    (html_response(status=200), TransientError),
    (json_response('{"quotes":[{"symbol":"AAPL"', status=200), TransientError),  # truncated
    (json_response('{"finance":{"result":null,"error":null}}', status=200), TransientError),
    (text_response("upstream timeout", status=502), TransientError),
])
def test_yahoo_search_failures_are_classified(stub, yahoo, response, error):
    stub.route("/v1/finance/search", response)
    with pytest.raises(error):
        yahoo.search("apple")


def test_twelvedata_symbol_search_states_currency_and_type(stub, twelve):
    stub.route("/symbol_search", json_response(TD_SEARCH))

    hits = twelve.search("AAP")

    assert hits == [
        SearchHit("AAPL", "Apple Inc", "NASDAQ", "USD", "stock", "twelvedata"),
        SearchHit("AAPL", "Apple Inc", "BMV", "MXN", "stock", "twelvedata"),
        SearchHit("BTC/USD", "Bitcoin US Dollar", "Coinbase Pro", "USD", "crypto", "twelvedata"),
    ]
    request = stub.requests_to("/symbol_search")[0]
    assert (request.param("symbol"), request.param("outputsize"), request.param("apikey")) == ("AAP", "10", "TDKEY")


def test_twelvedata_search_with_no_match_is_an_empty_answer(stub, twelve):
    stub.route("/symbol_search", json_response('{"data":[],"status":"ok"}'))
    assert twelve.search("qqqqzz") == []


@pytest.mark.parametrize(("response", "error"), [
    (json_response(TD_RATE_LIMITED), RateLimitedError),  # HTTP 200, error body
    (json_response(TD_BAD_KEY, status=401), PermanentError),
    (json_response('{"code":429,"message":"You have run out of API credits for the day.","status":"error"}'),
     QuotaExhaustedError),
    (html_response(status=503), TransientError),
    (json_response('{"data":"nope","status":"ok"}'), TransientError),
])
def test_twelvedata_search_failures_are_classified(stub, twelve, response, error):
    stub.route("/symbol_search", response)
    with pytest.raises(error):
        twelve.search("AAP")


def test_coingecko_search_gives_coins_by_id_with_key_header(stub, gecko):
    stub.route("/api/v3/search", json_response(CG_SEARCH))

    hits = gecko.search("bitcoin")

    assert hits == [
        SearchHit("BTC", "Bitcoin", "", "USD", "crypto", "coingecko", "bitcoin"),
        SearchHit("WBTC", "Wrapped Bitcoin", "", "USD", "crypto", "coingecko", "wrapped-bitcoin"),
    ]
    request = stub.requests_to("/api/v3/search")[0]
    assert (request.param("query"), request.headers["x-cg-demo-api-key"]) == ("bitcoin", "CG-key")


@pytest.mark.parametrize(("response", "error"), [
    (json_response(CG_RATE_LIMITED, status=429, headers={"retry-after": "30"}), RateLimitedError),
    (json_response(CG_RATE_LIMITED, status=200), RateLimitedError),
    (json_response('{"error":"invalid api key"}', status=200), PermanentError),
    (html_response(status=403), TransientError),
    (json_response("[]"), TransientError),
])
def test_coingecko_search_failures_are_classified(stub, gecko, response, error):
    stub.route("/api/v3/search", response)
    with pytest.raises(error):
        gecko.search("bitcoin")


def test_simulated_search_answers_from_its_universe_offline():
    simulated = SimulatedProvider()
    assert [(h.symbol, h.name, h.asset_class) for h in simulated.search("bitcoin")] == [
        ("BTC", "Bitcoin", "crypto")]
    assert [h.symbol for h in simulated.search("AAP")] == ["AAPL", "AAP"]  # it prices AAP too
    assert [h.symbol for h in simulated.search("v")][0] == "V"  # the exact one first
    assert simulated.search("BALN.SW") == [SearchHit("BALN.SW", "", "", "CHF", "stock", "simulated")]
    assert simulated.search("zzzz") == []  # the symbols it does not know


@pytest.mark.parametrize(("symbol", "asset_class", "currency"), [
    ("AAPL", "stock", "USD"), ("VOD.L", "stock", "GBp"), ("SAP.DE", "stock", "EUR"), ("7203.T", "stock", "JPY"),
    ("BTC-USD", "crypto", "USD"), ("ETH-EUR", "crypto", "EUR"), ("BRK-B", "stock", "USD"),
])
def test_yahoo_listing_currency(symbol, asset_class, currency):
    assert suffix_currency(symbol, asset_class) == currency


def test_only_the_clients_with_a_search_endpoint_are_searchable():
    assert [name for name in ("yahoo", "twelvedata", "coingecko", "simulated", "stooq", "alphavantage", "nope")
            if searchable(name)] == ["yahoo", "twelvedata", "coingecko", "simulated"]
    with pytest.raises(PermanentError, match="stooq: no search endpoint"):
        StooqProvider().search("apple")  # refused before any request
