"""Staff's view of portfolios, accounts and transactions. An edit here changes what a portfolio's figures are
made from, as the services' writes do, so it gives each portfolio it touches a new data version as they do
(portfolio.cache.portfolio_versions_bump, in the admin's own transaction): without it, cached answers and
charts went on showing the figures from before the edit until the next price refresh bumped them."""

from django import forms
from django.contrib import admin

from core.announcing_admin import AnnouncingAdmin
from portfolio.cache import portfolio_versions_bump
from portfolio.kept import portfolio_write_lock, portfolios_write_lock
from portfolio.models import Account, Portfolio, Transaction


class _BumpsItsPortfolios(AnnouncingAdmin):
    """A model admin whose rows belong to a portfolio: saving or deleting one bumps that portfolio, and the one it
    came from when it was moved to another."""

    announced_fields = ("portfolio_id",)

    def prepare(self, rows: list[tuple]) -> None:
        # Locked as the services lock a portfolio (portfolio/kept.py), before the row's own lock.
        portfolios_write_lock(portfolio_ids={portfolio_id for portfolio_id, in rows})

    def announce(self, rows: list[tuple]) -> None:
        portfolio_versions_bump(portfolio_ids={portfolio_id for portfolio_id, in rows})


class TransactionInline(admin.TabularInline):
    model = Transaction
    extra = 0
    raw_id_fields = ["instrument", "account"]


class PortfolioAdminForm(forms.ModelForm):
    def clean_name(self) -> str:
        # Its owner is read-only here, and so no field of this form: the form no longer checks the unique
        # (owner, name) itself, and a name the owner already uses would reach the database's constraint.
        name = self.cleaned_data["name"]
        owner_id = self.instance.owner_id
        if owner_id and Portfolio.objects.filter(owner_id=owner_id, name=name).exclude(pk=self.instance.pk).exists():
            raise forms.ValidationError(f"Its owner already has a portfolio named '{name}'.")
        return name


@admin.register(Portfolio)
class PortfolioAdmin(admin.ModelAdmin):
    form = PortfolioAdminForm
    list_display = ["name", "owner", "base_currency", "created_at"]
    search_fields = ["name", "owner__username"]
    inlines = [TransactionInline]

    def get_readonly_fields(self, request, obj=None):
        # A portfolio's owner never changes (portfolio/models.py): chosen when it is added, shown after.
        return ["owner"] if obj is not None else []

    def save_model(self, request, obj, form, change):
        if change:  # locked as the services lock it: its kept replay's row first (portfolio/kept.py)
            portfolio_write_lock(portfolio_id=obj.pk)
        super().save_model(request, obj, form, change)

    def delete_model(self, request, obj):
        portfolio_write_lock(portfolio_id=obj.pk)  # its transactions' delete takes its kept row
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        portfolios_write_lock(portfolio_ids=list(queryset.values_list("pk", flat=True)))
        super().delete_queryset(request, queryset)

    def save_related(self, request, form, formsets, change):
        """After the portfolio's own fields (its base currency) and its transactions' rows are saved: one bump
        for both. (Deleting a portfolio needs none: nothing of it is left to read.)"""
        super().save_related(request, form, formsets, change)
        portfolio_versions_bump(portfolio_ids=[form.instance.pk])


@admin.register(Transaction)
class TransactionAdmin(_BumpsItsPortfolios):
    list_display = ["date", "type", "instrument", "quantity", "price", "fee", "currency", "account", "portfolio"]
    list_filter = ["type", "currency"]
    search_fields = ["instrument__symbol", "portfolio__name"]
    raw_id_fields = ["instrument", "portfolio", "account"]
    list_select_related = ["instrument", "portfolio", "account"]


@admin.register(Account)
class AccountAdmin(_BumpsItsPortfolios):
    list_display = ["name", "platform", "currency", "tracks_cash", "portfolio"]
    search_fields = ["name", "platform", "portfolio__name"]
    raw_id_fields = ["portfolio"]
    list_select_related = ["portfolio"]
