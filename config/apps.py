from django.apps import AppConfig


class FolioConfig(AppConfig):
    """The project's plumbing as an app, so its signal receivers are connected in every process
    (web, workers, management commands), not only in those that happen to import them."""

    name = "config"
    label = "folio_config"
    verbose_name = "Folio configuration"

    def ready(self) -> None:
        import config.receivers  # noqa: F401, PLC0415 (connects the receivers once models are loaded)
