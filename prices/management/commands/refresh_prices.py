"""manage.py refresh_prices — queue a refresh job and follow it, or run it here with --sync."""

import time

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from core.jobs import FAILURE, TERMINAL, job_get
from core.wording import job_outcome, plural
from prices.fx import fx_refresh
from prices.history import histories_backfill
from prices.management.symbols import shared_instrument_ids
from prices.models import Instrument, Provider
from prices.refresh.jobs import prices_refresh_job_start
from prices.refresh.plan import refreshable_instruments
from prices.refresh.run import prices_refresh

POLL_SECONDS = 0.5


class Command(BaseCommand):
    help = "Refresh latest prices of all active instruments (or --symbols / --provider): in the workers, " \
           "followed with a progress bar, or here with --sync."

    def add_arguments(self, parser):
        parser.add_argument("--symbols", default="", help="comma-separated symbols (default: all)")
        parser.add_argument("--provider", choices=Provider.values, help="only instruments of this provider")
        parser.add_argument("--sync", action="store_true", help="run here instead of in the workers")
        parser.add_argument("--no-wait", action="store_true", help="queue the job and return at once")
        parser.add_argument("--force", action="store_true", help="also refetch quotes that are still fresh")
        parser.add_argument("--history", action="store_true", help="also backfill missing daily history (--sync)")
        parser.add_argument("--fx", action="store_true", help="also fetch the FX rates portfolios need (--sync)")

    def _instrument_ids(self, symbols: str, provider: str | None) -> list[int] | None:
        if not symbols and not provider:
            return None
        queryset = Instrument.objects.all()
        if symbols:
            queryset = queryset.filter(pk__in=shared_instrument_ids(symbols))
        if provider:
            queryset = queryset.filter(provider=provider)
        return list(queryset.values_list("pk", flat=True))

    def handle(self, *args, symbols, provider, sync, no_wait, force, history, fx, **options):
        ids = self._instrument_ids(symbols, provider)
        if sync:
            self._run_here(ids, force=force, history=history, fx=fx)
        else:
            scope = "all" if ids is None else None
            started = prices_refresh_job_start(instrument_ids=ids, force=force, lock_scope=scope)
            note = " (already running)" if started.already_running else ""
            self.stdout.write(f"Refresh job {started.job_id}{note}")
            if not no_wait:
                self._follow(started.job_id)

    def _follow(self, job_id: str) -> None:
        """A progress bar fed by the job's hash in Redis, until the job ends."""
        job = job_get(job_id=job_id)
        bar = tqdm(total=job["total"] if job else 0, desc="Instruments", unit="instr", file=self.stderr._out)
        while job is not None:
            bar.total = job["total"]
            bar.update(job["done"] + job["failed"] - bar.n)
            bar.set_postfix(failed=job["failed"], state=job["state"])
            if job["state"] in TERMINAL:
                break
            time.sleep(POLL_SECONDS)
            job = job_get(job_id=job_id)
        bar.close()
        if job is None:
            raise CommandError(f"Job {job_id} vanished from Redis.")
        self.stdout.write(f"Refresh {job_outcome(job)}.")
        for error in job["errors"][:20]:
            self.stderr.write(f"  {error['error']}")
        if job["state"] == FAILURE:
            raise CommandError("The refresh failed: no quote was fetched.")

    def _run_here(self, ids: list[int] | None, *, force: bool, history: bool, fx: bool) -> None:
        instruments = list(refreshable_instruments(instrument_ids=ids))
        bar = tqdm(total=0, desc="Quote batches", unit="batch", file=self.stderr._out)

        def on_plan(batches: int) -> None:
            bar.total = batches
            bar.refresh()

        summary = prices_refresh(instruments=instruments, force=force, on_plan=on_plan,
                                 on_batch_done=lambda batch, result: bar.update(1))
        bar.close()
        self.stdout.write(
            f"{plural(summary.instruments, 'instrument')}: {summary.skipped_fresh} still fresh, "
            f"{plural(summary.stored, 'price')} stored from {plural(summary.requests, 'request')} in "
            f"{plural(summary.batches, 'batch', 'batches')}; "
            f"{len(summary.unknown)} unknown, {len(summary.failures)} failed."
        )
        for symbol, reason in sorted(summary.failures.items()):
            self.stderr.write(f"  {symbol}: {reason}")
        if summary.unknown:
            self.stderr.write(f"  unknown to their provider (flagged): {', '.join(summary.unknown)}")
        if history:
            written = sum(tqdm(histories_backfill(instruments=instruments), total=len(instruments), desc="History",
                               unit="instrument", file=self.stderr._out))
            self.stdout.write(f"History: {written} daily closes backfilled.")
        if fx:
            self.stdout.write(f"FX: {fx_refresh()} daily rates stored.")
        if summary.failures and not summary.stored:
            # As a job ends FAILURE: a script or cron must not read a run that fetched nothing as a success.
            raise CommandError(f"The refresh failed: none of {plural(len(summary.failures), 'quote')} was fetched.")
