"""Pages for alert channels: list and add, send a test alert, pause/resume, remove (after a
confirmation page)."""

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.cache import add_never_cache_headers
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods

from clusters.access.audit import audit, refused
from clusters.access.roles import ADMIN, VIEWER, role_required
from clusters.alerts.rules import (
    Severity,
    alert_channel_create,
    alert_channel_enabled_set,
    alert_channel_update,
)
from clusters.alerts.targets import target_display
from clusters.alerts.tasks import send_test_alert
from clusters.models import AlertChannel, AlertDelivery, Cluster


@sensitive_post_parameters("target")  # a webhook URL carries its token: out of error reports
@role_required(VIEWER, post=ADMIN)
@require_http_methods(["GET", "POST"])
def alert_channels(request: HttpRequest) -> HttpResponse:
    """The alert channels, a form to add one, and the latest deliveries."""
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        cluster_id = request.POST.get("cluster", "")
        cluster = Cluster.objects.filter(pk=cluster_id).first() if cluster_id.isdigit() else None
        try:
            if cluster_id and cluster is None:
                raise ValidationError({"cluster": ["That cluster does not exist any more."]})
            channel = alert_channel_create(
                kind=request.POST.get("kind", ""),
                target=request.POST.get("target", ""),
                cluster=cluster,
                min_severity=request.POST.get("min_severity", Severity.WARNING),
            )
        except ValidationError as exc:
            errors = exc.message_dict
            audit(request, action="alert_channel.create", result=refused(errors))
        else:
            audit(
                request,
                action="alert_channel.create",
                target=f"alert channel {channel.pk}",
                # The target is left out: a webhook URL often carries a token.
                params={"kind": channel.kind, "cluster": cluster.name if cluster else None},
            )
            messages.success(request, f"Alert channel {target_display(channel)} added.")
            return redirect("alert-channels")
    channels = AlertChannel.objects.select_related("cluster").order_by("cluster__name", "pk")
    deliveries = AlertDelivery.objects.select_related("channel", "event").order_by("-at")[:50]
    return render(
        request,
        "clusters/alerts.html",
        {
            "channels": [(c, target_display(c)) for c in channels],
            "deliveries": [(d, target_display(d.channel)) for d in deliveries],
            "clusters": Cluster.objects.all(),
            "kinds": AlertChannel.Kind.choices,
            "severities": Severity.choices,
            "errors": errors,
            "rate_limit": int(getattr(settings, "ALERT_RATE_LIMIT", 5)),
            "rate_window_s": int(getattr(settings, "ALERT_RATE_WINDOW_S", 300)),
            "posted": request.POST if errors else {},
        },
        status=400 if errors else 200,
    )


@sensitive_post_parameters("target")
@role_required(ADMIN)
@require_http_methods(["GET", "POST"])
def alert_channel_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Change a channel's target or minimum severity: the one page that shows a webhook's full
    URL, to admins only (other pages show scheme://host/…)."""
    channel = get_object_or_404(AlertChannel.objects.select_related("cluster"), pk=pk)
    errors: dict[str, list[str]] = {}
    target, min_severity = channel.target, channel.min_severity
    if request.method == "POST":
        target = request.POST.get("target", "")
        min_severity = request.POST.get("min_severity", "")
        try:
            alert_channel_update(channel=channel, target=target, min_severity=min_severity)
        except ValidationError as exc:
            errors = exc.message_dict
            channel.refresh_from_db()
            audit(
                request,
                action="alert_channel.update",
                target=f"alert channel {channel.pk}",
                result=refused(errors),
            )
        else:
            audit(
                request,
                action="alert_channel.update",
                target=f"alert channel {channel.pk}",
                params={"kind": channel.kind, "min_severity": channel.min_severity},
            )
            messages.success(request, f"Alert channel {target_display(channel)} saved.")
            return redirect("alert-channels")
    response = render(
        request,
        "clusters/alert_edit.html",
        {
            "channel": channel,
            "shown": target_display(channel),
            "target": target,
            "min_severity": min_severity,
            "severities": Severity.choices,
            "errors": errors,
        },
        status=400 if errors else 200,
    )
    add_never_cache_headers(response)  # the full URL, with its token, is on this page
    return response


@role_required(ADMIN)
@require_http_methods(["POST"])
def alert_channel_test(request: HttpRequest, pk: int) -> HttpResponse:
    """Queue a test alert: the worker sends it (no network I/O in a web request)."""
    channel = get_object_or_404(AlertChannel, pk=pk)
    transaction.on_commit(lambda: send_test_alert.delay(channel.pk))
    audit(request, action="alert_channel.test", target=f"alert channel {channel.pk}")
    messages.info(
        request, f"Test alert queued for {target_display(channel)}; its result appears below."
    )
    return redirect("alert-channels")


@role_required(ADMIN)
@require_http_methods(["POST"])
def alert_channel_toggle(request: HttpRequest, pk: int) -> HttpResponse:
    """Pause or resume a channel without losing its history."""
    channel = get_object_or_404(AlertChannel, pk=pk)
    was_enabled = channel.enabled
    alert_channel_enabled_set(channel=channel, enabled=not was_enabled)
    audit(
        request,
        action="alert_channel.disable" if was_enabled else "alert_channel.enable",
        target=f"alert channel {channel.pk}",
    )
    return redirect("alert-channels")


@role_required(ADMIN)
@require_http_methods(["GET", "POST"])
def alert_channel_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """GET: ask first (what stops, what history goes); POST: remove the channel and its
    delivery history. Removing is not undone, so the list links here instead of removing."""
    channel = get_object_or_404(AlertChannel, pk=pk)
    shown = target_display(channel)
    if request.method == "GET":
        return render(
            request,
            "clusters/alert_delete.html",
            {
                "channel": channel,
                "shown": shown,
                "deliveries": AlertDelivery.objects.filter(channel=channel).count(),
            },
        )
    channel.delete()
    audit(
        request,
        action="alert_channel.delete",
        target=f"alert channel {pk}",
        params={"kind": channel.kind},
    )
    messages.success(request, f"Alert channel {shown} removed.")
    return redirect("alert-channels")
