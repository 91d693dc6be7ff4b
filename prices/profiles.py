"""Instrument profiles (sector, industry, country, fund breakdowns) fetched by the workers through the
provider gateway — the same pacing, quota and breaker as quotes — and stored for allocation.

Which instruments: those anyone needs (prices/needs.py) without a profile, or with one older than
PROFILE_MAX_AGE_DAYS; never a `locked` one (edited in the admin). Run daily by beat, and on demand
for instruments a page found without one (`profiles_request`, at most once an hour per instrument).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import RedisError

from core.redis_store import claims_take, redis_key
from core.tasks import task_send
from prices.models import AssetClass, Instrument, InstrumentProfile
from prices.needs import instrument_needs_get
from prices.providers.base import PermanentError, ProfileFacts, ProviderError, UnknownSymbolError
from prices.providers.gateway import PriceService
from prices.providers.profiles import PROFILES
from prices.signals import profiles_changed

logger = logging.getLogger(__name__)

PROFILES_TASK = "prices.instrument_profiles_refresh_task"
# An instrument a page asked a profile for is asked again no sooner than this.
REQUEST_CLAIM_SECONDS = 3600


def profiles_due(*, instrument_ids: Iterable[int] | None = None) -> list[Instrument]:
    """Needed instruments whose provider has profiles and whose profile is missing or old, unlocked."""
    ids = list(instrument_needs_get(instrument_ids=instrument_ids)) if instrument_ids is None else list(instrument_ids)
    cutoff = timezone.now() - timedelta(days=settings.PROFILE_MAX_AGE_DAYS)
    return list(
        Instrument.objects.filter(pk__in=ids, owner__isnull=True, provider__in=list(PROFILES))
        .exclude(asset_class=AssetClass.CRYPTO)
        .filter(Q(profile__isnull=True) | Q(profile__locked=False, profile__fetched_at__isnull=True)
                | Q(profile__locked=False, profile__fetched_at__lt=cutoff))
        .order_by("provider", "symbol")
    )


def profile_store(*, instrument: Instrument, facts: ProfileFacts | None, source: str) -> InstrumentProfile | None:
    """Store what the provider said (None: it does not know the instrument, stored as an empty, dated
    profile so it is not asked again before PROFILE_MAX_AGE_DAYS). A locked profile is never touched.
    Announces `profiles_changed` when it stored one."""
    facts = facts or ProfileFacts()
    fields = {"sector": facts.sector[:100], "industry": facts.industry[:100], "country": facts.country[:100],
              "sector_weights": facts.sector_weights, "country_weights": facts.country_weights,
              "source": source, "fetched_at": timezone.now()}
    with transaction.atomic():
        updated = InstrumentProfile.objects.filter(instrument=instrument, locked=False).update(**fields)
        if not updated:
            profile, created = InstrumentProfile.objects.get_or_create(instrument=instrument, defaults=fields)
            if not created:
                return None  # locked: staff's word stands
        else:
            profile = InstrumentProfile.objects.get(instrument=instrument)
        profiles_changed.send(sender=InstrumentProfile, instrument_ids=[instrument.pk])
    return profile


def instrument_profiles_refresh(*, instrument_ids: Iterable[int] | None = None) -> dict[str, int]:
    """Fetch and store the due profiles, one paced request each; returns counts by outcome."""
    counts = {"stored": 0, "unknown": 0, "refused": 0, "failed": 0}
    service = PriceService()  # one gate per provider for the whole run
    for instrument in profiles_due(instrument_ids=instrument_ids):
        gate = service.gate(instrument.provider)
        try:
            facts = gate.call(lambda g=gate, i=instrument: g.provider.profile(i.quote_symbol), [0])
        except UnknownSymbolError:
            profile_store(instrument=instrument, facts=None, source=instrument.provider)
            counts["unknown"] += 1
        except PermanentError as error:
            # A plan without profiles (Twelve Data's free tier) will not change by asking daily: an empty,
            # dated profile keeps it "unknown" until PROFILE_MAX_AGE_DAYS, or until staff fill it in.
            logger.info("profile of %s refused: %s", instrument.symbol, error)
            profile_store(instrument=instrument, facts=None, source=instrument.provider)
            counts["refused"] += 1
        except ProviderError as error:
            logger.info("profile of %s not fetched: %s", instrument.symbol, error)
            counts["failed"] += 1  # asked again at the next run
        else:
            profile_store(instrument=instrument, facts=facts, source=instrument.provider)
            counts["stored"] += 1
    return counts


def profiles_request(*, instrument_ids: Iterable[int]) -> bool:
    """Have the workers fetch these instruments' profiles (those not asked for within the hour). Never
    calls a provider; True when a fetch was queued."""
    try:
        claimed = claims_take(ids=list(instrument_ids), key=lambda pk: redis_key("profile", "requested", pk),
                              seconds=REQUEST_CLAIM_SECONDS)
        if claimed:
            task_send(PROFILES_TASK, kwargs={"instrument_ids": claimed})
    except (RedisError, BrokerError):
        logger.warning("profiles not requested: Redis unavailable")
        return False
    return bool(claimed)
