"""Each portfolio's headline value, and the caller's position in one instrument (portfolio/positions.py):
what the Portfolios page and an instrument's page show, for scripts."""

from django.http import Http404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from core.schema_fields import money
from portfolio.api.instruments import InstrumentChoiceQuerySerializer
from portfolio.positions import instrument_positions_get, portfolio_summaries_get
from portfolio.selectors import instrument_readable_by, transaction_list_of_instrument
from prices.selectors import instrument_of_user_get


class PortfolioValuesApi(APIView):
    @extend_schema(responses=inline_serializer("PortfolioValues", {"results": inline_serializer("PortfolioValue", {
        "id": serializers.IntegerField(), "name": serializers.CharField(), "base_currency": serializers.CharField(),
        "total_value": money(), "total_cost": money(), "unrealized_gain": money(), "unrealized_gain_percent": money(),
        "day_change": money(), "holdings_count": serializers.IntegerField(), "stale_count": serializers.IntegerField(),
    }, many=True)}))
    def get(self, request):
        rows = [{"id": row["portfolio"].pk, "name": row["portfolio"].name,
                 "base_currency": row["portfolio"].base_currency,
                 **{key: value for key, value in row.items() if key != "portfolio"}}
                for row in portfolio_summaries_get(user=request.user)]
        return Response({"results": rows})


class InstrumentPositionApi(APIView):
    """The caller's position and trades in the instrument a symbol names (their own manual one, else the shared
    one), or in the one `?instrument=<id>` picks among those two."""

    @extend_schema(responses=inline_serializer("InstrumentPosition", {
        "symbol": serializers.CharField(),
        "instrument_id": serializers.IntegerField(help_text="Tells the two a symbol can name apart."),
        "provider": serializers.CharField(help_text="`manual` for your own instrument."),
        "positions": inline_serializer("InstrumentPortfolioPosition", {
            "portfolio": serializers.IntegerField(), "base_currency": serializers.CharField(),
            "quantity": serializers.CharField(), "average_cost": money(), "cost_basis": money(),
            "market_value": money(), "unrealized_gain": money(), "unrealized_gain_percent": money()}, many=True),
        "trades": inline_serializer("InstrumentTrade", {
            "portfolio": serializers.IntegerField(), "date": serializers.DateField(), "type": serializers.CharField(),
            "quantity": serializers.CharField(), "price": serializers.CharField(),
            "currency": serializers.CharField()}, many=True),
    }), parameters=[InstrumentChoiceQuerySerializer])
    def get(self, request, symbol: str):
        # ?instrument=<id>: which of the two a symbol can name (your manual KO, the shared KO), as for its prices
        query = InstrumentChoiceQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        instrument = instrument_of_user_get(user=request.user, symbol=symbol,
                                            instrument_id=query.validated_data.get("instrument"))
        if instrument is None or not instrument_readable_by(user=request.user, instrument=instrument):
            raise Http404("No such instrument.")
        positions = [{"portfolio": p["portfolio"].pk, "base_currency": p["portfolio"].base_currency,
                      **{key: p[key] for key in ("quantity", "average_cost", "cost_basis", "market_value",
                                                 "unrealized_gain", "unrealized_gain_percent")}}
                     for p in instrument_positions_get(user=request.user, instrument=instrument)]
        trades = [{"portfolio": tx.portfolio_id, "date": tx.date, "type": tx.type,
                   "quantity": format(tx.quantity.normalize(), "f"), "price": format(tx.price.normalize(), "f"),
                   "currency": tx.currency}
                  for tx in transaction_list_of_instrument(user=request.user, instrument=instrument)
                  if tx.type in ("BUY", "SELL")]
        return Response({"symbol": instrument.symbol, "instrument_id": instrument.pk, "provider": instrument.provider,
                         "positions": positions, "trades": trades})
