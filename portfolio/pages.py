"""Pages of the features beyond the dashboard (income, watchlist): light shells their scripts fill from the API."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from portfolio.access import owned_portfolio_or_404


@login_required
def income_page(request, portfolio_id: int):
    portfolio = owned_portfolio_or_404(request, portfolio_id)
    return render(request, "portfolio/income.html", {"portfolio": portfolio})


@login_required
def watchlist_page(request):
    return render(request, "portfolio/watchlist.html")
