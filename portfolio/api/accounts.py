"""A portfolio's accounts: list, create, read, rename, delete (docs/api.md). Owner-only: another user's
portfolio or account answers 404."""

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView, ListAPIView
from rest_framework.response import Response

from portfolio import selectors, services
from portfolio.api.serializers import AccountInputSerializer, AccountSerializer, AccountUpdateSerializer
from portfolio.api.views import owned_portfolio_or_404
from portfolio.models import Account


class AccountListApi(ListAPIView):
    serializer_class = AccountSerializer
    pagination_class = None  # a handful per portfolio

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no request user
            return Account.objects.none()
        return selectors.account_list(portfolio=owned_portfolio_or_404(self.request, self.kwargs["portfolio_id"]))

    @extend_schema(request=AccountInputSerializer, responses={201: AccountSerializer})
    def post(self, request, portfolio_id: int):
        portfolio = owned_portfolio_or_404(request, portfolio_id)
        body = AccountInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        account = services.account_create(portfolio=portfolio, **body.validated_data)
        return Response(AccountSerializer(account).data, status=status.HTTP_201_CREATED)


class AccountDetailApi(GenericAPIView):
    serializer_class = AccountSerializer

    def _get(self, request, portfolio_id: int, account_id: int) -> Account:
        portfolio = owned_portfolio_or_404(request, portfolio_id)
        account = selectors.account_list(portfolio=portfolio).filter(pk=account_id).first()
        if account is None:
            raise Http404("No such account.")
        return account

    def get(self, request, portfolio_id: int, account_id: int):
        return Response(AccountSerializer(self._get(request, portfolio_id, account_id)).data)

    @extend_schema(request=AccountUpdateSerializer, responses={200: AccountSerializer})
    def patch(self, request, portfolio_id: int, account_id: int):
        account = self._get(request, portfolio_id, account_id)
        body = AccountUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return Response(AccountSerializer(services.account_update(account=account, **body.validated_data)).data)

    @extend_schema(responses={204: None})
    def delete(self, request, portfolio_id: int, account_id: int):
        services.account_delete(account=self._get(request, portfolio_id, account_id))
        return Response(status=status.HTTP_204_NO_CONTENT)
