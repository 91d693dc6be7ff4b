from django.apps import AppConfig

from prices.settings_check import market_data_settings_check


class PricesConfig(AppConfig):
    name = "prices"
    verbose_name = "Prices"

    def ready(self) -> None:
        # At start, so a setting no provider can honour stops the process instead of every refresh.
        market_data_settings_check()
