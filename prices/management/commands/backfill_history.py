from django.core.management.base import BaseCommand
from django.utils import timezone
from tqdm import tqdm

from prices.refresh import history_backfill, history_missing_ranges, refreshable_instruments


class Command(BaseCommand):
    help = "Fetch the missing daily history of every active instrument (or --symbols), from its first trade."

    def add_arguments(self, parser):
        parser.add_argument("--symbols", default="", help="comma-separated symbols (default: all)")

    def handle(self, *args, symbols, **options):
        instruments = refreshable_instruments()
        if symbols:
            instruments = instruments.filter(symbol__in=[s.strip().upper() for s in symbols.split(",")])
        written = 0
        now = timezone.now()
        for instrument in tqdm(list(instruments), desc="History", unit="instrument", file=self.stderr._out):
            if history_missing_ranges(instrument=instrument, now=now):
                written += history_backfill(instrument=instrument, now=now)
        self.stdout.write(f"{written} daily closes backfilled.")
