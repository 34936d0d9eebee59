"""`manage.py setup_local` (run by `make setup`) leaves a built MCP tree on the corpus
sample it ingests, so the first `make run` shows a tree; run again, it keeps it."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.utils.html import escape

from inftool_web.catalog.models import Tool, TreeNode
from inftool_web.catalog.selectors import tree_state
from tests.factories import ToolFactory

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def _setup() -> str:
    out = io.StringIO()
    call_command("setup_local", "--skip-model", "--skip-demo-user", stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_setup_builds_the_tree_once_and_again_only_for_new_tools(client):
    assert tree_state().needs_build is False  # nothing stored: nothing to build
    first = _setup()
    state = tree_state()
    assert state.tools > 0 and state.domains > 0 and state.unplaced == 0
    assert "MCP tree built" in first
    nodes = sorted(TreeNode.objects.values_list("pk", flat=True))
    placed = dict(Tool.objects.values_list("pk", "domain_id"))

    second = _setup()  # idempotent: the tree stays as it is
    assert "MCP tree ready" in second and "MCP tree built" not in second
    assert sorted(TreeNode.objects.values_list("pk", flat=True)) == nodes
    assert dict(Tool.objects.values_list("pk", "domain_id")) == placed

    ToolFactory(description="Send a text message to a phone number.")  # stored since: in no domain
    assert tree_state().needs_build
    assert "MCP tree built" in _setup()
    assert tree_state().unplaced == 0

    # the Tools page lists the domains (what a fresh `make run` shows)
    from django.contrib.auth import get_user_model

    from inftool_web.core.roles import set_role

    user = get_user_model().objects.create_user("viewer-setup", password="pw-for-tests-123")
    set_role(user, "viewer")
    client.force_login(user)
    page = client.get("/tools/").content.decode()
    assert "No tree built yet" not in page
    assert escape(TreeNode.objects.filter(level="domain").first().name) in page
