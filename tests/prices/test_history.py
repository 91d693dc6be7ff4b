"""History on demand (prices.history): which instruments a trade's date needs closes fetched for."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from prices.history import history_short_get
from prices.services import PricePoint, prices_upsert
from tests.factories import InstrumentFactory

pytestmark = pytest.mark.django_db


def test_closes_that_stopped_after_the_trade_but_before_today_are_short():
    # given KO's closes stored for a month two years ago (someone held it then), none since
    today = timezone.localdate()
    ko = InstrumentFactory(symbol="KO", provider="yahoo")
    month = [today - timedelta(days=730 - n) for n in range(30)]
    prices_upsert(instrument=ko, points=[PricePoint(day, Decimal("60")) for day in month], source="yahoo")

    # when a buy dated inside that month is recorded today (held from then to now)
    traded = month[10]

    # then the closes from the month's end to today are missing: KO is short from the trade on
    # (observed: {} — the close near the trade's date covers it, and the position is valued at a close of
    # two years ago until the hourly safety net)
    assert ko.pk in history_short_get(needs={ko.pk: traded})
