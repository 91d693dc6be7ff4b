from celery import shared_task

from charts.services import chart_data_generate


@shared_task(name="charts.generate_chart_data_task", acks_late=True)
def generate_chart_data_task(portfolio_id: int, even_if_current: bool = False) -> int | None:
    return chart_data_generate(portfolio_id=portfolio_id, even_if_current=even_if_current)
