"""The market-data settings, checked once at start (every process: web, workers, beat, manage.py).

A value no provider can honour — a batch larger than the provider takes in one request, a pace of zero,
a provider name that does not exist — is refused before anything runs, in one line naming the variable,
instead of failing every refresh later.
"""

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from prices.providers import PROVIDER_CLASSES, provider_class_get

# Names an instrument may be priced by that are not clients of a provider.
_NOT_CLIENTS = {"manual"}


def market_data_settings_problems() -> list[str]:
    """Every problem of the market-data settings, one line each (empty: all good)."""
    problems = []
    known = sorted({*PROVIDER_CLASSES, *_NOT_CLIENTS})
    for variable in ("PRICE_PROVIDER", "CRYPTO_PRICE_PROVIDER"):
        value = getattr(settings, variable)
        if value not in known:
            problems.append(f"{variable}={value} is not a provider; use one of {', '.join(known)}.")
    for name, limits in settings.PROVIDER_LIMITS.items():
        prefix = name.upper()
        batch = limits.get("batch_size")
        if batch is not None:
            ceiling = provider_class_get(name).batch_size_ceiling()
            if not 1 <= batch <= ceiling:
                problems.append(f"{prefix}_BATCH_SIZE={batch} is outside what {name} takes in one request "
                                f"(1 to {ceiling} symbols, see docs/providers.md).")
        rate = limits.get("requests_per_second")
        if rate is not None and rate <= 0:
            problems.append(f"{prefix}_REQUESTS_PER_SECOND={rate:g} must be more than 0.")
        quota = limits.get("daily_quota")
        if quota is not None and quota < 1:
            problems.append(f"{prefix}_DAILY_QUOTA={quota} must be at least 1 (unset it for no daily cap).")
    return problems


def market_data_settings_check() -> None:
    if problems := market_data_settings_problems():
        raise ImproperlyConfigured(" ".join(problems))
