"""The watchlist API: `GET|POST /api/watchlist/`, `DELETE /api/watchlist/{id}/` (portfolio/watchlist.py).
Someone else's item answers 404, as if it did not exist."""

from django.http import Http404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from portfolio.watchlist import watchlist_add, watchlist_get, watchlist_remove
from prices.models import AssetClass, Provider


class WatchlistInputSerializer(serializers.Serializer):
    symbol = serializers.CharField(max_length=64)
    provider = serializers.ChoiceField(choices=Provider.choices, required=False, allow_blank=True)
    asset_class = serializers.ChoiceField(choices=AssetClass.choices, required=False, allow_blank=True)
    currency = serializers.CharField(max_length=3, required=False, allow_blank=True,
                                     help_text="For a new instrument, until its provider states it.")
    name = serializers.CharField(max_length=200, required=False, allow_blank=True,
                                 help_text="For a new instrument (a search result's name).")


class WatchlistItemSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    instrument_id = serializers.IntegerField(
        help_text="Tells apart the two a symbol can name (your manual one and the shared one), `provider` too.")
    symbol = serializers.CharField()
    name = serializers.CharField()
    currency = serializers.CharField()
    asset_class = serializers.CharField()
    provider = serializers.CharField()
    verification_status = serializers.CharField()
    price = serializers.CharField(allow_null=True, help_text="Latest quote or close, in `currency`.")
    price_as_of = serializers.DateField(allow_null=True)
    previous_close = serializers.CharField(allow_null=True)
    day_change = serializers.CharField(allow_null=True)
    day_change_percent = serializers.CharField(allow_null=True)
    stale = serializers.BooleanField()
    added_at = serializers.DateTimeField()


def _item_of(user, item_id: int) -> dict:
    rows = watchlist_get(user=user, item_ids=[item_id])
    if not rows:  # unfollowed in the meantime
        raise Http404("No such watchlist item.")
    return rows[0]


class WatchlistApi(APIView):
    @extend_schema(responses=inline_serializer("Watchlist", {"results": WatchlistItemSerializer(many=True)}))
    def get(self, request):
        return Response({"results": WatchlistItemSerializer(watchlist_get(user=request.user), many=True).data})

    @extend_schema(request=WatchlistInputSerializer, responses={201: WatchlistItemSerializer,
                                                                200: WatchlistItemSerializer})
    def post(self, request):
        body = WatchlistInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        item, created = watchlist_add(
            user=request.user, symbol=data["symbol"], provider=data.get("provider") or None,
            asset_class=data.get("asset_class") or None, currency=data.get("currency") or "USD",
            name=data.get("name") or "")
        return Response(WatchlistItemSerializer(_item_of(request.user, item.pk)).data,
                        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class WatchlistItemApi(APIView):
    @extend_schema(responses={204: None})
    def delete(self, request, item_id: int):
        if not watchlist_remove(user=request.user, item_id=item_id):
            raise Http404("No such watchlist item.")
        return Response(status=status.HTTP_204_NO_CONTENT)
