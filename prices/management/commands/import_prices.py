"""manage.py import_prices FILE.csv [--owner USERNAME] — staff-entered closes for manual instruments, all
or nothing: the shared ones, or with --owner that user's own."""

import csv
from collections import defaultdict
from datetime import date
from decimal import Decimal, InvalidOperation

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from tqdm import tqdm

from prices.models import Instrument
from prices.services import PricePoint, manual_prices_add

REQUIRED_COLUMNS = {"symbol", "date", "close"}


class Command(BaseCommand):
    help = "Import daily closes from a CSV with columns symbol,date,close (manual instruments only)."

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--owner", help="username whose own manual instruments the symbols name")

    def handle(self, *args, file, owner=None, **options):
        owner_user = None
        if owner:
            owner_user = get_user_model().objects.filter(username=owner).first()
            if owner_user is None:
                raise CommandError(f"No user named {owner}")
        try:
            with open(file, newline="", encoding="utf-8-sig") as handle:
                reader = csv.DictReader(handle)
                columns = {c.strip().lower() for c in reader.fieldnames or []}
                if missing := REQUIRED_COLUMNS - columns:
                    raise CommandError(f"{file}: missing column(s) {', '.join(sorted(missing))}")
                rows = [{k.strip().lower(): (v or "").strip() for k, v in row.items() if k} for row in reader]
        except (OSError, UnicodeDecodeError) as error:
            raise CommandError(f"{file}: {error}") from error

        errors: list[str] = []
        by_symbol: dict[str, list[tuple[int, PricePoint]]] = defaultdict(list)
        for line, row in enumerate(rows, start=2):  # line 1 is the header
            try:
                point = PricePoint(date=date.fromisoformat(row["date"]), close=Decimal(row["close"]))
            except (ValueError, InvalidOperation):
                errors.append(f"line {line}: date must be YYYY-MM-DD and close a number")
                continue
            by_symbol[row["symbol"].upper()].append((line, point))
        instruments = {i.symbol: i for i in Instrument.objects.filter(symbol__in=list(by_symbol), owner=owner_user)}
        for symbol in sorted(set(by_symbol) - set(instruments)):
            errors.append(f"line {by_symbol[symbol][0][0]}: unknown symbol {symbol}")

        written = 0
        with transaction.atomic():
            for symbol, points in tqdm(by_symbol.items(), desc="Instruments", file=self.stderr._out):
                if symbol not in instruments:
                    continue
                try:
                    written += manual_prices_add(instrument=instruments[symbol], points=[p for _, p in points])
                except ValidationError as error:
                    for key, messages in error.message_dict.items():
                        where = points[int(key.split()[1])][0] if key.startswith("row ") else symbol
                        errors += [f"line {where}: {message}" for message in messages]
            if errors:
                transaction.set_rollback(True)
        if errors:
            raise CommandError("Nothing imported:\n" + "\n".join(errors))
        self.stdout.write(self.style.SUCCESS(f"Imported {written} closes for {len(instruments)} instruments."))
