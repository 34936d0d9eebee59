"""Pages: parse the request, call a selector or one service, render a page or one partial."""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from inftool_web.api.selectors import FilterError, parse_min_score, tool_list
from inftool_web.catalog.selectors import curation_summary
from inftool_web.core.roles import has_role, user_role
from inftool_web.loop.datacard import audit_agreement, data_card_get
from inftool_web.loop.iteration_config import ConfigError
from inftool_web.loop.models import Iteration
from inftool_web.loop.services import iteration_cancel, iteration_launch
from inftool_web.synth.models import Trajectory
from synthesis.mcp_tree.curation import DEFAULT_THRESHOLD

from . import charts, selectors
from .forms import AuditForm, AuditSampleForm, LaunchForm
from .services import audit_record


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
    iterations = list(Iteration.objects.select_related("output_checkpoint").order_by("-number")[:20])
    summaries = selectors.iteration_summaries(iterations)
    running = next((s for s in summaries if s.iteration.is_active), None)
    ctx = {**_roles(request), "summaries": summaries, "running": running,
           "recent": selectors.recent_trajectories(limit=15)}
    if request.htmx:
        return render(request, "web/dashboard.html#iterations", ctx)
    return render(request, "web/dashboard.html", ctx)


@role_required("viewer")
@require_GET
def trajectory_row(request, pk: int):
    t = get_object_or_404(Trajectory.objects.select_related("iteration", "domain"), pk=pk)
    return render(request, "web/partials.html#trajectory_row", {"t": t, "show_iteration": request.GET.get("it") == "1"})


@role_required("viewer")
@require_GET
def trajectory_card(request, pk: int):
    t = get_object_or_404(Trajectory.objects.select_related("domain").prefetch_related("messages"), pk=pk)
    return render(request, "web/partials.html#trajectory_card", {"t": t})


# ------------------------------------------------------------------ iterations
@role_required("viewer")
@require_GET
def iteration_detail(request, pk: int):
    iteration = get_object_or_404(Iteration.objects.select_related("input_checkpoint", "output_checkpoint"), pk=pk)
    summary = selectors.iteration_summaries([iteration])[0]
    ctx = {**_roles(request), "iteration": iteration, "summary": summary}
    if request.htmx:
        return render(request, "web/iteration.html#summary", ctx)
    stats = selectors.iteration_stats(iteration=iteration)
    mode_labels = [selectors.MODE_LABELS[m] for m in selectors.MODES]
    ctx.update(
        live=selectors.live_trajectories(iteration=iteration),
        stats=stats,
        data_card=data_card_get(iteration=iteration),
        charts={
            "score": charts.bar_chart([f"{i / 10:.1f}" for i in range(10)], [("trajectories", stats.score_hist)],
                                      title="Execution-consistency score"),
            "mode_difficulty": charts.share_bars(stats.by_mode_difficulty, parts_names=["easy", "hard"],
                                                 title="Easy / hard by mode"),
            "domain_difficulty": charts.share_bars(stats.by_domain_difficulty, parts_names=["easy", "hard"],
                                                   title="Easy / hard by domain"),
            "tokens": charts.bar_chart(mode_labels, stats.tokens_by_mode, title="Mean tokens per trajectory"),
            "turns": charts.bar_chart(stats.turn_labels, stats.turns_hist, title="Turns per multi-turn conversation"),
            "domains": charts.hbar_chart(stats.per_domain_category, title="Trajectories per domain / category",
                                         width=760),
            "acceptance": charts.bar_chart(mode_labels, stats.acceptance_by_mode, title="Acceptance rate",
                                           value_fmt="{:.0%}", y_max=1.0),
            "repair": charts.bar_chart(mode_labels, stats.repair_by_mode, title="Repair rate",
                                       value_fmt="{:.0%}", y_max=1.0),
        },
    )
    return render(request, "web/iteration.html", ctx)


@role_required("operator")
@require_POST
def iteration_cancel_view(request, pk: int):
    iteration_cancel(iteration=get_object_or_404(Iteration, pk=pk))
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
        t = selectors.trajectory_detail(pk=pk)
    except Trajectory.DoesNotExist:
        raise Http404("No such trajectory") from None
    return render(request, "web/trajectory.html", {
        **_roles(request), "t": t, "rounds": selectors.votes_by_round(t), "audit_form": AuditForm(),
    })


# ------------------------------------------------------------------ tools
@role_required("viewer")
@require_GET
def tools(request):
    q = request.GET.get("q", "")[:200]
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
           "threshold": threshold, "groups": selectors.duplicate_groups(list(page.object_list))}
    if request.htmx:
        return render(request, "web/tools.html#results", ctx)
    ctx["tree"] = selectors.tool_tree()
    # The tree's balance (#20): tools per domain and per category, largest first.
    ctx["balance_domains"] = charts.hbar_chart(
        sorted(((d.name, d.n) for d, _ in ctx["tree"]), key=lambda r: -r[1]), title="Tools per domain")
    ctx["balance_categories"] = charts.hbar_chart(
        sorted(((c.name, c.n) for _, cats in ctx["tree"] for c in cats), key=lambda r: -r[1])[:40],
        title="Tools per category (largest 40)")
    ctx["curation"] = curation_summary(threshold=threshold)
    return render(request, "web/tools.html", ctx)


# ------------------------------------------------------------------ audit
@role_required("reviewer")
@require_GET
def audit(request):
    form = AuditSampleForm(request.GET or None)
    iterations = list(Iteration.objects.order_by("-number"))
    ctx = {**_roles(request), "iterations": iterations, "form": form, "sample": [], "iteration": None}
    if form.is_valid() and form.cleaned_data.get("iteration"):
        iteration = get_object_or_404(Iteration, pk=form.cleaned_data["iteration"])
        size = form.cleaned_data.get("size") or 20
        seed = form.cleaned_data.get("seed") or "1"
        ctx.update(iteration=iteration, size=size, seed=seed,
                   sample=selectors.audit_sample(iteration=iteration, size=size, seed=seed),
                   agreement=audit_agreement(iteration=iteration))
    return render(request, "web/audit.html", ctx)


@role_required("reviewer")
@require_POST
def audit_decide(request, pk: int):
    t = get_object_or_404(Trajectory, pk=pk)
    form = AuditForm(request.POST)
    if not form.is_valid():
        return HttpResponse(f"bad audit: {form.errors.as_text()}", status=400, content_type="text/plain")
    audit_record(trajectory=t, reviewer=request.user, decision=form.cleaned_data["decision"],
                 note=form.cleaned_data["note"])
    if request.htmx:
        t = selectors.trajectory_detail(pk=pk)
        template = "web/audit.html#audit_item" if request.POST.get("from") == "audit" else "web/trajectory.html#audit"
        return render(request, template, {**_roles(request), "t": t, "audit_form": AuditForm(),
                                          "position": request.POST.get("position", "")})
    return redirect(request.POST.get("next") if request.POST.get("next", "").startswith("/")
                    else reverse("web:trajectory", args=[pk]))


# ------------------------------------------------------------------ evaluations
@role_required("viewer")
@require_GET
def evaluations(request):
    table = selectors.evaluation_table()
    labels = [f"{run.checkpoint.name}" + (f" (#{run.iteration.number})" if run.iteration else "")
              for run in table.runs]
    short = [f"#{run.iteration.number}" if run.iteration else run.checkpoint.kind for run in table.runs]
    overall = charts.line_chart(short, [("BFCL overall", [run.overall for run in table.runs])], title="BFCL overall")
    per_category = charts.bar_chart(
        table.categories, [(s, [r.accuracy if r else 0.0 for r in (table.cells[c][i] for c in table.categories)])
                           for i, s in enumerate(short)],
        title="BFCL accuracy per category", value_fmt="{:.0%}", y_max=1.0,
    )
    rows = [(c, table.cells[c]) for c in table.categories]
    return render(request, "web/evaluations.html", {**_roles(request), "table": table, "rows": rows,
                                                    "labels": labels, "overall_chart": overall,
                                                    "category_chart": per_category})
