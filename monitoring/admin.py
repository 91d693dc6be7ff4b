from django.contrib import admin

from monitoring.models import MonitoringEvent


@admin.register(MonitoringEvent)
class MonitoringEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "level", "kind", "message"]
    list_filter = ["level", "kind"]
    search_fields = ["message"]
    date_hierarchy = "created_at"
