"""`GET /api/instruments/search/?q=`: known instruments, then the configured providers' answers. It never
waits for a provider: answers still being fetched are named in `pending`, and asking again soon (the
trade form does, debounced) gets them from the cache. Served by portfolio, which knows who may read which
instrument: the known ones listed are those the caller may read (portfolio/selectors.py), so a search never
tells that someone else holds an instrument."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from portfolio.selectors import instruments_readable_q
from prices.search import instrument_search


class SearchResultSerializer(serializers.Serializer):
    symbol = serializers.CharField(help_text="What a transaction names it by.")
    name = serializers.CharField(allow_blank=True)
    exchange = serializers.CharField(allow_blank=True)
    currency = serializers.CharField()
    asset_class = serializers.CharField()
    provider = serializers.CharField()
    provider_symbol = serializers.CharField(allow_blank=True, help_text="The provider's own name (CoinGecko ids).")
    known = serializers.BooleanField(help_text="An instrument you already hold, follow, compare with or own.")


class SearchAnswerSerializer(serializers.Serializer):
    query = serializers.CharField()
    results = SearchResultSerializer(many=True)
    pending = serializers.ListField(child=serializers.CharField(), help_text="Providers still searching: ask again.")
    failed = serializers.ListField(child=serializers.CharField(), help_text="Providers whose search failed lately.")
    complete = serializers.BooleanField()


class InstrumentSearchApi(APIView):
    @extend_schema(parameters=[OpenApiParameter("q", str, required=True,
                                                description="Part of a ticker, a name or a coin id.")],
                   responses=SearchAnswerSerializer)
    def get(self, request):
        answer = instrument_search(query=request.query_params.get("q", ""),
                                   visible=instruments_readable_q(user=request.user))
        body = {"query": answer.query, "results": answer.results, "pending": answer.pending,
                "failed": answer.failed, "complete": answer.complete}
        return Response(SearchAnswerSerializer(body).data)
