"""Allocation by sector, country and region: the market value of each open holding spread over what its
instrument profile says it is exposed to (prices.models.InstrumentProfile).

- A company: all of its value to its sector and its country.
- A fund with a breakdown from its provider (or the admin): spread by those weights; what the weights
  leave uncovered is "unknown". An ETF without a sector breakdown is one sector, "ETF" (a fund: "Fund").
- A coin: "Crypto" in every dimension — it has no sector or country, and that is known, not unknown.
- Anything else without a profile (yet): "unknown", its own slice, never spread over the others.

Regions follow from countries (prices/regions.py). Values are in the base currency; a holding with no
value (no price, no FX rate) is left out, as in the totals.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from core.query_cache import query_cache
from portfolio.dashboard import DASHBOARD_CACHE_SECONDS
from portfolio.holdings import EXACT_SUMS, ZERO, money_format, weights_format
from portfolio.models import Portfolio
from portfolio.selectors import portfolio_valuation_get
from prices.models import AssetClass, InstrumentProfile
from prices.profiles import profiles_request
from prices.providers.profiles import PROFILES
from prices.regions import UNKNOWN, region_of

CRYPTO = "Crypto"
CASH = "Cash"  # cash has no sector and no country: a slice of its own in both
ONE = Decimal(1)


def _weights(raw: object) -> dict[str, Decimal]:
    """A breakdown as stored (JSON, possibly typed by hand): positive fractions, at most 1 in all; anything
    unreadable is ignored rather than trusted."""
    if not isinstance(raw, dict):
        return {}
    weights = {}
    for name, value in raw.items():
        try:
            weight = Decimal(str(value))
        except (InvalidOperation, ValueError):
            continue
        if weight.is_finite() and weight > 0 and str(name).strip():
            weights[str(name).strip()] = weight
    total = sum(weights.values(), ZERO)
    return {name: w / total for name, w in weights.items()} if total > ONE else weights


def _with_unknown(weights: dict[str, Decimal]) -> dict[str, Decimal]:
    covered = sum(weights.values(), ZERO)
    return {**weights, UNKNOWN: ONE - covered} if covered < ONE else weights


def exposure_of(asset_class: str, profile: InstrumentProfile | None) -> dict[str, dict[str, Decimal]]:
    """How one instrument's value splits by sector and by country (fractions summing to 1)."""
    if asset_class == AssetClass.CRYPTO:
        return {"sector": {CRYPTO: ONE}, "country": {CRYPTO: ONE}}
    if asset_class == AssetClass.CASH:
        return {"sector": {CASH: ONE}, "country": {CASH: ONE}}
    sector_weights = _weights(profile.sector_weights) if profile else {}
    country_weights = _weights(profile.country_weights) if profile else {}
    if sector_weights:
        sector = _with_unknown(sector_weights)
    elif asset_class == AssetClass.ETF:
        sector = {"ETF": ONE}
    elif asset_class == AssetClass.FUND:
        sector = {"Fund": ONE}
    else:
        sector = {(profile.sector if profile and profile.sector else UNKNOWN): ONE}
    if country_weights:
        country = _with_unknown(country_weights)
    else:
        country = {(profile.country if profile and profile.country else UNKNOWN): ONE}
    return {"sector": sector, "country": country}


def _slices(values: dict[str, Decimal], total: Decimal) -> list[dict]:
    """The slices, largest first ("unknown" last), with weights that add up to exactly 1."""
    ordered = [(name, value) for name, value in sorted(
        values.items(), key=lambda item: (item[0] == UNKNOWN, -item[1], item[0])) if value]
    weights = weights_format([value for _, value in ordered]) if total else [None] * len(ordered)
    return [{"name": name, "value": money_format(value), "weight": weight}
            for (name, value), weight in zip(ordered, weights, strict=True)]


# Cached per data version, which a stored profile moves too (portfolio/receivers.py): the page's polls
# while profiles are fetched cost a cache read each. A profile edited in the admin shows within the TTL.
@query_cache("allocation", ttl=DASHBOARD_CACHE_SECONDS, key=lambda *, portfolio: portfolio.pk,
             version=lambda *, portfolio: portfolio.data_version)
def portfolio_exposure_get(*, portfolio: Portfolio) -> dict:
    """Slices by sector, country and region; instruments still without a profile are asked for (the
    workers fetch them) and listed in `profiles_pending`."""
    valuation = portfolio_valuation_get(portfolio=portfolio)
    valued = [h for h in valuation.holdings if h.market_value is not None and h.market_value > 0]
    profiles = InstrumentProfile.objects.in_bulk([h.instrument.pk for h in valued])
    sectors: dict[str, Decimal] = {}
    countries: dict[str, Decimal] = {}
    regions: dict[str, Decimal] = {}
    pending = []
    add = EXACT_SUMS.add
    for holding in valued:
        instrument = holding.instrument
        profile = profiles.get(instrument.pk)
        if (profile is None and instrument.asset_class not in (AssetClass.CRYPTO, AssetClass.CASH)
                and instrument.owner_id is None
                and instrument.provider in PROFILES):
            pending.append(instrument)
        split = exposure_of(instrument.asset_class, profile)
        for name, weight in split["sector"].items():
            sectors[name] = add(sectors.get(name, ZERO), holding.market_value * weight)
        for name, weight in split["country"].items():
            share = holding.market_value * weight
            countries[name] = add(countries.get(name, ZERO), share)
            region = name if name in (CRYPTO, CASH) else region_of(name)
            regions[region] = add(regions.get(region, ZERO), share)
    if pending:
        profiles_request(instrument_ids=[instrument.pk for instrument in pending])
    total = sum((h.market_value for h in valued), ZERO)
    return {
        "base_currency": portfolio.base_currency,
        "total_value": money_format(total),
        "by_sector": _slices(sectors, total),
        "by_country": _slices(countries, total),
        "by_region": _slices(regions, total),
        "profiles_pending": sorted(instrument.symbol for instrument in pending),
    }
