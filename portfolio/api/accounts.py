"""A portfolio's accounts: list, create, read, rename, delete (docs/api.md), each answered with its cash balance
and value. Owner-only: another user's portfolio or account answers 404."""

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from portfolio import selectors, services
from portfolio.accounts import accounts_with_balances_get
from portfolio.api.serializers import AccountBalanceSerializer, AccountInputSerializer, AccountUpdateSerializer
from portfolio.api.views import owned_portfolio_or_404
from portfolio.models import Account


def _with_balance(account: Account) -> dict:
    """The account as the API answers it: with its cash balance and value."""
    rows = accounts_with_balances_get(portfolio_id=account.portfolio_id)
    return next(row for row in rows if row["id"] == account.pk)


class AccountListApi(GenericAPIView):
    serializer_class = AccountBalanceSerializer
    pagination_class = None  # a handful per portfolio

    @extend_schema(responses={200: AccountBalanceSerializer(many=True)})
    def get(self, request, portfolio_id: int):
        portfolio = owned_portfolio_or_404(request, portfolio_id)
        return Response(accounts_with_balances_get(portfolio_id=portfolio.pk))

    @extend_schema(request=AccountInputSerializer, responses={201: AccountBalanceSerializer})
    def post(self, request, portfolio_id: int):
        portfolio = owned_portfolio_or_404(request, portfolio_id)
        body = AccountInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        account = services.account_create(portfolio=portfolio, **body.validated_data)
        return Response(_with_balance(account), status=status.HTTP_201_CREATED)


class AccountDetailApi(GenericAPIView):
    serializer_class = AccountBalanceSerializer

    def _get(self, request, portfolio_id: int, account_id: int) -> Account:
        portfolio = owned_portfolio_or_404(request, portfolio_id)
        account = selectors.account_list(portfolio=portfolio).filter(pk=account_id).first()
        if account is None:
            raise Http404("No such account.")
        return account

    def get(self, request, portfolio_id: int, account_id: int):
        return Response(_with_balance(self._get(request, portfolio_id, account_id)))

    @extend_schema(request=AccountUpdateSerializer, responses={200: AccountBalanceSerializer})
    def patch(self, request, portfolio_id: int, account_id: int):
        account = self._get(request, portfolio_id, account_id)
        body = AccountUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return Response(_with_balance(services.account_update(account=account, **body.validated_data)))

    @extend_schema(responses={204: None})
    def delete(self, request, portfolio_id: int, account_id: int):
        services.account_delete(account=self._get(request, portfolio_id, account_id))
        return Response(status=status.HTTP_204_NO_CONTENT)
