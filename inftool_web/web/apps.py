from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "inftool_web.web"
    label = "web"
    verbose_name = "InfTool pages"
