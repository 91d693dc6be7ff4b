from django.core.management.base import BaseCommand
from tqdm import tqdm

from portfolio.demo import demo_seed


class Command(BaseCommand):
    help = "Create the demo user and portfolio (idempotent) and top its prices up to today."

    def handle(self, *args, **options):
        bar: tqdm | None = None

        def progress(done: int, total: int) -> None:
            nonlocal bar
            if bar is None:
                bar = tqdm(total=total, desc="Demo transactions", unit="tx", file=self.stderr._out)
            bar.update(done - bar.n)

        result = demo_seed(progress=progress)
        if bar is not None:
            bar.close()
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo ready: user '{result.username}' / password '{result.password}', "
                f"portfolio #{result.portfolio_id}; {result.transactions_created} transactions created, "
                f"{result.prices_written} daily prices written."
            )
        )
