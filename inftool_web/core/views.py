from django.http import JsonResponse
from django.views.decorators.http import require_GET

from .health import run_checks


@require_GET
def healthz(request):
    """Status of the database, Redis and Celery workers; 503 naming what is down.

    Public on purpose (load balancers and orchestrators call it) and it reveals no data.
    """
    checks = run_checks()
    failing = [c.name for c in checks if not c.ok]
    body = {
        "status": "ok" if not failing else "down",
        "failing": failing,
        "checks": {c.name: c.as_dict() for c in checks},
    }
    if failing:
        body["message"] = "; ".join(f"{c.name}: {c.detail}" for c in checks if not c.ok)
    return JsonResponse(body, status=200 if not failing else 503)
