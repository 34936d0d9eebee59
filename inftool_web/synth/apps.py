from django.apps import AppConfig


class SynthConfig(AppConfig):
    name = "inftool_web.synth"
    label = "synth"
    verbose_name = "Personas, trajectories and their verification"
