from celery import shared_task

from charts.compute import cyclic_gc_paused
from charts.services import chart_data_generate


@shared_task(name="charts.generate_chart_data_task", acks_late=True)
def generate_chart_data_task(portfolio_id: int, even_if_current: bool = False) -> int | None:
    # The whole generation, not only its series: its inputs and outputs are tens of thousands of small
    # objects too (transactions, points), which promoted into the collector's oldest generation set off a
    # full pass over the worker's heap every third generation or so (~70 ms for 500 holdings × 10 years).
    with cyclic_gc_paused():
        return chart_data_generate(portfolio_id=portfolio_id, even_if_current=even_if_current)
