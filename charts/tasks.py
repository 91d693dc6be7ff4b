from celery import shared_task

from charts.compute import cyclic_gc_paused
from charts.services import chart_data_generate, charts_new_day_regenerate
from core.ticks import task_tick_claim


@shared_task(name="charts.generate_chart_data_task", acks_late=True)
def generate_chart_data_task(portfolio_id: int, even_if_current: bool = False) -> int | None:
    # The whole generation, not only its series: its inputs and outputs are tens of thousands of small
    # objects too (transactions, points), which promoted into the collector's oldest generation set off a
    # full pass over the worker's heap every third generation or so (~70 ms for 500 holdings × 10 years).
    with cyclic_gc_paused():
        return chart_data_generate(portfolio_id=portfolio_id, even_if_current=even_if_current)


@shared_task(name="charts.charts_new_day_task", bind=True)
def charts_new_day_task(self, tick: str | None = None) -> dict | None:
    if not task_tick_claim(self, tick):
        return None
    return charts_new_day_regenerate()
