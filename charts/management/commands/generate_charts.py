from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from charts.services import chart_data_generate, chart_regeneration_request
from core.wording import plural
from portfolio.models import Portfolio


class Command(BaseCommand):
    help = "Generate chart data of every portfolio (or --portfolio ID): here, or queued with --queue."

    def add_arguments(self, parser):
        parser.add_argument("--portfolio", type=int, action="append", help="portfolio id (repeatable)")
        parser.add_argument("--queue", action="store_true", help="queue it in the workers instead")

    def handle(self, *args, portfolio, queue, **options):
        portfolios = Portfolio.objects.order_by("pk")
        if portfolio:
            portfolios = portfolios.filter(pk__in=portfolio)
            if missing := set(portfolio) - set(portfolios.values_list("pk", flat=True)):
                raise CommandError(f"No portfolio {', '.join(map(str, sorted(missing)))}")
        ids = list(portfolios.values_list("pk", flat=True))
        if queue:
            queued = chart_regeneration_request(portfolio_ids=ids, even_if_current=True)
            already = len(ids) - len(queued)
            self.stdout.write(f"Queued {plural(len(queued), 'chart regeneration')} ({already} already queued).")
            return
        for portfolio_id in tqdm(ids, desc="Charts", unit="portfolio", file=self.stderr._out):
            chart_data_generate(portfolio_id=portfolio_id)
        self.stdout.write(f"Generated charts of {plural(len(ids), 'portfolio')}.")
