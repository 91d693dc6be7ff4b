"""manage.py import_prices and refresh_prices --sync (simulated provider: offline, deterministic)."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from portfolio.ranges import months_before
from prices.market_calendar import sessions_between
from prices.models import PriceHistory, VerificationStatus
from prices.providers import provider_get
from prices.providers.simulated import SimulatedProvider
from prices.refresh.backfill import history_missing_sessions
from tests.factories import InstrumentFactory, PriceFactory, TransactionFactory
from tests.stubs import StubServer, json_response, text_response
from tests.stubs.market import CRUMB

pytestmark = pytest.mark.django_db


def test_import_prices_writes_all_rows(tmp_path):
    house = InstrumentFactory(symbol="HOUSE", provider="manual")
    art = InstrumentFactory(symbol="ART", provider="manual")
    csv = tmp_path / "prices.csv"
    csv.write_text("symbol,date,close\nhouse,2024-01-31,350000\nHOUSE,2024-02-29,351000.5\nART,2024-01-31,12000\n")
    out = StringIO()
    call_command("import_prices", str(csv), stdout=out, stderr=StringIO())
    assert "Imported 3 closes for 2 instruments" in out.getvalue()
    assert list(PriceHistory.objects.filter(instrument=house).values_list("date", "close")) == [
        (date(2024, 1, 31), Decimal("350000")), (date(2024, 2, 29), Decimal("351000.5"))]
    assert PriceHistory.objects.get(instrument=art).close == Decimal("12000")


def test_import_prices_names_every_bad_line_and_writes_nothing(tmp_path):
    InstrumentFactory(symbol="HOUSE", provider="manual")
    InstrumentFactory(symbol="AAPL", provider="yahoo")
    csv = tmp_path / "prices.csv"
    csv.write_text("symbol,date,close\nHOUSE,2024-01-31,350000\nHOUSE,2024-02-30,1\nNOPE,2024-01-31,1\n"
                   "HOUSE,2024-03-29,-4\nAAPL,2024-01-31,180\n")
    with pytest.raises(CommandError) as raised:
        call_command("import_prices", str(csv), stdout=StringIO(), stderr=StringIO())
    message = str(raised.value)
    assert "line 3: date must be YYYY-MM-DD" in message
    assert "line 4: unknown symbol NOPE" in message
    assert "line 5: close: Must be greater than zero." in message
    assert "only manual instruments" in message
    assert not PriceHistory.objects.exists()


def test_import_prices_requires_the_columns(tmp_path):
    csv = tmp_path / "prices.csv"
    csv.write_text("ticker,day,price\nHOUSE,2024-01-31,1\n")
    with pytest.raises(CommandError, match="missing column"):
        call_command("import_prices", str(csv), stdout=StringIO(), stderr=StringIO())


def test_refresh_prices_sync_stores_quotes_and_flags_unknown_symbols():
    aapl = InstrumentFactory(symbol="AAPL", verification_status=VerificationStatus.PENDING)
    fake = InstrumentFactory(symbol="ZZFAKE", verification_status=VerificationStatus.PENDING)
    InstrumentFactory(symbol="HOUSE", provider="manual")  # nothing to fetch for it
    out, err = StringIO(), StringIO()
    call_command("refresh_prices", "--sync", stdout=out, stderr=err)
    assert "2 instruments: 0 still fresh" in out.getvalue()
    assert "1 unknown, 0 failed" in out.getvalue()
    assert "Quote batches" in err.getvalue()  # the progress bar
    aapl.refresh_from_db()
    fake.refresh_from_db()
    assert aapl.verification_status == VerificationStatus.VERIFIED
    assert fake.verification_status == VerificationStatus.UNKNOWN
    stored = PriceHistory.objects.get(instrument=aapl)
    quote = SimulatedProvider().latest_quotes(["AAPL"]).quotes["AAPL"]
    assert stored.close == quote.price
    assert not PriceHistory.objects.filter(instrument=fake).exists()

    # A second run finds the quote still fresh in the cache and asks for nothing.
    again = StringIO()
    call_command("refresh_prices", "--sync", stdout=again, stderr=StringIO())
    assert "1 instrument: 1 still fresh, 0 prices stored from 0 requests in 0 batches" in again.getvalue()


def test_refresh_prices_history_backfills_from_the_first_trade():
    spy = InstrumentFactory(symbol="SPY")
    TransactionFactory(instrument=spy, date=date(2025, 12, 1))
    out = StringIO()
    call_command("refresh_prices", "--symbols", "SPY", "--sync", "--history", stdout=out, stderr=StringIO())
    dates = list(PriceHistory.objects.filter(instrument=spy).order_by("date").values_list("date", flat=True))
    assert dates[0] == date(2025, 12, 1)
    assert date(2025, 12, 25) not in dates  # Christmas
    assert "History:" in out.getvalue()
    # Running again asks only for what is missing: nothing.
    again = StringIO()
    call_command("refresh_prices", "--symbols", "SPY", "--sync", "--history", "--force", stdout=again,
                 stderr=StringIO())
    assert "History: 0 daily closes backfilled." in again.getvalue()


def test_refresh_prices_rejects_unknown_symbols():
    with pytest.raises(CommandError, match="Unknown symbols: NOPE"):
        call_command("refresh_prices", "--symbols", "NOPE", "--sync", stdout=StringIO(), stderr=StringIO())


def test_history_backfill_fills_holes_without_refetching_what_is_stored():
    spy = InstrumentFactory(symbol="SPY")
    TransactionFactory(instrument=spy, date=date(2026, 11, 2))
    for day in (2, 3, 4, 12, 13):
        PriceFactory(instrument=spy, date=date(2026, 11, day))
    now = datetime(2026, 11, 17, 22, tzinfo=UTC)
    missing = history_missing_sessions(instrument=spy, since=date(2026, 11, 2), now=now)
    # 5-11 Nov (the weekend is no hole), then the 14th-15th weekend, 16-17 missing
    assert missing == [date(2026, 11, day) for day in (5, 6, 9, 10, 11, 16, 17)]


def test_backfill_history_command_fills_from_the_first_trade_or_the_sparklines_months_when_later():
    # SPY first traded 200 days ago; KO 10 days ago (its sparkline draws its last 3 months all the same)
    today = timezone.localdate()
    long_ago = sessions_between(mic="XNYS", start=today - timedelta(days=200), end=today)[0]
    recent = sessions_between(mic="XNYS", start=today - timedelta(days=10), end=today)[0]
    spy, ko = InstrumentFactory(symbol="SPY"), InstrumentFactory(symbol="KO")
    TransactionFactory(instrument=spy, date=long_ago)
    TransactionFactory(instrument=ko, date=recent)
    out = StringIO()
    call_command("backfill_history", "--symbols", "SPY,KO", stdout=out, stderr=StringIO())
    assert PriceHistory.objects.filter(instrument=spy).order_by("date").first().date == long_ago
    window = sessions_between(mic="XNYS", start=months_before(today, 3), end=today)[0]
    assert PriceHistory.objects.filter(instrument=ko).order_by("date").first().date == window
    written = int(out.getvalue().split()[0])
    assert written == PriceHistory.objects.count() >= 120 + 55


@pytest.fixture
def dead_yahoo(settings):
    settings.PROVIDER_BACKOFF_INITIAL_SECONDS = 0.01
    settings.PROVIDER_BACKOFF_MAX_SECONDS = 0.05
    settings.PROVIDER_MAX_ATTEMPTS = 2
    settings.PROVIDER_TIMEOUT_SECONDS = 0.5
    server = StubServer()
    with server.running():
        server.route("/v1/test/getcrumb", text_response(CRUMB))
        server.route("/v7/finance/quote", json_response("{}", status=503))
        settings.PROVIDERS = {**settings.PROVIDERS, "yahoo": {"base_url": server.url, "api_key": None}}
        provider_get.cache_clear()
        yield server
    provider_get.cache_clear()


def test_refresh_prices_sync_exits_non_zero_when_every_quote_failed(dead_yahoo):
    instrument = InstrumentFactory(symbol="Y000", provider="yahoo")
    PriceFactory(instrument=instrument, date=timezone.localdate() - timedelta(days=10), close=Decimal("1"),
                 source="yahoo")
    out, err = StringIO(), StringIO()
    # a script or cron reads the exit status: 0 said this run, which fetched nothing, succeeded
    with pytest.raises(CommandError, match="none of 1 quote was fetched"):
        call_command("refresh_prices", "--sync", "--force", stdout=out, stderr=err)
    assert "Y000:" in err.getvalue()


def test_backfill_history_refuses_a_symbol_it_does_not_have():
    # a typo backfilled nothing and exited 0 ("0 daily closes backfilled."), where refresh_prices refuses it
    InstrumentFactory(symbol="SPY")
    with pytest.raises(CommandError, match="Unknown symbols: SPYY"):
        call_command("backfill_history", "--symbols", "SPYY", stdout=StringIO(), stderr=StringIO())
