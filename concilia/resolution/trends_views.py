"""The supervisors' trends page (/helpdesk/trends/): clusters of similar complaints of the last
days with the spikes first, the alert subscription, and a spike turned into a collective flag."""

from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from concilia.resolution import trends
from concilia.resolution.models import Trend, TrendSubscription
from concilia.resolution.views import supervisor_view

# Clusters shown (spikes first), and references shown per cluster.
SHOWN = 30
REFERENCES = 12


@require_GET
@supervisor_view
def trend_list(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    config = trends.Settings()
    clusters = [c for c in trends.find(now=now, settings=config) if c.count > 1][:SHOWN]
    since = now - 2 * dt.timedelta(days=config.window_days)
    rows = []
    for cluster in clusters:
        cases = sorted((c.case for c in cluster.complaints), key=lambda case: case.created_at)
        rows.append(
            {
                "cluster": cluster,
                "facts": trends.describe_facts(cluster.facts, cluster.count),
                "references": [case.reference for case in cases[-REFERENCES:]],
                "trend": trends.same_trend(cluster, since) if cluster.spike else None,
            }
        )
    return render(
        request,
        "resolution/trends/list.html",
        {
            "rows": rows,
            "config": config,
            "spikes": sum(1 for row in rows if row["cluster"].spike),
            "subscribed": TrendSubscription.objects.filter(user=request.user).exists(),
            "recorded": Trend.objects.select_related("flag")[:20],
        },
    )


@require_POST
@supervisor_view
def trend_subscription(request: HttpRequest) -> HttpResponse:
    if request.POST.get("subscribe") == "1":
        trends.subscribe(user=request.user)
        messages.success(request, _("You will be alerted when a new spike appears."))
    else:
        trends.unsubscribe(user=request.user)
        messages.success(request, _("You will no longer be alerted of new spikes."))
    return redirect("trends:list")


@require_POST
@supervisor_view
def trend_flag(request: HttpRequest, pk: int) -> HttpResponse:
    trend = get_object_or_404(Trend, pk=pk)
    flag = trends.flag_trend(trend=trend, actor=request.user)
    messages.success(
        request, _("The spike is linked to collective complaint #%(pk)s.") % {"pk": flag.pk}
    )
    return redirect("collective:detail", pk=flag.pk)
