"""One-machine set-up, idempotent: roles, the embedded model, a corpus sample and its MCP tree,
a demo user."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand

from inftool_web.catalog.selectors import tree_state
from inftool_web.core.roles import ensure_role_groups, set_role
from inftool_web.loop.services import checkpoint_register_base

DEMO_USERNAME = "demo"


class Command(BaseCommand):
    help = "Prepare this machine: roles, embedded model checkpoint, API corpus sample and its tree, demo user."

    def add_arguments(self, parser):
        parser.add_argument("--skip-model", action="store_true", help="Do not prepare the embedded model")
        parser.add_argument("--skip-corpus", action="store_true", help="Do not ingest the corpus sample")
        parser.add_argument("--skip-tree", action="store_true", help="Do not build the MCP tree")
        parser.add_argument("--skip-demo-user", action="store_true")

    def handle(self, *args, skip_model, skip_corpus, skip_tree, skip_demo_user, **options):
        ensure_role_groups()
        if not skip_model:
            self._prepare_model()
        if not skip_corpus:
            call_command("ingest_openapi", sample=True, stdout=self.stdout, stderr=self.stderr)
        if not skip_tree:
            self._tree()
        if not skip_demo_user:
            self._demo_user()

    def _prepare_model(self) -> None:
        ckpt = checkpoint_register_base()
        self.stdout.write(f"[inftool] embedded model ready: {ckpt.path}")

    def _tree(self) -> None:
        """Build the MCP tree when stored tools are in none (a fresh set-up, or tools stored
        since), so the Tools page has a tree on the first ``make run``; otherwise keep it."""
        state = tree_state()
        if not state.needs_build:
            self.stdout.write(f"[inftool] MCP tree ready: {state.domains} domains over {state.tools} tools"
                              if state.tools else "[inftool] no tools stored: no MCP tree to build")
            return
        # The LLM judge of borderline duplicate pairs is left out here: on the embedded model
        # it adds minutes to set-up for a few pairs; `manage.py build_tree` runs it.
        call_command("build_tree", no_judge=True, stdout=self.stdout, stderr=self.stderr)
        self.stdout.write(f"[inftool] MCP tree built: {tree_state().domains} domains")

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
