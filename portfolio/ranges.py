"""The periods a portfolio is shown over: chart ranges (the value chart) and performance ranges. Defined here,
the lowest app whose pages offer them, for the portfolio pages and the charts app alike."""

from datetime import date, timedelta

CHART_RANGES = ("1M", "3M", "6M", "YTD", "1Y", "5Y", "MAX")
# Besides these, a calendar year with activity (e.g. "2024") is a performance range too.
PERFORMANCE_RANGES = ("1D", "WTD", "MTD", "YTD", "1Y", "5Y", "MAX")
# A sparkline draws each held instrument's closes of the last months: its history is needed that far back, however
# recent the first trade (portfolio/needs.py).
SPARKLINE_MONTHS = 3
# A benchmark is compared from its last close before the portfolio's first day: its history is needed from this many
# days before the first trade (a week: the session before it, across a weekend and a holiday).
BENCHMARK_LEAD_DAYS = 7


def months_before(day: date, months: int) -> date:
    """The same day `months` earlier, clamped to the month's end (31 March - 1 month = 29 February): where the 1Y
    and 5Y ranges start, and the income's trailing twelve months."""
    month_index = day.year * 12 + day.month - 1 - months
    year, month = divmod(month_index, 12)
    next_month = date(year + (month + 1) // 12, (month + 1) % 12 + 1, 1)
    return date(year, month + 1, min(day.day, (next_month - timedelta(days=1)).day))
