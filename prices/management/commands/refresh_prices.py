from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from prices.fx import fx_refresh
from prices.models import Instrument
from prices.refresh import history_backfill, prices_refresh, refreshable_instruments
from prices.tasks import refresh_prices_task


class Command(BaseCommand):
    help = "Refresh latest prices (all active instruments, or the SYMBOLs given), in the workers or --sync here."

    def add_arguments(self, parser):
        parser.add_argument("symbols", nargs="*", help="only these symbols")
        parser.add_argument("--sync", action="store_true", help="run here with a progress bar, not in a worker")
        parser.add_argument("--force", action="store_true", help="also refetch quotes that are still fresh")
        parser.add_argument("--history", action="store_true", help="also backfill missing daily history (--sync)")
        parser.add_argument("--fx", action="store_true", help="also fetch the FX rates portfolios need (--sync)")

    def handle(self, *args, symbols, sync, force, history, fx, **options):
        ids = None
        if symbols:
            wanted = {s.strip().upper() for s in symbols}
            found = dict(Instrument.objects.filter(symbol__in=wanted).values_list("symbol", "pk"))
            if missing := wanted - set(found):
                raise CommandError(f"Unknown symbols: {', '.join(sorted(missing))}")
            ids = list(found.values())
        if not sync:
            result = refresh_prices_task.delay(instrument_ids=ids, force=force)
            self.stdout.write(f"Refresh queued as task {result.id}; run with --sync to wait for it here.")
            return

        instruments = list(refreshable_instruments(instrument_ids=ids))
        bar = tqdm(total=0, desc="Quote batches", unit="batch", file=self.stderr._out)

        def on_plan(batches: int) -> None:
            bar.total = batches
            bar.refresh()

        summary = prices_refresh(instruments=instruments, force=force, on_plan=on_plan,
                                 on_batch_done=lambda batch, result: bar.update(1))
        bar.close()
        self.stdout.write(
            f"{summary.instruments} instruments: {summary.skipped_fresh} still fresh, {summary.stored} prices "
            f"stored from {summary.requests} requests in {summary.batches} batches; "
            f"{len(summary.unknown)} unknown, {len(summary.failures)} failed."
        )
        for symbol, reason in sorted(summary.failures.items()):
            self.stderr.write(f"  {symbol}: {reason}")
        if summary.unknown:
            self.stderr.write(f"  unknown to their provider (flagged): {', '.join(summary.unknown)}")
        if history:
            written = 0
            for instrument in tqdm(instruments, desc="History", unit="instrument", file=self.stderr._out):
                written += history_backfill(instrument=instrument)
            self.stdout.write(f"History: {written} daily closes backfilled.")
        if fx:
            self.stdout.write(f"FX: {fx_refresh()} daily rates stored.")
