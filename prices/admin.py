"""Staff's view of instruments, closes and rates. An edit here changes what portfolios are valued with, as the
services' writes do, so it is announced as they announce theirs (prices.signals, in the admin's own
transaction): without it, cached answers and charts went on showing the figures from before the edit until
the next refresh announced a change of their own."""

from django.contrib import admin

from core.announcing_admin import AnnouncingAdmin
from prices.fx import currency_major
from prices.models import FxRate, Instrument, InstrumentProfile, PriceHistory
from prices.signals import fx_rates_changed, prices_changed


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

    def save_related(self, request, form, formsets, change):
        """After the instrument (its currency, class, exchange) and its profile are saved: its holdings' values,
        allocations and charts may all differ, from any day (as instrument_facts_apply announces a currency)."""
        super().save_related(request, form, formsets, change)
        prices_changed.send(sender=Instrument, instrument_ids=[form.instance.pk], since=None)

    def delete_model(self, request, obj):
        self._deleting_announce([obj.pk])
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        self._deleting_announce(list(queryset.values_list("pk", flat=True)))
        super().delete_queryset(request, queryset)

    @staticmethod
    def _deleting_announce(instrument_ids: list[int]) -> None:
        """Before the delete, in its transaction: the portfolios comparing themselves with one of these (their
        benchmark becomes none) are found while they still name it, and their charts stop comparing with it.
        (Held instruments cannot be deleted: their transactions protect them.)"""
        prices_changed.send(sender=Instrument, instrument_ids=sorted(instrument_ids), since=None)

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
class PriceHistoryAdmin(AnnouncingAdmin):
    list_display = ["instrument", "date", "close", "adjusted_close", "source", "last_updated"]
    list_filter = ["source"]
    search_fields = ["instrument__symbol"]
    date_hierarchy = "date"
    # The table holds millions of rows: never render a select of every instrument.
    raw_id_fields = ["instrument"]
    list_select_related = ["instrument"]

    # Closes (instrument, date) written or deleted: those instruments' values from the earliest day on.
    announced_fields = ("instrument_id", "date")

    def announce(self, rows: list[tuple]) -> None:
        if rows:
            prices_changed.send(sender=PriceHistory, instrument_ids=sorted({pk for pk, _ in rows}),
                                since=min(day for _, day in rows))


@admin.register(FxRate)
class FxRateAdmin(AnnouncingAdmin):
    list_display = ["base", "quote", "date", "rate", "source", "last_updated"]
    list_filter = ["base", "quote"]
    date_hierarchy = "date"

    # Rates (base, quote) written or deleted: every portfolio converting any of those currencies.
    announced_fields = ("base", "quote")

    def announce(self, rows: list[tuple]) -> None:
        if rows:
            fx_rates_changed.send(sender=FxRate, currencies=sorted({currency_major(code)[0] for pair in rows
                                                                    for code in pair}))
