"""One-machine set-up, idempotent: roles, the embedded model, a corpus sample, a demo user."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand

from inftool_web.core.roles import ensure_role_groups, set_role
from inftool_web.loop.services import checkpoint_register_base

DEMO_USERNAME = "demo"


class Command(BaseCommand):
    help = "Prepare this machine: roles, embedded model checkpoint, API corpus sample, demo user."

    def add_arguments(self, parser):
        parser.add_argument("--skip-model", action="store_true", help="Do not prepare the embedded model")
        parser.add_argument("--skip-corpus", action="store_true", help="Do not ingest the corpus sample")
        parser.add_argument("--skip-demo-user", action="store_true")

    def handle(self, *args, skip_model, skip_corpus, skip_demo_user, **options):
        ensure_role_groups()
        if not skip_model:
            self._prepare_model()
        if not skip_corpus:
            call_command("ingest_openapi", sample=True, stdout=self.stdout, stderr=self.stderr)
        if not skip_demo_user:
            self._demo_user()

    def _prepare_model(self) -> None:
        ckpt = checkpoint_register_base()
        self.stdout.write(f"[inftool] embedded model ready: {ckpt.path}")

    def _demo_user(self) -> None:
        # The password lives under var/ so that it stays the same across runs of `make run`.
        secret_file = settings.INFTOOL_VAR_DIR / "demo-password.txt"
        secret_file.parent.mkdir(parents=True, exist_ok=True)
        if secret_file.exists():
            password = secret_file.read_text().strip()
        else:
            password = secrets.token_urlsafe(12)
            secret_file.write_text(password + "\n")
            secret_file.chmod(0o600)
        User = get_user_model()
        user, _ = User.objects.get_or_create(username=DEMO_USERNAME, defaults={"email": "demo@localhost"})
        user.set_password(password)
        user.is_staff = True
        user.save()
        set_role(user, "operator")
        self.stdout.write(
            self.style.SUCCESS(f"[inftool] demo operator: username {DEMO_USERNAME}  password {password}")
        )
