"""The event subscriptions page: list, add (the secret shown once), pause/resume, rotate the
secret (the new one shown once), send a test event, remove; the latest deliveries below.

Viewers read; admins change. Every change and refusal is audited as the API audits it
(clusters.web.api.subscriptions), never with the URL or the secret.
"""

from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.cache import add_never_cache_headers
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST

from clusters.access.audit import audit, refused
from clusters.access.roles import ADMIN, VIEWER, role_required
from clusters.alerts.targets import url_display
from clusters.inventory.services import InvalidInput
from clusters.models import Cluster, ClusterEvent, EventDelivery, EventSubscription
from clusters.subscriptions import services
from clusters.subscriptions.signing import REPLAY_WINDOW_S
from clusters.subscriptions.tasks import delivery_enqueue
from clusters.web.api.subscriptions import audit_params, audit_target


def _posted_data(request: HttpRequest) -> dict:
    """The add form as the service reads it (the cluster by id, kinds from checkboxes)."""
    post = request.POST
    cluster = post.get("cluster", "")
    return {
        "name": post.get("name", ""),
        "url": post.get("url", ""),
        # Not a number: passed on as typed, for the service to refuse with its message.
        "cluster": int(cluster) if cluster.isdigit() else (cluster or None),
        "kinds": post.getlist("kinds"),
        "min_severity": post.get("min_severity", ClusterEvent.Severity.INFO),
    }


def _page(
    request: HttpRequest,
    *,
    new_secret: tuple[EventSubscription, str] | None = None,
    errors: dict | None = None,
) -> HttpResponse:
    """The page, with a secret to show once or the add form's errors."""
    subscriptions = EventSubscription.objects.select_related("cluster").order_by("name", "pk")
    deliveries = EventDelivery.objects.select_related("subscription", "event").order_by(
        "-at", "-pk"
    )[:50]
    response = render(
        request,
        "clusters/subscriptions.html",
        {
            "subscriptions": [(s, url_display(s.url)) for s in subscriptions],
            "deliveries": deliveries,
            "new_secret": new_secret,
            "clusters": Cluster.objects.order_by("name"),
            "kinds": ClusterEvent.Kind.values,
            "severities": ClusterEvent.Severity.choices,
            "errors": errors or {},
            "posted": request.POST if errors else {},
            "posted_kinds": request.POST.getlist("kinds") if errors else [],
            "replay_window_s": REPLAY_WINDOW_S,
        },
        status=400 if errors else 200,
    )
    add_never_cache_headers(response)  # a new secret may be on it, once
    return response


@sensitive_post_parameters("url")  # a URL carries its receiver's token: out of error reports
@role_required(VIEWER, post=ADMIN)
@require_http_methods(["GET", "POST"])
def subscription_list(request: HttpRequest) -> HttpResponse:
    """The subscriptions, the latest deliveries and a form to add a subscription."""
    if request.method != "POST":
        return _page(request)
    try:
        subscription = services.subscription_create(data=_posted_data(request))
    except InvalidInput as exc:
        audit(request, action="event_subscription.create", result=refused(exc.field_errors))
        return _page(request, errors=exc.field_errors)
    audit(
        request,
        action="event_subscription.create",
        target=audit_target(subscription),
        params=audit_params(subscription),
    )
    return _page(request, new_secret=(subscription, subscription.secret))


@role_required(ADMIN)
@require_POST
def subscription_toggle(request: HttpRequest, pk: int) -> HttpResponse:
    """Pause or resume a subscription without losing its history."""
    subscription = get_object_or_404(EventSubscription.objects.select_related("cluster"), pk=pk)
    wanted = not subscription.enabled
    changed = services.subscription_enabled_set(subscription=subscription, enabled=wanted)
    audit(
        request,
        action="event_subscription.enable" if wanted else "event_subscription.disable",
        target=audit_target(subscription),
        result="ok" if changed else "ok: already so",
    )
    return redirect("subscriptions")


@role_required(ADMIN)
@require_POST
def subscription_rotate(request: HttpRequest, pk: int) -> HttpResponse:
    """Give a subscription a new secret and show it once on the page."""
    subscription = get_object_or_404(EventSubscription.objects.select_related("cluster"), pk=pk)
    secret = services.subscription_secret_rotate(subscription=subscription)
    audit(request, action="event_subscription.rotate_secret", target=audit_target(subscription))
    return _page(request, new_secret=(subscription, secret))


@role_required(ADMIN)
@require_POST
def subscription_test(request: HttpRequest, pk: int) -> HttpResponse:
    """Queue a test event: the worker sends it (no network I/O in a web request)."""
    subscription = get_object_or_404(EventSubscription.objects.select_related("cluster"), pk=pk)
    with transaction.atomic():
        delivery = services.subscription_test_queue(subscription=subscription)
        delivery_enqueue(delivery_id=delivery.pk)
    audit(request, action="event_subscription.test", target=audit_target(subscription))
    messages.info(
        request,
        f"Test event queued for {subscription.name}; its result appears in the deliveries below.",
    )
    return redirect("subscriptions")


@role_required(ADMIN)
@require_POST
def subscription_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """Remove a subscription and its delivery history."""
    subscription = get_object_or_404(EventSubscription.objects.select_related("cluster"), pk=pk)
    target, params = audit_target(subscription), audit_params(subscription)
    subscription.delete()
    audit(request, action="event_subscription.delete", target=target, params=params)
    messages.success(request, f"Subscription {params['name']} removed.")
    return redirect("subscriptions")
