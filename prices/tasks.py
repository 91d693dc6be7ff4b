"""Celery tasks of the prices app: thin, idempotent, JSON arguments only."""

from celery import shared_task

from prices.fx import fx_refresh
from prices.models import Instrument
from prices.refresh import history_backfill, prices_refresh, refreshable_instruments


@shared_task(name="prices.refresh_prices_task", acks_late=True)
def refresh_prices_task(instrument_ids: list[int] | None = None, force: bool = False) -> dict:
    summary = prices_refresh(instruments=refreshable_instruments(instrument_ids=instrument_ids), force=force)
    return {"instruments": summary.instruments, "skipped_fresh": summary.skipped_fresh,
            "requests": summary.requests, "stored": summary.stored, "unknown": summary.unknown,
            "failed": len(summary.failures)}


@shared_task(name="prices.backfill_history_task", acks_late=True)
def backfill_history_task(instrument_id: int) -> int:
    instrument = Instrument.objects.filter(pk=instrument_id).first()
    return history_backfill(instrument=instrument) if instrument else 0


@shared_task(name="prices.fx_refresh_task", acks_late=True)
def fx_refresh_task() -> int:
    return fx_refresh()
