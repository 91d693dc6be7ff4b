from django.urls import path

from portfolio.api import accounts, dashboard, exposure, income, instruments, positions, search, views, watchlist

urlpatterns = [
    # First: the dashboard's reads, the most requested (config/urls.py).
    path(
        "dashboard-initial-data/<int:portfolio_id>/",
        dashboard.DashboardInitialDataApi.as_view(),
        name="api-dashboard-initial",
    ),
    path(
        "dashboard-holdings-data/<int:portfolio_id>/",
        dashboard.DashboardHoldingsDataApi.as_view(),
        name="api-dashboard-holdings",
    ),
    # Known instruments listed only where the caller may read them; then the providers' answers.
    path("instruments/search/", search.InstrumentSearchApi.as_view(), name="api-instrument-search"),
    # Instrument prices, scoped by what the caller holds (the prices app knows nothing of portfolios). A symbol may
    # hold "/" (BTC/USD; %2F arrives decoded): matched by <path:…>, as the instrument's page is.
    path("instruments/<path:symbol>/prices/", instruments.InstrumentPricesApi.as_view(), name="api-instrument-prices"),
    path("prices/refresh/", instruments.PricesRefreshApi.as_view(), name="api-prices-refresh"),
    path("portfolios/", views.PortfolioListApi.as_view(), name="api-portfolio-list"),
    path("portfolios/values/", positions.PortfolioValuesApi.as_view(), name="api-portfolio-values"),
    path("portfolios/<int:portfolio_id>/", views.PortfolioDetailApi.as_view(), name="api-portfolio-detail"),
    path("instruments/<path:symbol>/position/", positions.InstrumentPositionApi.as_view(),
         name="api-instrument-position"),
    path("portfolios/<int:portfolio_id>/accounts/", accounts.AccountListApi.as_view(), name="api-account-list"),
    path("portfolios/<int:portfolio_id>/accounts/<int:account_id>/", accounts.AccountDetailApi.as_view(),
         name="api-account-detail"),
    path(
        "portfolios/<int:portfolio_id>/transactions/",
        views.TransactionListApi.as_view(),
        name="api-transaction-list",
    ),
    path(
        "portfolios/<int:portfolio_id>/transactions/import/",
        views.TransactionImportApi.as_view(),
        name="api-transaction-import",
    ),
    path(
        "portfolios/<int:portfolio_id>/transactions/export/",
        views.TransactionExportApi.as_view(),
        name="api-transaction-export",
    ),
    path("export/", views.UserExportApi.as_view(), name="api-user-export"),
    path("watchlist/", watchlist.WatchlistApi.as_view(), name="api-watchlist"),
    path("watchlist/<int:item_id>/", watchlist.WatchlistItemApi.as_view(), name="api-watchlist-item"),
    path("portfolios/<int:portfolio_id>/allocation/", exposure.PortfolioAllocationApi.as_view(),
         name="api-portfolio-allocation"),
    path("portfolios/<int:portfolio_id>/income/", income.PortfolioIncomeApi.as_view(), name="api-portfolio-income"),
    path(
        "portfolios/<int:portfolio_id>/transactions/<int:transaction_id>/",
        views.TransactionDetailApi.as_view(),
        name="api-transaction-detail",
    ),
]
