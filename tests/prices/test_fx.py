"""FX rates stored daily and conversion on a date, including pence-quoted currencies."""

from datetime import date
from decimal import Decimal as D

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from prices.fx import FxRateMissing, FxTable, fx_rate_get, fx_rates_store, fx_refresh
from prices.models import FxRate
from prices.providers.frankfurter import FrankfurterClient
from tests.factories import InstrumentFactory, PortfolioFactory, TransactionFactory
from tests.stubs import StubServer, json_response

pytestmark = pytest.mark.django_db


@pytest.fixture
def rates():
    fx_rates_store(base="USD", series={
        date(2024, 1, 2): {"EUR": D("0.9"), "GBP": D("0.8")},
        date(2024, 1, 5): {"EUR": D("0.92"), "GBP": D("0.79")},
    })


def test_direct_rate_on_and_between_business_days(rates):
    assert fx_rate_get(source="USD", target="EUR", on=date(2024, 1, 2)) == D("0.9")
    assert fx_rate_get(source="USD", target="EUR", on=date(2024, 1, 4)) == D("0.9")  # carried forward
    assert fx_rate_get(source="USD", target="EUR", on=date(2024, 1, 7)) == D("0.92")


def test_inverse_rate(rates):
    assert fx_rate_get(source="EUR", target="USD", on=date(2024, 1, 5)) == D(1) / D("0.92")


def test_pence_convert_through_pounds(rates):
    assert fx_rate_get(source="GBp", target="GBP", on=date(2024, 1, 5)) == D("0.01")
    assert fx_rate_get(source="GBp", target="USD", on=date(2024, 1, 5)) == D("0.01") / D("0.79")
    assert fx_rate_get(source="USD", target="USD", on=date(1990, 1, 1)) == D(1)


def test_a_table_names_the_rates_that_never_change_and_they_are_its_rates_on_any_day(rates):
    table = FxTable(target="GBP", currencies={"GBP", "GBp", "USD", "EUR"})

    fixed = table.fixed_rates()

    assert fixed == {"GBP": D("1"), "GBp": D("0.01")}  # USD and EUR move with the stored rates
    for day in (date(2024, 1, 1), date(2024, 1, 5)):  # before any stored rate, and on one
        assert {code: table.rate(code, day) for code in fixed} == fixed


def test_a_table_of_one_day_reads_a_row_per_pair_and_answers_as_the_whole_table_on_that_day(rates):
    # Both directions stored, on different days and on the same day (the direct pair wins its day), a gap, a
    # later rate than the day asked, and pence through pounds.
    fx_rates_store(base="EUR", series={date(2024, 1, 3): {"USD": D("1.1")}, date(2024, 1, 5): {"USD": D("1.2")},
                                       date(2024, 1, 9): {"USD": D("1.3")}})
    fx_rates_store(base="GBP", series={date(2024, 1, 3): {"USD": D("1.25")}})
    currencies = {"USD", "EUR", "GBp", "JPY"}
    whole = FxTable(target="USD", currencies=currencies)
    for day in (date(2024, 1, 1), date(2024, 1, 2), date(2024, 1, 4), date(2024, 1, 5), date(2024, 1, 8)):
        with CaptureQueriesContext(connection) as queries:
            table = FxTable(target="USD", currencies=currencies, on=day)
        sql = queries.captured_queries[0]["sql"]  # as Postgres ran it, parameters in place
        answers = {code: table.rate(code, day) for code in currencies}
        assert answers == {code: whole.rate(code, day) for code in currencies}, day
        if connection.vendor == "postgresql" and day >= date(2024, 1, 5):
            # USD/EUR, EUR/USD, USD/GBP, GBP/USD: one row each, not every day of them
            with connection.cursor() as cursor:
                cursor.execute(sql)
                assert len(cursor.fetchall()) == 4
            assert FxRate.objects.filter(date__lte=day).count() > 4
    assert FxTable(target="USD", currencies={"EUR"}, on=date(2024, 1, 4)).rate("EUR", date(2024, 1, 4)) == D("1.1")
    with pytest.raises(ValueError):
        FxTable(target="USD", currencies={"EUR"}, on=date(2024, 1, 4)).rate("EUR", date(2024, 1, 5))


def test_no_rate_before_the_first_one_is_an_error_not_a_guess(rates):
    with pytest.raises(FxRateMissing):
        fx_rate_get(source="USD", target="EUR", on=date(2023, 12, 29))
    with pytest.raises(FxRateMissing):
        fx_rate_get(source="USD", target="JPY", on=date(2024, 1, 5))


def test_storing_again_updates_in_place(rates):
    assert fx_rates_store(base="USD", series={date(2024, 1, 5): {"EUR": D("0.93"), "CHF": None}}) == 1
    assert fx_rate_get(source="USD", target="EUR", on=date(2024, 1, 5)) == D("0.93")


def test_fx_refresh_fetches_what_portfolios_need_from_the_last_stored_day(user):
    portfolio = PortfolioFactory(owner=user, base_currency="USD")
    TransactionFactory(portfolio=portfolio, currency="EUR", date=date(2024, 1, 3),
                       instrument=InstrumentFactory(symbol="SAP.DE", currency="EUR"))
    TransactionFactory(portfolio=portfolio, currency="GBp", date=date(2024, 1, 4),
                       instrument=InstrumentFactory(symbol="VOD.L", currency="GBp"))
    TransactionFactory(portfolio=portfolio, date=date(2023, 1, 2), instrument=InstrumentFactory(symbol="AAPL"))
    series = ('{"amount":1.0,"base":"USD","start_date":"2024-01-03","end_date":"2024-01-05",'
              '"rates":{"2024-01-03":{"EUR":0.9159,"GBP":0.7888},"2024-01-04":{"EUR":0.9131,"GBP":0.7878},'
              '"2024-01-05":{"EUR":0.9152,"GBP":0.7868}}}')
    server = StubServer()
    with server.running():
        server.route("/2024-01-03..2024-01-05", json_response(series))
        written = fx_refresh(client=FrankfurterClient(base_url=server.url), today=date(2024, 1, 5))
        assert written == 6
        request = server.requests_to("/2024-01-03..2024-01-05")[0]
        assert (request.param("base"), request.param("symbols")) == ("USD", "EUR,GBP")
        # the next run starts after the last stored day
        server.route("/2024-01-06..2024-01-08", json_response(
            '{"amount":1.0,"base":"USD","start_date":"2024-01-05","end_date":"2024-01-08",'
            '"rates":{"2024-01-05":{"EUR":0.9152,"GBP":0.7868},"2024-01-08":{"EUR":0.914,"GBP":0.786}}}'))
        assert fx_refresh(client=FrankfurterClient(base_url=server.url), today=date(2024, 1, 8)) == 4
        assert not server.unrouted
    assert fx_rate_get(source="GBp", target="USD", on=date(2024, 1, 7)) == D("0.01") / D("0.7868")
    assert fx_rate_get(source="USD", target="EUR", on=date(2024, 1, 8)) == D("0.914")


class RefusingTwd(StubServer):
    """Frankfurter, which does not publish TWD: a request naming it is a 404."""

    def _record(self, request):
        response = super()._record(request)
        if "TWD" in (request.param("symbols") or ""):
            return json_response('{"message":"not found"}', status=404)
        return response


EUR_3_TO_5_JAN = ('{"amount":1.0,"base":"USD","start_date":"2024-01-03","end_date":"2024-01-05",'
                  '"rates":{"2024-01-03":{"EUR":0.9159},"2024-01-04":{"EUR":0.9131},"2024-01-05":{"EUR":0.9152}}}')


def _holding_eur_and_twd(user) -> None:
    """A USD portfolio holding a EUR stock and a Taiwan listing (TWD) since 3 January 2024."""
    portfolio = PortfolioFactory(owner=user, base_currency="USD")
    TransactionFactory(portfolio=portfolio, currency="EUR", date=date(2024, 1, 3),
                       instrument=InstrumentFactory(symbol="SAP.DE", currency="EUR"))
    TransactionFactory(portfolio=portfolio, currency="USD", date=date(2024, 1, 3),
                       instrument=InstrumentFactory(symbol="2330.TW", currency="TWD"))


def test_one_unpublished_currency_does_not_stop_every_fx_rate(user):
    # (it failed the whole refresh: no rate of any currency, for any portfolio, was fetched any more)
    _holding_eur_and_twd(user)
    with (stub := RefusingTwd()).running():
        stub.route("/2024-01-03..2024-01-05", json_response(EUR_3_TO_5_JAN))
        fx_refresh(client=FrankfurterClient(base_url=stub.url), today=date(2024, 1, 5))
    assert FxRate.objects.filter(base="USD", quote="EUR").count() == 3


def test_the_next_refresh_asks_only_for_the_days_after_the_last_stored_rate(user):
    # (each night asked every currency again from the unpublished one's first day needed)
    _holding_eur_and_twd(user)
    later = ('{"amount":1.0,"base":"USD","start_date":"2024-01-05","end_date":"2024-01-08",'
             '"rates":{"2024-01-05":{"EUR":0.9152},"2024-01-08":{"EUR":0.914}}}')
    with (stub := RefusingTwd()).running():
        stub.route("/2024-01-03..2024-01-05", json_response(EUR_3_TO_5_JAN))
        fx_refresh(client=FrankfurterClient(base_url=stub.url), today=date(2024, 1, 5))
        assert FxRate.objects.filter(base="USD", quote="EUR").count() == 3
        # the next day's run: EUR is stored through 5 January
        stub.route("/2024-01-06..2024-01-08", json_response(later))
        stub.route("/2024-01-03..2024-01-08", json_response(EUR_3_TO_5_JAN))  # what it asked instead
        fx_refresh(client=FrankfurterClient(base_url=stub.url), today=date(2024, 1, 8))
        eur_asked = [r.path for r in stub.requests if r.param("symbols") == "EUR"]
    assert eur_asked[-1] == "/2024-01-06..2024-01-08"  # was /2024-01-03..2024-01-08
