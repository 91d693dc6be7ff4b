"""Job progress: users see their own jobs, staff all of them; anyone else's answers 404."""

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from monitoring.jobs import job_get


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


def job_visible(*, job: dict | None, user) -> bool:
    return job is not None and (user.is_staff or job["owner_id"] == user.pk)


class JobDetailApi(APIView):
    @extend_schema(responses=JobSerializer)
    def get(self, request, job_id: str):
        job = job_get(job_id=job_id)
        if not job_visible(job=job, user=request.user):
            raise Http404("No such job.")
        return Response(JobSerializer(job).data)
