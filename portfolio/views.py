"""Web pages: the dashboard, portfolios and transactions, usable without the API."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from core.jobs import job_id_valid
from portfolio import selectors, services
from portfolio.access import owned_portfolio_or_404
from portfolio.dashboard import dashboard_payloads_get
from portfolio.forms import AccountForm, PortfolioForm, TransactionForm, form_errors_apply
from portfolio.import_jobs import transactions_import_or_queue
from portfolio.importing import (
    MAX_FILE_BYTES,
    OPTIONAL_COLUMNS,
    REQUIRED_COLUMNS,
    ImportRejected,
    RowError,
    import_account_get,
)
from portfolio.models import Account, Portfolio, Transaction, TransactionType
from portfolio.positions import instrument_positions_get, portfolio_summaries_get
from portfolio.ranges import CHART_RANGES, PERFORMANCE_RANGES
from prices.selectors import instrument_of_user_get

TRANSACTIONS_PER_PAGE = 50


def _owned_transaction(portfolio: Portfolio, transaction_id: int) -> Transaction:
    tx = selectors.transaction_list(portfolio=portfolio).filter(pk=transaction_id).first()
    if tx is None:
        raise Http404("No such transaction.")
    return tx


def _portfolio_create_from(request, form: PortfolioForm) -> Portfolio | None:
    if not form.is_valid():
        return None
    try:
        return services.portfolio_create(owner=request.user, **form.cleaned_data)
    except ValidationError as exc:
        form_errors_apply(form, exc)
        return None


@login_required
def dashboard(request):
    """A light shell: no price or chart work here. Its script loads totals, holdings and the chart."""
    portfolios = list(selectors.portfolio_list(user=request.user))
    if not portfolios:
        form = PortfolioForm(request.POST or None)
        if request.method == "POST" and (portfolio := _portfolio_create_from(request, form)):
            return redirect(f"{reverse('transaction-list', args=[portfolio.pk])}")
        return render(request, "portfolio/empty.html", {"form": form})
    selected = next((p for p in portfolios if str(p.pk) == request.GET.get("portfolio")), portfolios[0])
    return render(
        request,
        "portfolio/dashboard.html",
        {"portfolios": portfolios, "portfolio": selected, "ranges": CHART_RANGES,
         "performance_ranges": PERFORMANCE_RANGES},
    )


@login_required
def instrument_page(request, symbol: str):
    """An instrument's price chart and the user's own transactions in it: for those who may read its
    prices (holders, staff; a manual instrument for its owner), a 404 for everyone else."""
    # ?instrument=<id>: which of the two a symbol can name (your manual KO, the shared KO) the link meant
    chosen = request.GET.get("instrument")
    if chosen is not None and not (chosen.isascii() and chosen.isdigit()):
        raise Http404("No such instrument.")
    instrument = instrument_of_user_get(user=request.user, symbol=symbol,
                                        instrument_id=None if chosen is None else int(chosen))
    if instrument is None or not selectors.instrument_readable_by(user=request.user, instrument=instrument):
        raise Http404("No such instrument.")
    transactions = selectors.transaction_list_of_instrument(user=request.user, instrument=instrument)
    ranges = [(30, "1M"), (91, "3M"), (182, "6M"), (365, "1Y"), (1826, "5Y"), (36500, "MAX")]
    positions = instrument_positions_get(user=request.user, instrument=instrument)
    return render(request, "portfolio/instrument.html",
                  {"instrument": instrument, "transactions": transactions, "ranges": ranges, "positions": positions})


@login_required
def portfolio_list_page(request):
    form = PortfolioForm(request.POST or None)
    if request.method == "POST" and (portfolio := _portfolio_create_from(request, form)):
        messages.success(request, f"Portfolio “{portfolio.name}” created.")
        return redirect("portfolio-list")
    summaries = portfolio_summaries_get(user=request.user)
    return render(request, "portfolio/portfolio_list.html", {"summaries": summaries, "form": form})


@login_required
@require_POST
def portfolio_delete_page(request, portfolio_id: int):
    portfolio = owned_portfolio_or_404(request, portfolio_id)
    services.portfolio_delete(portfolio=portfolio)
    messages.success(request, f"Portfolio “{portfolio.name}” deleted.")
    return redirect("portfolio-list")


@login_required
def transaction_list_page(request, portfolio_id: int):
    portfolio = owned_portfolio_or_404(request, portfolio_id)
    form = TransactionForm(request.POST or None, initial={"currency": portfolio.base_currency},
                           accounts=selectors.account_list(portfolio=portfolio))
    if request.method == "POST" and form.is_valid():
        try:
            tx = services.transaction_create(portfolio=portfolio, data=form.to_input())
        except ValidationError as exc:
            form_errors_apply(form, exc)
        else:
            what = tx.instrument.symbol if tx.instrument else f"{tx.quantity * tx.price:f} {tx.currency}"
            messages.success(request, f"Added {tx.get_type_display().lower()} of {what} to {tx.account.name}.")
            return redirect("transaction-list", portfolio_id=portfolio.pk)
    page = Paginator(selectors.transaction_list(portfolio=portfolio), TRANSACTIONS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    return render(
        request, "portfolio/transaction_list.html", {"portfolio": portfolio, "form": form, "page": page}
    )


@login_required
def transaction_edit_page(request, portfolio_id: int, transaction_id: int):
    portfolio = owned_portfolio_or_404(request, portfolio_id)
    tx = _owned_transaction(portfolio, transaction_id)
    initial = {
        "account": tx.account_id, "symbol": tx.instrument.symbol if tx.instrument else "", "type": tx.type,
        "date": tx.date, "quantity": tx.quantity,
        "price": tx.price, "fee": tx.fee, "currency": tx.currency, "note": tx.note,
        "gift": tx.price == 0 and tx.type in (TransactionType.BUY, TransactionType.SELL),
    }
    form = TransactionForm(request.POST or None, initial=initial,
                           accounts=selectors.account_list(portfolio=portfolio))
    if request.method == "POST" and form.is_valid():
        try:
            services.transaction_update(transaction_obj=tx, data=form.to_input())
        except Transaction.DoesNotExist:
            raise Http404("No such transaction.") from None
        except ValidationError as exc:
            form_errors_apply(form, exc)
        else:
            messages.success(request, "Transaction saved.")
            return redirect("transaction-list", portfolio_id=portfolio.pk)
    return render(
        request, "portfolio/transaction_edit.html", {"portfolio": portfolio, "form": form, "transaction": tx}
    )


@login_required
@require_POST
def transaction_delete_page(request, portfolio_id: int, transaction_id: int):
    portfolio = owned_portfolio_or_404(request, portfolio_id)
    tx = _owned_transaction(portfolio, transaction_id)
    try:
        services.transaction_delete(transaction_obj=tx)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, "Transaction deleted.")
    return redirect("transaction-list", portfolio_id=portfolio.pk)


@login_required
def transaction_import_page(request, portfolio_id: int):
    """Upload a CSV of transactions: all rows or none, every bad row listed."""
    portfolio = owned_portfolio_or_404(request, portfolio_id)
    errors = []
    chosen = request.POST.get("account", "")
    if request.method == "POST":
        upload = request.FILES.get("file")
        content = upload.read(MAX_FILE_BYTES + 1) if upload is not None else b""
        try:
            account = import_account_get(portfolio=portfolio, value=chosen)
        except ValidationError as error:
            errors = [RowError(0, "account", error.message_dict["account"][0])]
        if upload is None:
            errors.append(RowError(0, "file", "Choose a CSV file to import."))
        if not errors:
            try:
                result = transactions_import_or_queue(portfolio=portfolio, content=content, owner_id=request.user.pk,
                                                      account=account)
            except ImportRejected as rejected:
                errors = rejected.row_errors
            else:
                if isinstance(result, str):  # queued for a worker: this page follows it
                    return redirect(f"{reverse('transaction-import', args=[portfolio.pk])}?job={result}")
                messages.success(request, f"Imported {result.created} transactions"
                                 + (f"; skipped {result.skipped_duplicates} already present." if
                                    result.skipped_duplicates else "."))
                return redirect("transaction-list", portfolio_id=portfolio.pk)
    job_id = request.GET.get("job", "")
    return render(request, "portfolio/transaction_import.html",
                  {"portfolio": portfolio, "errors": errors, "columns": REQUIRED_COLUMNS,
                   "optional_columns": OPTIONAL_COLUMNS, "job_id": job_id if job_id_valid(job_id) else "",
                   "accounts": selectors.account_list(portfolio=portfolio), "chosen_account": chosen},
                  status=400 if errors else 200)


@login_required
def account_list_page(request, portfolio_id: int):
    """The portfolio's accounts with their value (the dashboard's, so the figures agree), a form to add one."""
    portfolio = owned_portfolio_or_404(request, portfolio_id)
    form = AccountForm(request.POST or None, initial={"currency": portfolio.base_currency})
    if request.method == "POST" and form.is_valid():
        try:
            account = services.account_create(portfolio=portfolio, **form.cleaned_data)
        except ValidationError as exc:
            form_errors_apply(form, exc)
        else:
            messages.success(request, f"Account “{account.name}” created.")
            return redirect("account-list", portfolio_id=portfolio.pk)
    values = {row["id"]: row for row in dashboard_payloads_get(portfolio=portfolio)["initial"]["accounts"]}
    accounts = [(account, values.get(account.pk)) for account in selectors.account_list(portfolio=portfolio)]
    return render(request, "portfolio/account_list.html", {"portfolio": portfolio, "form": form,
                                                           "accounts": accounts},
                  status=400 if form.errors else 200)


@login_required
def account_edit_page(request, portfolio_id: int, account_id: int):
    portfolio = owned_portfolio_or_404(request, portfolio_id)
    account = _owned_account(portfolio, account_id)
    form = AccountForm(request.POST or None, initial={"name": account.name, "platform": account.platform,
                                                      "currency": account.currency,
                                                      "tracks_cash": account.tracks_cash})
    if request.method == "POST" and form.is_valid():
        try:
            services.account_update(account=account, **form.cleaned_data)
        except ValidationError as exc:
            form_errors_apply(form, exc)
        else:
            messages.success(request, "Account saved.")
            return redirect("account-list", portfolio_id=portfolio.pk)
    return render(request, "portfolio/account_edit.html", {"portfolio": portfolio, "form": form, "account": account},
                  status=400 if form.errors else 200)


@login_required
@require_POST
def account_delete_page(request, portfolio_id: int, account_id: int):
    portfolio = owned_portfolio_or_404(request, portfolio_id)
    account = _owned_account(portfolio, account_id)
    try:
        services.account_delete(account=account)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"Account “{account.name}” deleted.")
    return redirect("account-list", portfolio_id=portfolio.pk)


def _owned_account(portfolio: Portfolio, account_id: int) -> Account:
    account = selectors.account_list(portfolio=portfolio).filter(pk=account_id).first()
    if account is None:
        raise Http404("No such account.")
    return account
