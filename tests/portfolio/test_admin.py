"""Staff's edits in the admin give the portfolios they touch a new data version, as the services' writes do: the
dashboard shows the edited figures at once, not the cached ones from before (which it did until the next
price refresh bumped the version)."""

from datetime import date
from decimal import Decimal

import pytest
from django.db import connection
from django.forms.models import model_to_dict
from django.test.utils import CaptureQueriesContext

from portfolio.models import Account, KeptReplay, Portfolio, Transaction
from tests.factories import PortfolioFactory, TransactionFactory

pytestmark = pytest.mark.django_db


def version(portfolio) -> int:
    return Portfolio.objects.get(pk=portfolio.pk).data_version


def total(api, portfolio) -> str:
    return api.get(f"/api/dashboard-initial-data/{portfolio.pk}/").json()["total_value"]


def form_of(row) -> dict:
    """The admin change form's fields as a browser posts them: the row's values, blanks for None."""
    return {name: ("" if value is None else value.isoformat() if isinstance(value, date) else value)
            for name, value in model_to_dict(row).items()}


def test_a_transaction_edited_in_the_admin_shows_at_once(staff, api, portfolio, held):
    assert total(api, portfolio) == "600.00"  # cached now
    response = staff.post(f"/admin/portfolio/transaction/{held.pk}/change/", {**form_of(held), "quantity": "12"})
    assert response.status_code == 302, response.content[:2000]
    assert total(api, portfolio) == "720.00"


def test_a_transaction_moved_to_another_portfolio_changes_both(staff, api, user, portfolio, held):
    other = PortfolioFactory(owner=user, name="Other")
    before = (version(portfolio), version(other))
    response = staff.post(f"/admin/portfolio/transaction/{held.pk}/change/", {**form_of(held), "portfolio": other.pk})
    assert response.status_code == 302, response.content[:2000]
    assert (version(portfolio), version(other)) == (before[0] + 1, before[1] + 1)
    assert total(api, portfolio) == "0.00" and total(api, other) == "600.00"


def test_transactions_deleted_in_the_admin_one_or_several_show_at_once(staff, api, portfolio, held):
    second = TransactionFactory(portfolio=portfolio, instrument=held.instrument, quantity=Decimal("5"))
    assert total(api, portfolio) == "900.00"
    response = staff.post(f"/admin/portfolio/transaction/{second.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302 and total(api, portfolio) == "600.00"
    response = staff.post("/admin/portfolio/transaction/", {"action": "delete_selected", "post": "yes",
                                                            "_selected_action": [held.pk]})
    assert response.status_code == 302 and not Transaction.objects.filter(portfolio=portfolio).exists()
    assert total(api, portfolio) == "0.00"


def test_an_account_edited_in_the_admin_changes_its_portfolio(staff, portfolio, held):
    account = Account.objects.get(pk=held.account_id)
    before = version(portfolio)
    response = staff.post(f"/admin/portfolio/account/{account.pk}/change/",
                          {**form_of(account), "tracks_cash": "" if account.tracks_cash else "on"})
    assert response.status_code == 302, response.content[:2000]
    assert version(portfolio) == before + 1


def test_a_portfolio_edited_in_the_admin_changes_its_version(staff, portfolio):
    before = version(portfolio)
    response = staff.post(f"/admin/portfolio/portfolio/{portfolio.pk}/change/", {
        **form_of(portfolio), "base_currency": "EUR", "created_at_0": portfolio.created_at.date().isoformat(),
        "created_at_1": portfolio.created_at.time().isoformat(timespec="seconds"),
        "transactions-TOTAL_FORMS": "0", "transactions-INITIAL_FORMS": "0"})
    assert response.status_code == 302, response.content[:2000]
    assert Portfolio.objects.get(pk=portfolio.pk).base_currency == "EUR"
    assert version(portfolio) == before + 1


def test_a_portfolio_renamed_in_the_admin_to_a_name_its_owner_uses_is_refused_by_name(staff, user, portfolio):
    PortfolioFactory(owner=user, name="Other")
    before = version(portfolio)
    response = staff.post(f"/admin/portfolio/portfolio/{portfolio.pk}/change/", {
        **form_of(portfolio), "name": "Other", "created_at_0": portfolio.created_at.date().isoformat(),
        "created_at_1": portfolio.created_at.time().isoformat(timespec="seconds"),
        "transactions-TOTAL_FORMS": "0", "transactions-INITIAL_FORMS": "0"})
    assert response.status_code == 200
    assert "Its owner already has a portfolio named &#x27;Other&#x27;." in response.content.decode()
    assert (Portfolio.objects.get(pk=portfolio.pk).name, version(portfolio)) == (portfolio.name, before)


def _first_locks(response_of) -> list[str]:
    """The tables of the first two rows a request locks (SELECT … FOR UPDATE), in order."""
    with CaptureQueriesContext(connection) as queries:
        response = response_of()
    assert response.status_code == 302, response.content[:2000]
    locks = [q["sql"] for q in queries.captured_queries if "FOR UPDATE" in q["sql"]]
    return [next(table for table in (KeptReplay._meta.db_table, Portfolio._meta.db_table) if table in sql)
            for sql in locks[:2]]


def test_the_admin_locks_a_portfolio_as_the_services_do_its_kept_row_first(staff, user, portfolio, held):
    """A row the admin saves or deletes is locked by its write; a portfolio's kept replay's row first, as the
    services take it (portfolio/kept.py portfolio_write_lock), or the two wait on each other: the admin holding
    the transaction while its trigger waits for the kept row, a service holding the kept row and waiting for the
    transaction (review r3)."""
    kept, own = KeptReplay._meta.db_table, Portfolio._meta.db_table
    other = PortfolioFactory(owner=user, name="Other")
    assert _first_locks(lambda: staff.post(f"/admin/portfolio/transaction/{held.pk}/change/",
                                           {**form_of(held), "portfolio": other.pk})) == [kept, own]
    account = Account.objects.filter(portfolio=portfolio).first()
    assert _first_locks(lambda: staff.post(f"/admin/portfolio/account/{account.pk}/change/",
                                           {**form_of(account), "tracks_cash": ""})) == [kept, own]
    assert _first_locks(lambda: staff.post(f"/admin/portfolio/portfolio/{other.pk}/delete/",
                                           {"post": "yes"})) == [kept, own]
