"""The cluster page's incident section, alone, for its htmx poll (the timeline fills in as the
monitor records the failover)."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.vary import vary_on_headers

from clusters.access.roles import VIEWER, role_required
from clusters.models import Cluster, Incident
from clusters.web.incident_selectors import incident_story, latest_incident


def shown_token(incident: Incident | None) -> str:
    """What the section shows, as its poll sends it back: which incident, open or closed."""
    if incident is None:
        return "none"
    return f"{incident.pk}-{'open' if incident.is_open else 'closed'}"


def incident_context(cluster: Cluster, incident: Incident | None = None) -> dict:
    """What clusters/incidents.html needs: the open incident's story (or the latest one's)."""
    incident = incident or latest_incident(cluster.pk)
    return {
        "cluster": cluster,
        "story": incident_story(incident) if incident else None,
        "shown": shown_token(incident),
    }


@role_required(VIEWER)
@vary_on_headers("HX-Request")
def cluster_incident(request: HttpRequest, pk: int) -> HttpResponse:
    """The incident section for the page's poll; a plain request gets the whole page. Nothing
    new to draw (no incident open, and the one shown is still the latest): 204, which htmx
    does not swap."""
    cluster = get_object_or_404(Cluster, pk=pk)
    if not request.htmx:
        return redirect(reverse("cluster-detail", args=[cluster.pk]) + "#incident")
    incident = latest_incident(cluster.pk)
    unchanged = request.GET.get("shown") == shown_token(incident)
    if unchanged and (incident is None or not incident.is_open):
        return HttpResponse(status=204)
    return render(request, "clusters/incidents.html", incident_context(cluster, incident))
