"""Monitoring API (staff only) and job progress (owner or staff)."""

from django.http import Http404
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from core.events import EventKind, EventLevel, event_record
from core.jobs import job_get
from core.query_cache import NAMESPACES, cache_namespace_flush
from core.schema_fields import any_json
from monitoring.models import MonitoringEvent
from monitoring.selectors import (
    cache_overview_get,
    endpoints_overview_get,
    events_list,
    jobs_overview_get,
    providers_overview_get,
    queues_and_workers_get,
)


class JobErrorSerializer(serializers.Serializer):
    at = serializers.FloatField(help_text="Unix time")
    batch = serializers.CharField(allow_null=True)
    error = serializers.CharField()


class JobSerializer(serializers.Serializer):
    job_id = serializers.CharField()
    kind = serializers.CharField()
    state = serializers.ChoiceField(choices=["PENDING", "PROGRESS", "SUCCESS", "FAILURE"])
    total = serializers.IntegerField()
    done = serializers.IntegerField()
    failed = serializers.IntegerField()
    skipped = serializers.IntegerField(help_text="Instruments whose cached quote was still fresh.")
    percent = serializers.FloatField()
    started_at = serializers.FloatField(allow_null=True, help_text="Unix time")
    finished_at = serializers.FloatField(allow_null=True, help_text="Unix time")
    errors = JobErrorSerializer(many=True)
    result = serializers.DictField(allow_null=True, help_text="What a finished job produced (an import's counts).")


def job_visible(*, job: dict | None, user) -> bool:
    return job is not None and (user.is_staff or job["owner_id"] == user.pk)


class JobDetailApi(APIView):
    @extend_schema(responses=JobSerializer)
    def get(self, request, job_id: str):
        job = job_get(job_id=job_id)
        if not job_visible(job=job, user=request.user):
            raise Http404("No such job.")
        return Response(JobSerializer(job).data)


class StaffApi(APIView):
    permission_classes = [IsAdminUser]


MINUTES = OpenApiParameter("minutes", int, description="Window in minutes (default 60, at most 120).")


def _minutes(request) -> int:
    try:
        return max(5, min(120, int(request.query_params.get("minutes", 60))))
    except ValueError:
        raise serializers.ValidationError({"minutes": "Must be a whole number of minutes."}) from None


class CacheStatsApi(StaffApi):
    @extend_schema(parameters=[MINUTES], responses=inline_serializer("CacheStats", {
        "namespaces": any_json(), "history": any_json(), "redis": any_json()}))
    def get(self, request):
        return Response(cache_overview_get(minutes=_minutes(request)))


class CacheFlushApi(StaffApi):
    @extend_schema(request=inline_serializer("CacheFlush", {"namespace": serializers.CharField()}),
                   responses=inline_serializer("CacheFlushed", {"namespace": serializers.CharField(),
                                                                "deleted": serializers.IntegerField()}))
    def post(self, request):
        namespace = str(request.data.get("namespace", "")).strip() if hasattr(request.data, "get") else ""
        if namespace not in NAMESPACES:
            return Response({"namespace": [f"Must be one of: {', '.join(sorted(NAMESPACES)) or 'none yet'}."]},
                            status=status.HTTP_400_BAD_REQUEST)
        deleted = cache_namespace_flush(namespace=namespace)
        event_record(kind=EventKind.CACHE_FLUSH, message=f"Cache namespace {namespace} flushed by "
                     f"{request.user.username}: {deleted} entries", namespace=namespace, deleted=deleted)
        return Response({"namespace": namespace, "deleted": deleted})


class ProvidersApi(StaffApi):
    @extend_schema(parameters=[MINUTES], responses=inline_serializer("ProviderHealth", {"providers": any_json()}))
    def get(self, request):
        return Response({"providers": providers_overview_get(minutes=_minutes(request), now=timezone.now())})


class JobsApi(StaffApi):
    @extend_schema(responses=inline_serializer("RecentJobs", {"jobs": any_json(), "queues": any_json()}))
    def get(self, request):
        return Response({"jobs": jobs_overview_get(), **queues_and_workers_get()})


class EndpointsApi(StaffApi):
    @extend_schema(parameters=[MINUTES], responses=inline_serializer("EndpointLatency", {"endpoints": any_json()}))
    def get(self, request):
        return Response({"endpoints": endpoints_overview_get(minutes=_minutes(request))})


class EventSerializer(serializers.ModelSerializer):
    class Meta:
        model = MonitoringEvent
        fields = ["id", "created_at", "level", "kind", "message", "context"]


class EventsApi(ListAPIView):
    """Recent system events, newest first; filter with ?kind= and ?level=."""

    permission_classes = [IsAdminUser]
    serializer_class = EventSerializer

    @extend_schema(parameters=[
        OpenApiParameter("kind", str, enum=EventKind.values), OpenApiParameter("level", str, enum=EventLevel.values)])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        kind = self.request.query_params.get("kind") or None
        level = self.request.query_params.get("level") or None
        if kind and kind not in EventKind.values:
            raise serializers.ValidationError({"kind": f"Must be one of {', '.join(EventKind.values)}."})
        if level and level not in EventLevel.values:
            raise serializers.ValidationError({"level": f"Must be one of {', '.join(EventLevel.values)}."})
        return events_list(kind=kind, level=level)
