from datetime import UTC, datetime

from django.core.management.base import BaseCommand

from core.jobs import jobs_recent


def _when(ts: float | None) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S") if ts else "-"


class Command(BaseCommand):
    help = "List recent jobs (price refreshes) and their state, newest first."

    def add_arguments(self, parser):
        parser.add_argument("--limit", type=int, default=20)

    def handle(self, *args, limit, **options):
        jobs = jobs_recent(limit=limit)
        if not jobs:
            self.stdout.write("No jobs yet.")
            return
        self.stdout.write(f"{'job':32}  {'kind':15} {'state':8} {'done':>6} {'failed':>6} {'total':>6}  "
                          f"{'started (UTC)':19}  {'took':>7}")
        for job in jobs:
            took = f"{job['finished_at'] - job['created_at']:.1f}s" if job["finished_at"] else "-"
            self.stdout.write(f"{job['job_id']:32}  {job['kind']:15} {job['state']:8} {job['done']:6} "
                              f"{job['failed']:6} {job['total']:6}  {_when(job['created_at']):19}  {took:>7}")
            for error in job["errors"][:3]:
                self.stdout.write(f"    {error['error']}")
