from rest_framework import serializers


class PricePointSerializer(serializers.Serializer):
    date = serializers.DateField()
    close = serializers.DecimalField(max_digits=20, decimal_places=6)


class StoredPriceSerializer(PricePointSerializer):
    adjusted_close = serializers.DecimalField(max_digits=20, decimal_places=6, allow_null=True)
    source = serializers.CharField()


class InstrumentPricesSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    currency = serializers.CharField()
    provider = serializers.CharField()
    verification_status = serializers.CharField()
    stale = serializers.BooleanField(help_text="The newest close is older than the last market close.")
    prices = StoredPriceSerializer(many=True)


class PriceRangeQuerySerializer(serializers.Serializer):
    start = serializers.DateField(required=False)
    end = serializers.DateField(required=False)

    def validate(self, attrs):
        if attrs.get("start") and attrs.get("end") and attrs["start"] > attrs["end"]:
            raise serializers.ValidationError({"start": "Must not be after end."})
        return attrs


class RefreshStartedSerializer(serializers.Serializer):
    job_id = serializers.CharField()
    progress_url = serializers.CharField()
    already_running = serializers.BooleanField(help_text="A refresh of the same scope was running: this is it.")
