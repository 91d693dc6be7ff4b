"""Fields of the answers' schemas (drf-spectacular's inline serializers), one instance per name.

A serializer's fields are deep-copied together, so one field instance listed under two names becomes one copy
bound to the last of them: the OpenAPI schema then named a single money field of a dozen. These make a new one
each time they are called.
"""

from rest_framework import serializers


def money(*, null: bool = True, **options) -> serializers.CharField:
    """An amount written as text (exact decimal digits), null where it is unknown unless `null` is False."""
    return serializers.CharField(allow_null=null, **options)


def any_json() -> serializers.JSONField:
    return serializers.JSONField()
