from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.http import HttpResponse, HttpResponsePermanentRedirect
from django.templatetags.static import static
from django.urls import include, path
from drf_spectacular.views import SpectacularSwaggerSplitView

from config.auth import ObtainExpiringAuthToken
from config.schema import CachedSpectacularAPIView
from config.signup import signup


class SwaggerUiView(SpectacularSwaggerSplitView):
    """Swagger UI whose start-up script is a file of its own (`?script`), not inline: the page works under
    the Content-Security-Policy (script-src 'self')."""

    def options(self, request, *args, **kwargs):
        # DRF's OPTIONS answer is data for a renderer; this view has only an HTML template to render it in.
        return HttpResponse()


def favicon(request):
    """Pages of our own link the icon; the admin's and browsers' own guess ask for /favicon.ico."""
    return HttpResponsePermanentRedirect(static("favicon.svg"))


urlpatterns = [
    # The dashboard's reads first (charts' and portfolio's lists start with them): the resolver tries the
    # patterns in order, and these are asked for more than all the others together.
    path("api/", include("charts.api.urls")),
    path("api/", include("portfolio.api.urls")),
    path("favicon.ico", favicon),
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/password_change/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path("accounts/password_change/done/", auth_views.PasswordChangeDoneView.as_view(),
         name="password_change_done"),
    # 404 unless FOLIO_SIGNUP is on (the view says so): the login page links to it only then.
    path("accounts/signup/", signup, name="signup"),
    path("api/auth/token/", ObtainExpiringAuthToken.as_view(), name="api-token"),
    path("api/schema/", CachedSpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SwaggerUiView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/", include("monitoring.api.urls")),
    path("", include("monitoring.urls")),
    path("", include("portfolio.urls")),
]

# Password reset mails a link: without a mail server (EMAIL_URL) the pages would promise a mail that never
# leaves, so they are not mounted at all (404).
if settings.PASSWORD_RESET_ENABLED:
    urlpatterns += [
        path("accounts/password_reset/", auth_views.PasswordResetView.as_view(), name="password_reset"),
        path("accounts/password_reset/done/", auth_views.PasswordResetDoneView.as_view(),
             name="password_reset_done"),
        path("accounts/reset/<uidb64>/<token>/", auth_views.PasswordResetConfirmView.as_view(),
             name="password_reset_confirm"),
        path("accounts/reset/done/", auth_views.PasswordResetCompleteView.as_view(),
             name="password_reset_complete"),
    ]

# A missing API path answers JSON like the rest of the API, not Django's HTML page.
handler404 = "config.exceptions.not_found"
# A database that cannot be reached answers 503 with Retry-After (JSON under /api/), not 500.
handler500 = "config.exceptions.server_error"
