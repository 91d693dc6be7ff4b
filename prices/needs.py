"""What price history and FX rates the apps above need, told to prices by those apps.

Prices knows nothing of portfolios. The app that does registers, in its AppConfig.ready(), functions
answering "from which date does anyone need closes of these instruments" and "which currencies, from
which date, does each base currency need"; the scheduled backfills and the commands ask through here.
"""

from collections.abc import Callable, Iterable
from datetime import date

InstrumentNeeds = Callable[[Iterable[int] | None], dict[int, date]]
FxNeeds = Callable[[], dict[str, dict[str, date]]]

_instrument_sources: list[InstrumentNeeds] = []
_fx_sources: list[FxNeeds] = []


def needs_register(*, instruments: InstrumentNeeds, fx: FxNeeds) -> None:
    if instruments not in _instrument_sources:
        _instrument_sources.append(instruments)
    if fx not in _fx_sources:
        _fx_sources.append(fx)


def instrument_needs_get(*, instrument_ids: Iterable[int] | None = None) -> dict[int, date]:
    """Instrument id -> the earliest date anyone needs its closes from (None: every instrument needed)."""
    ids = None if instrument_ids is None else list(instrument_ids)
    needs: dict[int, date] = {}
    for source in _instrument_sources:
        for instrument_id, since in source(ids).items():
            needs[instrument_id] = min(since, needs.get(instrument_id, since))
    return needs


def fx_needs_get() -> dict[str, dict[str, date]]:
    """Base currency -> {other major currency: the earliest date its rate against the base is needed}."""
    needs: dict[str, dict[str, date]] = {}
    for source in _fx_sources:
        for base, currencies in source().items():
            for currency, since in currencies.items():
                known = needs.setdefault(base, {})
                known[currency] = min(since, known.get(currency, since))
    return needs
