"""Profile endpoints (sector, country, fund breakdowns) against loopback stubs in their wire formats."""

import pytest

from prices.providers.base import PermanentError, ProfileFacts, RateLimitedError, TransientError, UnknownSymbolError
from prices.providers.coingecko import CoinGeckoProvider
from prices.providers.profiles import PROFILES
from prices.providers.simulated import SimulatedProvider
from prices.providers.twelvedata import TwelveDataProvider
from prices.providers.yahoo import YahooProvider
from tests.stubs import html_response, json_response, text_response

YAHOO_AAPL = """{"quoteSummary":{"result":[{"assetProfile":{"address1":"One Apple Park Way","city":"Cupertino",
 "state":"CA","zip":"95014","country":"United States","website":"https://www.apple.com",
 "industry":"Consumer Electronics",
 "industryKey":"consumer-electronics","industryDisp":"Consumer Electronics","sector":"Technology",
 "sectorKey":"technology","sectorDisp":"Technology","fullTimeEmployees":150000,"maxAge":86400},
 "price":{"maxAge":1,"currency":"USD","quoteType":"EQUITY","longName":"Apple Inc.","symbol":"AAPL"}}],"error":null}}"""
YAHOO_SPY = """{"quoteSummary":{"result":[{"price":{"currency":"USD","quoteType":"ETF",
 "longName":"SPDR S&P 500 ETF Trust"},
 "topHoldings":{"maxAge":1,"stockPosition":{"raw":0.9968,"fmt":"99.68%"},"holdings":[],
 "sectorWeightings":[{"realestate":{"raw":0.0229,"fmt":"2.29%"}},{"consumer_cyclical":{"raw":0.1035,"fmt":"10.35%"}},
  {"technology":{"raw":0.3213,"fmt":"32.13%"}},{"financial_services":{"raw":0.1301,"fmt":"13.01%"}},
  {"healthcare":{}}]}}],"error":null}}"""
YAHOO_NOT_FOUND = ('{"quoteSummary":{"result":null,"error":{"code":"Not Found",'
                   '"description":"Quote not found for symbol: ZZZZ"}}}')
YAHOO_BAD_CRUMB = '{"finance":{"result":null,"error":{"code":"Unauthorized","description":"Invalid Crumb"}}}'
TD_PROFILE = """{"symbol":"AAPL","name":"Apple Inc","exchange":"NASDAQ","mic_code":"XNGS","sector":"Technology",
 "industry":"Consumer Electronics","employees":147000,"website":"http://www.apple.com","description":"Apple Inc. …",
 "type":"Common Stock","CEO":"Mr. Timothy D. Cook","address":"One Apple Park Way","address2":"","city":"Cupertino",
 "zip":"95014","state":"CA","country":"United States","phone":"408 996 1010"}"""
TD_PLAN = ('{"code":403,"message":"/profile is available exclusively with grow or pro or enterprise plans. Consider '
           'upgrading your API Key now at https://twelvedata.com/pricing","status":"error"}')
TD_NOT_FOUND = ('{"code":404,"message":"**symbol** not found: ZZZZ. Please specify it correctly according to API '
                'Documentation.","status":"error"}')


@pytest.fixture
def yahoo(stub):
    stub.route("/v1/test/getcrumb", text_response("crumb-1"))
    return YahooProvider(base_url=stub.url, timeout=1)


@pytest.fixture
def twelve(stub):
    return TwelveDataProvider(base_url=stub.url, api_key="TDKEY", timeout=1)


def test_yahoo_company_profile(stub, yahoo):
    stub.route("/v10/finance/quoteSummary/AAPL", json_response(YAHOO_AAPL))
    assert yahoo.profile("AAPL") == ProfileFacts("Technology", "Consumer Electronics", "United States")
    request = stub.requests_to("/v10/finance/quoteSummary/AAPL")[0]
    assert (request.param("modules"), request.param("crumb")) == ("assetProfile,price,topHoldings", "crumb-1")


def test_yahoo_fund_sector_weightings(stub, yahoo):
    stub.route("/v10/finance/quoteSummary/SPY", json_response(YAHOO_SPY))
    facts = yahoo.profile("SPY")
    assert facts.sector_weights == {"Real Estate": "0.0229", "Consumer Cyclical": "0.1035", "Technology": "0.3213",
                                    "Financial Services": "0.1301"}  # the empty entry is skipped
    assert (facts.sector, facts.country) == ("", "")


def test_yahoo_refreshes_an_expired_crumb_once(stub, yahoo):
    stub.route("/v10/finance/quoteSummary/AAPL", json_response(YAHOO_BAD_CRUMB, status=401), json_response(YAHOO_AAPL))
    assert yahoo.profile("AAPL").sector == "Technology"
    assert len(stub.requests_to("/v1/test/getcrumb")) == 2


@pytest.mark.parametrize(("response", "error"), [
    (json_response(YAHOO_NOT_FOUND, status=404), UnknownSymbolError),
    (text_response("Edge: Too Many Requests", status=429), RateLimitedError),
    (html_response(status=404), TransientError),
    (json_response('{"quoteSummary":{"result":[],"error":null}}'), TransientError),
    (json_response('{"quoteSummary":{"result":[{"assetProfile"'), TransientError),
])
def test_yahoo_profile_failures(stub, yahoo, response, error):
    stub.route("/v10/finance/quoteSummary/ZZZZ", response)
    with pytest.raises(error):
        yahoo.profile("ZZZZ")


def test_twelvedata_profile(stub, twelve):
    stub.route("/profile", json_response(TD_PROFILE))
    assert twelve.profile("AAPL") == ProfileFacts("Technology", "Consumer Electronics", "United States")
    assert stub.requests_to("/profile")[0].param("apikey") == "TDKEY"


@pytest.mark.parametrize(("response", "error"), [
    (json_response(TD_PLAN), PermanentError),  # the free plan has no profiles: never retried
    (json_response(TD_NOT_FOUND), UnknownSymbolError),
    (json_response('{"code":429,"message":"You have run out of API credits for the current minute.",'
                   '"status":"error"}'), RateLimitedError),
    (html_response(status=502), TransientError),
    (json_response('{"unexpected":true}'), TransientError),
])
def test_twelvedata_profile_failures(stub, twelve, response, error):
    stub.route("/profile", response)
    with pytest.raises(error):
        twelve.profile("ZZZZ")


def test_simulated_profiles_offline():
    simulated = SimulatedProvider()
    assert simulated.profile("AAPL").country == "United States"
    assert simulated.profile("SPY").sector_weights["Technology"] == "0.32"
    assert simulated.profile("VTI").sector_weights == {}  # no breakdown: the "ETF" sector
    with pytest.raises(UnknownSymbolError):
        simulated.profile("ZZZZ")


def test_only_the_clients_with_profiles_are_asked():
    assert sorted(PROFILES) == ["simulated", "twelvedata", "yahoo"]
    assert CoinGeckoProvider().profile("bitcoin") is None  # a coin has no sector or country: nothing to ask
