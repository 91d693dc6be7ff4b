from django.core.management.base import BaseCommand
from django.utils import timezone
from tqdm import tqdm

from prices.history import histories_backfill
from prices.management.symbols import shared_instrument_ids
from prices.refresh.plan import refreshable_instruments


class Command(BaseCommand):
    help = ("Fetch the missing daily history of every active instrument (or --symbols), from its first trade (or 3 "
            "months back when later: its sparkline's).")

    def add_arguments(self, parser):
        parser.add_argument("--symbols", default="", help="comma-separated symbols (default: all)")

    def handle(self, *args, symbols, **options):
        instruments = refreshable_instruments()
        if symbols:
            instruments = instruments.filter(pk__in=shared_instrument_ids(symbols))
        instruments = list(instruments)
        written = sum(tqdm(histories_backfill(instruments=instruments, now=timezone.now()), total=len(instruments),
                           desc="History", unit="instrument", file=self.stderr._out))
        self.stdout.write(f"{written} daily closes backfilled.")
