from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from django.views.defaults import page_not_found

from .health import run_checks


@require_GET
@never_cache
def healthz(request):
    """Readiness of this web process: PostgreSQL and Redis; 503 naming what is down.

    Public on purpose (load balancers and orchestrators call it), so it says only which
    check failed: no versions, host names or error texts, and no worker ping (one per hit
    would fan out to every worker, and a web pod serves pages while workers are away).
    Signed-in staff get the detailed report, Celery workers included.
    """
    detailed = request.user.is_authenticated and request.user.is_staff
    checks = run_checks(check_celery=detailed)
    failing = [c.name for c in checks if not c.ok]
    body: dict = {"status": "ok" if not failing else "down", "failing": failing}
    if detailed:
        body["checks"] = {c.name: c.as_dict() for c in checks}
        if failing:
            body["message"] = "; ".join(f"{c.name}: {c.detail}" for c in checks if not c.ok)
    return JsonResponse(body, status=200 if not failing else 503)


def not_found(request, exception=None):
    """404: JSON under /api/ and /v1/ (what their clients and schema expect), the HTML
    page elsewhere."""
    if request.path.startswith(("/api/", "/v1/")):
        return JsonResponse({"detail": "Not found."}, status=404)
    return page_not_found(request, exception)
