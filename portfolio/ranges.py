"""The periods a portfolio is shown over: chart ranges (the value chart) and performance ranges. Defined here,
the lowest app whose pages offer them, for the portfolio pages and the charts app alike."""

CHART_RANGES = ("1M", "3M", "6M", "YTD", "1Y", "5Y", "MAX")
# Besides these, a calendar year with activity (e.g. "2024") is a performance range too.
PERFORMANCE_RANGES = ("1D", "WTD", "MTD", "YTD", "1Y", "5Y", "MAX")
