"""URL wiring: pages, the REST API under /api/v1/, the admin."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView

from clusters.access.login import RateLimitedLoginView
from clusters.web.metrics import metrics

urlpatterns = [
    path("login/", RateLimitedLoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    # The admin site's own login would bypass the rate limit and the audit: send it to ours.
    path("admin/login/", RedirectView.as_view(url="/login/", query_string=True)),
    path("admin/", admin.site.urls),
    path("api/v1/", include("clusters.web.api.urls")),
    path("metrics", metrics, name="metrics"),
    path("", include("clusters.web.urls")),
]
