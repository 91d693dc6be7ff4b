from django.contrib import admin

from prices.models import FxRate, Instrument, InstrumentProfile, PriceHistory


class InstrumentProfileInline(admin.StackedInline):
    """Sector, country and fund breakdowns for allocation. Saving it here locks it: the workers then
    leave staff's word alone (untick "locked" to hand it back to the provider)."""

    model = InstrumentProfile
    fields = ["sector", "industry", "country", "sector_weights", "country_weights", "locked", "source", "fetched_at"]
    readonly_fields = ["source", "fetched_at"]


@admin.register(Instrument)
class InstrumentAdmin(admin.ModelAdmin):
    inlines = [InstrumentProfileInline]
    list_display = ["symbol", "name", "asset_class", "currency", "exchange_mic", "provider", "owner", "active",
                    "verification_status"]
    list_filter = ["asset_class", "provider", "active", "verification_status"]
    search_fields = ["symbol", "name", "provider_symbol", "owner__username"]
    # Blank for a shared instrument; a user's own manual instrument names them.
    raw_id_fields = ["owner"]
    list_select_related = ["owner"]

    def save_formset(self, request, form, formset, change):
        if formset.model is not InstrumentProfile:
            return super().save_formset(request, form, formset, change)
        for profile_form in formset.forms:
            if profile_form.has_changed() and "locked" not in profile_form.changed_data:
                profile_form.instance.locked = True
            if profile_form.has_changed():
                profile_form.instance.source = "admin"
        return super().save_formset(request, form, formset, change)


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
