"""Every portfolio gets its default account, and every transaction written before accounts existed is put
in it. The account does not track cash (Account.tracks_cash): every buy stays money brought in and every
sell money taken out, so an existing portfolio's value and performance are exactly what they were."""

from django.db import migrations

DEFAULT_ACCOUNT_NAME = "Default"


def default_accounts_create(apps, schema_editor) -> None:
    Portfolio = apps.get_model("portfolio", "Portfolio")
    Account = apps.get_model("portfolio", "Account")
    Transaction = apps.get_model("portfolio", "Transaction")
    for portfolio in Portfolio.objects.filter(accounts__isnull=True).iterator():
        account = Account.objects.create(portfolio=portfolio, name=DEFAULT_ACCOUNT_NAME,
                                         currency=portfolio.base_currency, tracks_cash=False)
        Transaction.objects.filter(portfolio=portfolio, account__isnull=True).update(account=account)


def default_accounts_remove(apps, schema_editor) -> None:
    """Back to no accounts: the transactions let go of theirs, and the accounts go."""
    Account = apps.get_model("portfolio", "Account")
    Transaction = apps.get_model("portfolio", "Transaction")
    Transaction.objects.update(account=None)
    Account.objects.all().delete()


class Migration(migrations.Migration):

    dependencies = [
        ("portfolio", "0007_accounts"),
    ]

    operations = [
        migrations.RunPython(default_accounts_create, default_accounts_remove),
    ]
