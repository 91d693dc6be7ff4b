from django.apps import AppConfig


class ChartsConfig(AppConfig):
    name = "charts"
    verbose_name = "Charts"

    def ready(self) -> None:
        import charts.receivers  # noqa: F401, PLC0415 (connects the subscriptions once models are loaded)
