from django.apps import AppConfig

from core.events import event_fallback_register


class MonitoringConfig(AppConfig):
    name = "monitoring"
    verbose_name = "Monitoring"

    def ready(self) -> None:
        from monitoring.events import event_store  # noqa: PLC0415 (it imports the models: only once apps are loaded)

        event_fallback_register(event_store)
