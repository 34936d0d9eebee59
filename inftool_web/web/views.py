"""Pages: parse the request, call a selector or one service, render a page or one partial."""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from inftool_web.catalog.selectors import (
    MAX_QUERY_LENGTH,
    curation_summary,
    duplicate_groups,
    parse_min_score,
    tool_list,
    tool_tree,
)
from inftool_web.core.filters import FilterError
from inftool_web.core.health import worker_status
from inftool_web.core.roles import has_role, user_role
from inftool_web.loop.datacard import audit_agreement, data_card_get
from inftool_web.loop.iteration_config import ConfigError
from inftool_web.loop.iterations import iteration_cancel
from inftool_web.loop.selectors import (
    evaluation_table,
    iteration_comparisons,
    iteration_get,
    iteration_list,
    iteration_stats,
    iteration_summaries,
    live_trajectories,
    recent_trajectories,
)
from inftool_web.loop.services import iteration_launch
from inftool_web.synth.models import Trajectory
from inftool_web.synth.selectors import (
    audit_sample,
    training_correction,
    trajectory_brief,
    votes_by_round,
)
from inftool_web.synth.selectors import trajectory_detail as trajectory_full
from inftool_web.synth.services import audit_record
from synthesis.mcp_tree.curation import DEFAULT_THRESHOLD

from . import charts
from .forms import AuditForm, AuditSampleForm, LaunchForm


def role_required(role: str):
    def decorator(view):
        @wraps(view)
        @login_required
        def wrapped(request, *args, **kwargs):
            if not has_role(request.user, role):
                raise PermissionDenied(f"this page needs the {role} role")
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def _roles(request) -> dict:
    return {
        "role": user_role(request.user),
        "can_audit": has_role(request.user, "reviewer"),
        "can_operate": has_role(request.user, "operator"),
    }


# ------------------------------------------------------------------ dashboard
@role_required("viewer")
@require_GET
def dashboard(request):
    summaries = iteration_summaries(list(iteration_list().select_related("output_checkpoint")[:20]))
    running = next((s for s in summaries if s.iteration.is_active), None)
    ctx = {**_roles(request), "summaries": summaries, "running": running,
           "recent": recent_trajectories(limit=15)}
    if request.htmx:
        return render(request, "web/dashboard.html#iterations", ctx)
    return render(request, "web/dashboard.html", ctx)


@role_required("viewer")
@require_GET
def workers(request):
    """The dashboard's worker line, fetched after the page (a ping waits for answers)."""
    return render(request, "web/dashboard.html#workers", {"workers": worker_status()})


@role_required("viewer")
@require_GET
def trajectory_row(request, pk: int):
    t = get_object_or_404(trajectory_brief(), pk=pk)
    return render(request, "web/partials.html#trajectory_row", {"t": t, "show_iteration": request.GET.get("it") == "1"})


@role_required("viewer")
@require_GET
def trajectory_card(request, pk: int):
    t = get_object_or_404(trajectory_brief().prefetch_related("messages"), pk=pk)
    return render(request, "web/partials.html#trajectory_card", {"t": t})


# ------------------------------------------------------------------ iterations
@role_required("viewer")
@require_GET
def iteration_detail(request, pk: int):
    iteration = get_object_or_404(iteration_get(), pk=pk)
    summary = iteration_summaries([iteration])[0]
    ctx = {**_roles(request), "iteration": iteration, "summary": summary}
    if request.htmx:
        return render(request, "web/iteration.html#summary", ctx)
    stats = iteration_stats(iteration=iteration)
    ctx.update(live=live_trajectories(iteration=iteration), stats=stats,
               data_card=data_card_get(iteration=iteration), charts=charts.iteration_charts(stats))
    return render(request, "web/iteration.html", ctx)


@role_required("operator")
@require_POST
def iteration_cancel_view(request, pk: int):
    iteration_cancel(iteration=get_object_or_404(iteration_list(), pk=pk))
    return redirect("web:iteration", pk=pk)


@role_required("operator")
@require_http_methods(["GET", "POST"])
def iteration_new(request):
    form = LaunchForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            iteration = iteration_launch(config=form.cleaned_data["config"], created_by=request.user,
                                         name=form.cleaned_data.get("name") or "")
        except ConfigError as exc:  # checked in the form already; a race on a value still lands here
            for key, message in exc.errors.items():
                form.add_error(None, f"{key}: {message}")
        else:
            return redirect("web:iteration", pk=iteration.pk)
    return render(request, "web/iteration_new.html", {**_roles(request), "form": form},
                  status=400 if request.method == "POST" else 200)


# ------------------------------------------------------------------ trajectories
@role_required("viewer")
@require_GET
def trajectory_detail(request, pk: int):
    try:
        t = trajectory_full(pk=pk)
    except Trajectory.DoesNotExist:
        raise Http404("No such trajectory") from None
    return render(request, "web/trajectory.html", {
        **_roles(request), "t": t, "rounds": votes_by_round(t), "audit_form": AuditForm(),
        "correction": training_correction(t),
    })


# ------------------------------------------------------------------ tools
@role_required("viewer")
@require_GET
def tools(request):
    q = request.GET.get("q", "")[:MAX_QUERY_LENGTH]
    domain, category = request.GET.get("domain", ""), request.GET.get("category", "")
    try:
        min_score = parse_min_score(request.GET.get("min_score", "")[:40])
    except FilterError as exc:
        min_score, score_error = None, exc.errors["min_score"]
    else:
        score_error = ""
    # The report and the badges judge tools against the filter's score, else the default.
    threshold = DEFAULT_THRESHOLD if min_score is None else min_score
    qs = tool_list(q=q, domain=domain, category=category, min_score=min_score)
    page = Paginator(qs, 25).get_page(request.GET.get("page"))
    ctx = {**_roles(request), "q": q, "domain": domain, "category": category, "page": page,
           "min_score": "" if min_score is None else f"{min_score:g}", "score_error": score_error,
           "threshold": threshold, "groups": duplicate_groups(list(page.object_list))}
    if request.htmx:
        return render(request, "web/tools.html#results", ctx)
    ctx["tree"] = tool_tree()
    ctx["balance"] = charts.tree_balance_charts(ctx["tree"])
    ctx["curation"] = curation_summary(threshold=threshold)
    return render(request, "web/tools.html", ctx)


# ------------------------------------------------------------------ audit
@role_required("reviewer")
@require_GET
def audit(request):
    form = AuditSampleForm(request.GET or None)
    iterations = list(iteration_list())
    ctx = {**_roles(request), "iterations": iterations, "form": form, "sample": [], "iteration": None}
    if form.is_valid() and form.cleaned_data.get("iteration"):
        iteration = get_object_or_404(iteration_list(), pk=form.cleaned_data["iteration"])
        size = form.cleaned_data.get("size") or 20
        seed = form.cleaned_data.get("seed") or "1"
        ctx.update(iteration=iteration, size=size, seed=seed,
                   sample=audit_sample(iteration_id=iteration.pk, size=size, seed=seed),
                   agreement=audit_agreement(iteration=iteration))
    return render(request, "web/audit.html", ctx)


@role_required("reviewer")
@require_POST
def audit_decide(request, pk: int):
    t = get_object_or_404(trajectory_brief(), pk=pk)
    form = AuditForm(request.POST)
    if not form.is_valid():
        return HttpResponse(f"bad audit: {form.errors.as_text()}", status=400, content_type="text/plain")
    audit_record(trajectory=t, reviewer=request.user, decision=form.cleaned_data["decision"],
                 note=form.cleaned_data["note"])
    if request.htmx:
        t = trajectory_full(pk=pk)
        template = "web/audit.html#audit_item" if request.POST.get("from") == "audit" else "web/trajectory.html#audit"
        return render(request, template, {**_roles(request), "t": t, "audit_form": AuditForm(),
                                          "position": request.POST.get("position", "")})
    return redirect(_safe_next(request) or reverse("web:trajectory", args=[pk]))


def _safe_next(request) -> str | None:
    """The form's ``next`` when it stays on this site (``//evil.com``, ``/\\evil.com`` and
    ``https://evil.com`` do not), else None."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
            target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return None


# ------------------------------------------------------------------ evaluations
@role_required("viewer")
@require_GET
def evaluations(request):
    table = evaluation_table()
    labels = [f"{run.checkpoint.name}" + (f" (#{run.iteration.number})" if run.iteration else "")
              for run in table.runs]
    overall, per_category = charts.evaluation_charts(table)
    rows = [(c, table.cells[c]) for c in table.categories]
    compared = iteration_comparisons()
    return render(request, "web/evaluations.html", {**_roles(request), "table": table, "rows": rows,
                                                    "labels": labels, "overall_chart": overall,
                                                    "category_chart": per_category, "compared": compared,
                                                    "comparison_chart": charts.comparison_chart(compared)})
