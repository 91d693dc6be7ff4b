"""The OpenAPI schema, generated once per process and then served as is.

drf-spectacular builds the schema on every request, loading its extensions as it goes; threads of one
web process doing that at once race inside it (the first concurrent requests after a start answered
500). Built under a lock, by the first request, and kept: the schema only changes with the code, which a
restart brings.
"""

import threading

from drf_spectacular.views import SpectacularAPIView
from rest_framework.response import Response

_lock = threading.Lock()
_schemas: dict[str | None, dict] = {}


class CachedSpectacularAPIView(SpectacularAPIView):
    def _get_schema_response(self, request):
        version = self.api_version or request.version or self._get_version_parameter(request)
        with _lock:
            if version not in _schemas:
                generator = self.generator_class(urlconf=self.urlconf, api_version=version, patterns=self.patterns)
                _schemas[version] = generator.get_schema(request=request, public=self.serve_public)
        return Response(data=_schemas[version],
                        headers={"Content-Disposition": f'inline; filename="{self._get_filename(request, version)}"'})
