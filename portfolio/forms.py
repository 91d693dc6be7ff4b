"""Web forms. Like the API serializers they only parse; the services decide what is valid."""

from django import forms
from django.core.exceptions import ValidationError
from django.urls import reverse_lazy

from portfolio.models import TransactionType
from portfolio.services import TransactionInput, transaction_input_from
from prices.models import AssetClass, Provider


class PortfolioForm(forms.Form):
    name = forms.CharField(max_length=100)
    base_currency = forms.CharField(max_length=3, initial="USD")


class AccountForm(forms.Form):
    name = forms.CharField(max_length=100)
    platform = forms.CharField(max_length=100, required=False, help_text="The broker or platform")
    currency = forms.CharField(max_length=3, required=False)
    tracks_cash = forms.BooleanField(required=False, initial=True, label="Tracks cash")


class TransactionForm(forms.Form):
    account = forms.TypedChoiceField(coerce=int, required=False, empty_value=None)
    # The trade form searches instruments as the symbol is typed (static/js/search.js). A deposit,
    # withdrawal or interest has none.
    symbol = forms.CharField(max_length=32, required=False, widget=forms.TextInput(
        attrs={"data-instrument-search": reverse_lazy("api-instrument-search"), "autocomplete": "off",
               "data-instrument-field": ""}))
    type = forms.ChoiceField(choices=TransactionType.choices, initial=TransactionType.BUY)
    date = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    quantity = forms.DecimalField(max_digits=28, decimal_places=10, required=False)
    price = forms.DecimalField(max_digits=20, decimal_places=6, required=False)
    fee = forms.DecimalField(max_digits=20, decimal_places=6, required=False)
    currency = forms.CharField(max_length=3, initial="USD")
    asset_class = forms.ChoiceField(
        choices=[("", "— (new symbols: stock)")] + AssetClass.choices, required=False,
        widget=forms.Select(attrs={"data-instrument-field": ""}),
    )
    provider = forms.ChoiceField(choices=[("", "— (default)")] + Provider.choices, required=False,
                                 widget=forms.Select(attrs={"data-instrument-field": ""}))
    note = forms.CharField(max_length=500, required=False)
    gift = forms.BooleanField(required=False, label="Gift (received free, price 0)",
                              widget=forms.CheckboxInput(attrs={"data-instrument-field": ""}))
    # Filled by picking a search result: a new instrument's name.
    name = forms.CharField(max_length=200, required=False, widget=forms.HiddenInput)

    def __init__(self, *args, accounts=(), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # The portfolio's accounts, the default (oldest) first and preselected.
        self.fields["account"].choices = [(a.pk, f"{a.name} · {a.platform}" if a.platform else a.name)
                                          for a in accounts]

    def to_input(self) -> TransactionInput:
        return transaction_input_from(self.cleaned_data)


def form_errors_apply(form: forms.Form, exc: ValidationError) -> None:
    """Show a service's field errors on the form's fields (others at the top of the form)."""
    for field, messages in exc.message_dict.items():
        form.add_error(field if field in form.fields else None, messages)
