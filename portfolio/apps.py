from django.apps import AppConfig


class PortfolioConfig(AppConfig):
    name = "portfolio"
    verbose_name = "Portfolios"

    def ready(self) -> None:
        import portfolio.receivers  # noqa: F401 (connects the subscriptions)
        from portfolio.needs import fx_history_needs, instrument_history_needs
        from prices.needs import needs_register

        # Prices fetches the history portfolios need without knowing portfolios: it is told here.
        needs_register(instruments=instrument_history_needs, fx=fx_history_needs)
