from django.contrib import admin

from portfolio.models import Account, Portfolio, Transaction


class TransactionInline(admin.TabularInline):
    model = Transaction
    extra = 0
    raw_id_fields = ["instrument", "account"]


@admin.register(Portfolio)
class PortfolioAdmin(admin.ModelAdmin):
    list_display = ["name", "owner", "base_currency", "created_at"]
    search_fields = ["name", "owner__username"]
    inlines = [TransactionInline]


@admin.register(Transaction)
class TransactionAdmin(admin.ModelAdmin):
    list_display = ["date", "type", "instrument", "quantity", "price", "fee", "currency", "account", "portfolio"]
    list_filter = ["type", "currency"]
    search_fields = ["instrument__symbol", "portfolio__name"]
    raw_id_fields = ["instrument", "portfolio", "account"]
    list_select_related = ["instrument", "portfolio", "account"]


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    list_display = ["name", "platform", "currency", "tracks_cash", "portfolio"]
    search_fields = ["name", "platform", "portfolio__name"]
    raw_id_fields = ["portfolio"]
    list_select_related = ["portfolio"]
