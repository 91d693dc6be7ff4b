from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from config.auth import ObtainExpiringAuthToken, ThrottledLoginView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/login/", ThrottledLoginView.as_view(), name="login"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/auth/token/", ObtainExpiringAuthToken.as_view(), name="api-token"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/", include("portfolio.api.urls")),
    path("api/", include("prices.api.urls")),
    path("api/", include("monitoring.api.urls")),
    path("api/", include("charts.api.urls")),
    path("", include("monitoring.urls")),
    path("", include("portfolio.urls")),
]

# A missing API path answers JSON like the rest of the API, not Django's HTML page.
handler404 = "config.exceptions.not_found"
