from django.contrib import admin

from prices.models import FxRate, Instrument, PriceHistory


@admin.register(Instrument)
class InstrumentAdmin(admin.ModelAdmin):
    list_display = ["symbol", "name", "asset_class", "currency", "exchange_mic", "provider", "owner", "active",
                    "verification_status"]
    list_filter = ["asset_class", "provider", "active", "verification_status"]
    search_fields = ["symbol", "name", "provider_symbol", "owner__username"]
    # Blank for a shared instrument; a user's own manual instrument names them.
    raw_id_fields = ["owner"]
    list_select_related = ["owner"]


@admin.register(PriceHistory)
class PriceHistoryAdmin(admin.ModelAdmin):
    list_display = ["instrument", "date", "close", "adjusted_close", "source", "last_updated"]
    list_filter = ["source"]
    search_fields = ["instrument__symbol"]
    date_hierarchy = "date"
    # The table holds millions of rows: never render a select of every instrument.
    raw_id_fields = ["instrument"]
    list_select_related = ["instrument"]


@admin.register(FxRate)
class FxRateAdmin(admin.ModelAdmin):
    list_display = ["base", "quote", "date", "rate", "source", "last_updated"]
    list_filter = ["base", "quote"]
    date_hierarchy = "date"
