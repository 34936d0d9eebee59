from csp.decorators import csp_update
from django.templatetags.static import static
from django.utils.decorators import method_decorator
from drf_spectacular.views import SpectacularSwaggerSplitView


# Swagger UI styles its widgets inline; its script comes from ?script (the split view), so
# script-src stays 'self' here too.
@method_decorator(csp_update({"style-src": ["'unsafe-inline'"]}), name="get")
class SwaggerDocsView(SpectacularSwaggerSplitView):
    """Swagger UI served from the vendored sidecar assets: nothing loads from a CDN, and no
    inline script (the Content-Security-Policy allows none)."""

    @staticmethod
    def _swagger_ui_resource(filename):
        return static(f"drf_spectacular_sidecar/swagger-ui-dist/{filename}")

    @staticmethod
    def _swagger_ui_favicon():
        return static("drf_spectacular_sidecar/swagger-ui-dist/favicon-32x32.png")
