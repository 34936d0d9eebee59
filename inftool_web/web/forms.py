from __future__ import annotations

import dataclasses

from django import forms

from inftool_web.catalog.selectors import domain_list
from inftool_web.loop.iteration_config import (
    BACKENDS,
    MODES,
    PROFILES,
    ROLES,
    SUBSETS,
    ConfigError,
    IterationConfig,
)
from inftool_web.synth.models import AuditDecision

_FIELDS = {f.name: f for f in dataclasses.fields(IterationConfig)}
_DEFAULTS = IterationConfig()


def _help(name: str) -> str:
    return _FIELDS[name].metadata.get("help", "")


class LaunchForm(forms.Form):
    """The launch form's fields map onto ``IterationConfig``; its checks are the only checks."""

    name = forms.CharField(required=False, max_length=200)
    count = forms.IntegerField(initial=_DEFAULTS.count, help_text=_help("count"))
    domains = forms.MultipleChoiceField(required=False, help_text=_help("domains"),
                                        widget=forms.CheckboxSelectMultiple)
    verifiers = forms.IntegerField(initial=_DEFAULTS.verifiers, help_text=_help("verifiers"))
    negotiation_rounds = forms.IntegerField(initial=_DEFAULTS.negotiation_rounds, help_text=_help("negotiation_rounds"))
    max_turns = forms.IntegerField(initial=_DEFAULTS.max_turns, help_text=_help("max_turns"))
    hard_threshold = forms.FloatField(initial=_DEFAULTS.hard_threshold, help_text=_help("hard_threshold"))
    profile = forms.ChoiceField(choices=[(p, p) for p in PROFILES], initial=_DEFAULTS.profile, help_text=_help("profile"))
    eval_subset = forms.ChoiceField(
        required=False, initial=_DEFAULTS.eval_subset, help_text=_help("eval_subset"), label="BFCL subset",
        choices=[(name, f"{name} (BFCL mini)") for name in SUBSETS] + [("", "the whole of BFCL V3")])
    eval_limit = forms.IntegerField(required=False, initial=_DEFAULTS.eval_limit,
                                    help_text="BFCL items per category; leave empty for all.")
    seed = forms.IntegerField(initial=_DEFAULTS.seed, help_text=_help("seed"))
    iterations = forms.IntegerField(required=False, initial=_DEFAULTS.iterations, help_text=_help("iterations"))

    MODE_FIELDS = [f"mode_{m}" for m in MODES]
    ROLE_FIELDS = [(r, f"backend_{r}", f"base_url_{r}", f"model_{r}") for r in ROLES]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["domains"].choices = [(d, d) for d in domain_list().values_list("name", flat=True)]
        for m in MODES:
            self.fields[f"mode_{m}"] = forms.FloatField(
                label=m.replace("_", "-"), initial=_DEFAULTS.modes.get(m, 0), min_value=None)
        for role in ROLES:
            self.fields[f"backend_{role}"] = forms.ChoiceField(
                label=role, required=False, choices=[("", "default")] + [(b, b) for b in BACKENDS])
            self.fields[f"base_url_{role}"] = forms.CharField(label="base URL", required=False, max_length=500)
            self.fields[f"model_{role}"] = forms.CharField(label="model", required=False, max_length=200)

    def data_fields(self):
        return [self[f] for f in ("name", "count", "verifiers", "negotiation_rounds", "max_turns", "hard_threshold", "seed")]

    def train_fields(self):
        return [self["profile"], self["eval_subset"], self["eval_limit"], self["iterations"]]

    def mode_fields(self):
        return [self[f] for f in self.MODE_FIELDS]

    def role_rows(self):
        return [(r, self[b], self[u], self[m]) for r, b, u, m in self.ROLE_FIELDS]

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        backends = {}
        for role, b, u, m in self.ROLE_FIELDS:
            if data.get(b):
                spec = {"backend": data[b]}
                if data.get(u):
                    spec["base_url"] = data[u]
                if data.get(m):
                    spec["model"] = data[m]
                backends[role] = spec
        config = {
            "count": data["count"],
            "modes": {m: data[f"mode_{m}"] for m in MODES},
            "domains": list(data.get("domains") or []),
            "backends": backends,
            "verifiers": data["verifiers"],
            "negotiation_rounds": data["negotiation_rounds"],
            "max_turns": data["max_turns"],
            "hard_threshold": data["hard_threshold"],
            "profile": data["profile"],
            "eval_subset": data.get("eval_subset") or "",
            "eval_limit": data.get("eval_limit"),
            "seed": data["seed"],
            "iterations": 1 if data.get("iterations") is None else data["iterations"],
        }
        try:
            IterationConfig.from_dict(config)
        except ConfigError as exc:
            for key, message in exc.errors.items():
                target = {"modes": None, "backends": None, "config": None}.get(key, key)
                self.add_error(target if target in self.fields else None,
                               message if target in self.fields else f"{key}: {message}")
        data["config"] = config
        return data


class AuditForm(forms.Form):
    decision = forms.ChoiceField(choices=AuditDecision.Decision.choices)
    note = forms.CharField(required=False, max_length=5000, widget=forms.Textarea(attrs={"rows": 2}))


class AuditSampleForm(forms.Form):
    iteration = forms.IntegerField(required=False)
    size = forms.IntegerField(min_value=1, max_value=500, initial=20, required=False)
    seed = forms.CharField(max_length=40, initial="1", required=False)
