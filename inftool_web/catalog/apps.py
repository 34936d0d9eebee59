from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "inftool_web.catalog"
    label = "catalog"
    verbose_name = "API sources, tools and the MCP tree"
