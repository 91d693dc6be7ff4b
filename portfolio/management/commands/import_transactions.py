"""manage.py import_transactions --portfolio ID FILE.csv — a big history in one go, with a progress bar."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from portfolio.importing import MAX_FILE_BYTES, ImportRejected, transactions_import
from portfolio.models import Account, Portfolio


class Command(BaseCommand):
    help = "Import transactions from a CSV (generic format or a broker export): all rows or none."

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--portfolio", type=int, required=True, help="portfolio id")
        parser.add_argument("--account", help="name of the portfolio's account that rows naming none go into "
                                               "(default: its default account); a broker's export is one account's")

    def handle(self, *args, file, portfolio, account=None, **options):
        target = Portfolio.objects.filter(pk=portfolio).first()
        if target is None:
            raise CommandError(f"No portfolio {portfolio}.")
        into = None
        if account is not None:
            into = Account.objects.filter(portfolio=target, name=account).first()
            if into is None:
                names = ", ".join(Account.objects.filter(portfolio=target).order_by("id")
                                  .values_list("name", flat=True))
                raise CommandError(f"No account '{account}' in '{target.name}' (its accounts: {names}).")
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"{file}: no such file.")
        bar = tqdm(total=0, desc="Checking rows", unit="row", file=self.stderr._out)

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        try:
            with path.open("rb") as handle:
                result = transactions_import(portfolio=target, content=handle.read(MAX_FILE_BYTES + 1),
                                             account=into, progress=progress)
        except ImportRejected as rejected:
            bar.close()
            lines = [f"  row {e.row}{f' ({e.column})' if e.column else ''}: {e.message}" for e in rejected.row_errors]
            raise CommandError("Nothing was imported:\n" + "\n".join(lines)) from None
        bar.close()
        self.stdout.write(self.style.SUCCESS(
            f"Imported {result.created} transactions into '{target.name}' ({result.format} format); "
            f"skipped {result.skipped_duplicates} already present and {result.skipped_other} other rows."))
