from django.apps import AppConfig

from prices.needs import needs_register


class PortfolioConfig(AppConfig):
    name = "portfolio"
    verbose_name = "Portfolios"

    # Imported once the apps are loaded: these modules import models.
    def ready(self) -> None:
        import portfolio.receivers  # noqa: F401, PLC0415 (connects the subscriptions)
        from portfolio.needs import fx_history_needs, instrument_history_needs  # noqa: PLC0415
        from portfolio.watchlist import watchlist_fx_needs, watchlist_history_needs  # noqa: PLC0415

        # Prices fetches the history portfolios need without knowing portfolios: it is told here.
        needs_register(instruments=instrument_history_needs, fx=fx_history_needs)
        # Watched instruments are needed like held ones (closes for their chart and day change).
        needs_register(instruments=watchlist_history_needs, fx=watchlist_fx_needs)
