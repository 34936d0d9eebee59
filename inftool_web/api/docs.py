from django.templatetags.static import static
from drf_spectacular.views import SpectacularSwaggerView


class SwaggerDocsView(SpectacularSwaggerView):
    """Swagger UI served from the vendored sidecar assets: nothing loads from a CDN."""

    @staticmethod
    def _swagger_ui_resource(filename):
        return static(f"drf_spectacular_sidecar/swagger-ui-dist/{filename}")

    @staticmethod
    def _swagger_ui_favicon():
        return static("drf_spectacular_sidecar/swagger-ui-dist/favicon-32x32.png")
