"""Shapes of the portfolio API (docs/api.md). Parsing only: rules live in the services."""

from rest_framework import serializers

from portfolio.models import Portfolio, Transaction, TransactionType
from portfolio.services import TransactionInput, transaction_input_from
from prices.models import AssetClass, Provider


class PortfolioSerializer(serializers.ModelSerializer):
    benchmark = serializers.CharField(source="benchmark.symbol", allow_null=True, default=None,
                                      help_text="Symbol of the index the performance is compared with.")

    class Meta:
        model = Portfolio
        fields = ["id", "name", "base_currency", "benchmark"]
        read_only_fields = ["id"]


class PortfolioInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    base_currency = serializers.CharField(max_length=3, required=False, default="USD")


class PortfolioUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False)
    base_currency = serializers.CharField(max_length=3, required=False)
    benchmark = serializers.CharField(max_length=32, required=False, allow_null=True, allow_blank=True,
                                      help_text="A symbol such as SPY; null or empty to remove.")


class AccountCashSerializer(serializers.Serializer):
    currency = serializers.CharField()
    amount = serializers.CharField(help_text="The balance in that currency.")
    value = serializers.CharField(allow_null=True, help_text="In the portfolio's base currency; null without a rate.")


class AccountBalanceSerializer(serializers.Serializer):
    """An account with its cash balance and value (the accounts API and the dashboard's `accounts`)."""

    id = serializers.IntegerField()
    name = serializers.CharField()
    platform = serializers.CharField()
    currency = serializers.CharField()
    tracks_cash = serializers.BooleanField()
    cash = AccountCashSerializer(many=True, help_text="Its cash by currency (none when it does not track cash).")
    cash_value = serializers.CharField(help_text="Its cash in the base currency.")
    holdings_value = serializers.CharField(help_text="Its holdings in the base currency.")
    total_value = serializers.CharField()


class AccountInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    platform = serializers.CharField(max_length=100, required=False, allow_blank=True, default="",
                                     help_text="The broker or platform, free text.")
    currency = serializers.CharField(max_length=3, required=False,
                                     help_text="The account's usual currency; the portfolio's base when omitted.")
    tracks_cash = serializers.BooleanField(required=False, default=True,
                                           help_text="Whether it holds cash (deposits, withdrawals, trades' money).")


class AccountUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False)
    platform = serializers.CharField(max_length=100, required=False, allow_blank=True)
    currency = serializers.CharField(max_length=3, required=False)
    tracks_cash = serializers.BooleanField(required=False)


class TransactionSerializer(serializers.ModelSerializer):
    symbol = serializers.CharField(source="instrument.symbol", allow_null=True,
                                   help_text="Null for a deposit, withdrawal or interest (no instrument).")
    provider = serializers.CharField(source="instrument.provider", allow_null=True)
    account = serializers.IntegerField(source="account_id", allow_null=True,
                                       help_text="The account's id (null: written before accounts; the default).")

    class Meta:
        model = Transaction
        fields = ["id", "account", "symbol", "type", "date", "quantity", "price", "fee", "currency", "provider",
                  "note"]


class TransactionInputSerializer(serializers.Serializer):
    """Types and ranges a column can hold; per-type rules (positive quantity, no future date,
    no oversell) are the service's, so the API and the web forms answer alike."""

    symbol = serializers.CharField(max_length=32, required=False, allow_blank=True, allow_null=True, default="",
                                   help_text="Required, except for a deposit, withdrawal or interest (none).")
    type = serializers.ChoiceField(choices=TransactionType.choices)
    account = serializers.IntegerField(required=False, allow_null=True, default=None,
                                       help_text="One of the portfolio's accounts; its default account when omitted.")
    date = serializers.DateField()
    # Bounds match the columns: an absurd 1e30 is a 400 naming the field, not a database error.
    quantity = serializers.DecimalField(max_digits=28, decimal_places=10, required=False, allow_null=True)
    price = serializers.DecimalField(max_digits=20, decimal_places=6, required=False, allow_null=True)
    fee = serializers.DecimalField(max_digits=20, decimal_places=6, required=False, allow_null=True)
    currency = serializers.CharField(max_length=3)
    note = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    provider = serializers.ChoiceField(choices=Provider.choices, required=False)
    asset_class = serializers.ChoiceField(choices=AssetClass.choices, required=False)
    gift = serializers.BooleanField(required=False, default=False,
                                    help_text="Shares received free: allows a buy or sell at price 0.")
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="",
                                 help_text="A new instrument's name (a search result's); ignored for a known one.")

    def to_input(self) -> TransactionInput:
        return transaction_input_from(self.validated_data)


def transaction_input_merged(instance: Transaction, partial: dict) -> dict:
    """A PATCH body completed with the stored values, so a partial edit is validated whole."""
    current = {
        "symbol": instance.instrument.symbol if instance.instrument else "",
        "account": instance.account_id,
        "type": instance.type,
        "date": instance.date,
        "quantity": instance.quantity,
        "price": instance.price,
        "fee": instance.fee,
        "currency": instance.currency,
        "note": instance.note,
        "gift": instance.price == 0 and instance.type in (TransactionType.BUY, TransactionType.SELL),
    }
    return {**current, **partial}


class ImportResultSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    skipped_duplicates = serializers.IntegerField(help_text="Rows identical to a transaction already present.")
    skipped_other = serializers.IntegerField(help_text="A broker export's rows that are not trades (deposits…).")
    format = serializers.CharField(help_text="generic, trading212 or schwab")


class ImportRowErrorSerializer(serializers.Serializer):
    row = serializers.IntegerField(help_text="Row in the file; the header is row 1 (0: the file as a whole).")
    column = serializers.CharField(allow_null=True)
    message = serializers.CharField()


class ImportErrorsSerializer(serializers.Serializer):
    errors = ImportRowErrorSerializer(many=True)
