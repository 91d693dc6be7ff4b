"""What the price commands share: the shared instruments a `--symbols` list names."""

from django.core.management.base import CommandError

from prices.models import Instrument


def shared_instrument_ids(symbols: str) -> list[int]:
    """The ids of the shared instruments `symbols` (comma-separated, any case) names; a CommandError naming the
    ones there are none of, so a typo is not a run that quietly does nothing."""
    wanted = {s.strip().upper() for s in symbols.split(",") if s.strip()}
    found = dict(Instrument.objects.filter(symbol__in=wanted, owner__isnull=True).values_list("symbol", "pk"))
    if missing := wanted - set(found):
        raise CommandError(f"Unknown symbols: {', '.join(sorted(missing))}")
    return list(found.values())
