from django.urls import path

from portfolio import pages, views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("portfolios/", views.portfolio_list_page, name="portfolio-list"),
    path("instruments/<path:symbol>/", views.instrument_page, name="instrument-detail"),
    path("watchlist/", pages.watchlist_page, name="watchlist"),
    path("portfolios/<int:portfolio_id>/income/", pages.income_page, name="portfolio-income"),
    path("portfolios/<int:portfolio_id>/delete/", views.portfolio_delete_page, name="portfolio-delete"),
    path("portfolios/<int:portfolio_id>/transactions/", views.transaction_list_page, name="transaction-list"),
    path("portfolios/<int:portfolio_id>/accounts/", views.account_list_page, name="account-list"),
    path("portfolios/<int:portfolio_id>/accounts/<int:account_id>/edit/", views.account_edit_page,
         name="account-edit"),
    path("portfolios/<int:portfolio_id>/accounts/<int:account_id>/delete/", views.account_delete_page,
         name="account-delete"),
    path(
        "portfolios/<int:portfolio_id>/transactions/import/",
        views.transaction_import_page,
        name="transaction-import",
    ),
    path(
        "portfolios/<int:portfolio_id>/transactions/<int:transaction_id>/edit/",
        views.transaction_edit_page,
        name="transaction-edit",
    ),
    path(
        "portfolios/<int:portfolio_id>/transactions/<int:transaction_id>/delete/",
        views.transaction_delete_page,
        name="transaction-delete",
    ),
]
