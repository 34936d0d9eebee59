"""In the browser: log-in, live trajectories over the websocket, the audit keyboard flow, launching."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from playwright.sync_api import expect

from inftool_web.core.events import DASHBOARD_GROUP, iteration_group, send_now
from inftool_web.core.roles import set_role
from inftool_web.loop.iterations import iteration_cancel
from inftool_web.loop.models import Iteration
from inftool_web.synth.models import Message, Trajectory
from tests.factories import IterationFactory, TrajectoryFactory, UserFactory, conversation

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def user_with(role: str):
    user = UserFactory()
    set_role(user, role)
    return user


def send(group: str, event: dict) -> None:
    """``send_now`` from a thread of its own: this one runs Playwright's event loop."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(send_now, group, event).result()


def trajectory_event(t: Trajectory) -> dict:
    return {"kind": "trajectory", "id": t.pk, "iteration": t.iteration_id, "seq": t.seq, "mode": t.mode,
            "status": t.status, "verdict": t.verdict, "score": t.score, "difficulty": t.difficulty}


def test_login_and_logout(page, login, live_server_url):
    login(user_with("viewer"))
    expect(page.locator("h1")).to_have_text("Dashboard")
    page.click("text=Log out")
    page.wait_for_url("**/accounts/login/")
    page.goto(f"{live_server_url}/tools/")
    page.wait_for_url("**/accounts/login/?next=/tools/")


def test_bad_password_is_refused(page, live_server_url):
    user = user_with("viewer")
    page.goto(f"{live_server_url}/accounts/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", "wrong-password")
    page.click("button[type=submit]")
    expect(page.locator("[role=alert]")).to_contain_text("did not match")


def test_a_trajectory_and_its_steps_appear_live(page, login, live_server_url):
    it = IterationFactory(status="synthesizing", config={"count": 5})
    login(user_with("viewer"))
    page.goto(f"{live_server_url}/iterations/{it.pk}/")
    expect(page.locator("[data-live].ws-open")).to_have_count(1)

    t = TrajectoryFactory(iteration=it, mode="multi_turn", status="running")
    send(iteration_group(it.pk), trajectory_event(t))
    card = page.locator(f"#live-t-{t.pk}")
    expect(card).to_be_visible()
    expect(card.locator(".status")).to_have_text("running")

    Message.objects.create(trajectory=t, index=0, role="user", agent="user_simulator",
                           content="Book <b>two</b> seats <script>window.pwned=1</script>")
    send(iteration_group(it.pk), {"kind": "step", "trajectory": t.pk, "index": 0, "role": "user",
                                      "agent": "user_simulator",
                                      "content": "Book <b>two</b> seats <script>window.pwned=1</script>",
                                      "tool_calls": []})
    step = card.locator('.msg[data-index="0"]')
    expect(step).to_contain_text("Book <b>two</b> seats")  # shown as text, not markup
    call = {"id": "c1", "type": "function", "function": {"name": "book_seats", "arguments": json.dumps({"n": 2})}}
    Message.objects.create(trajectory=t, index=1, role="assistant", agent="tool_agent", tool_calls=[call])
    send(iteration_group(it.pk), {"kind": "step", "trajectory": t.pk, "index": 1, "role": "assistant",
                                      "agent": "tool_agent", "content": "", "tool_calls": [call]})
    expect(card.locator('.msg[data-index="1"] .call-name')).to_have_text("book_seats")
    assert page.evaluate("window.pwned") is None

    t.status, t.verdict, t.score, t.difficulty = "done", "accepted", 0.42, "hard"
    t.save()
    send(iteration_group(it.pk), trajectory_event(t))
    expect(card.locator(".status")).to_have_text("done")
    expect(page.locator(f"#live-t-{t.pk} .badge.d-hard")).to_have_text("hard")
    expect(page.locator("#summary .stat").first).to_contain_text("1")


def test_dashboard_lists_new_trajectories_live(page, login, live_server_url):
    it = IterationFactory(status="synthesizing", config={"count": 5})
    login(user_with("viewer"))
    expect(page.locator("[data-live].ws-open")).to_have_count(1)
    t = TrajectoryFactory(iteration=it, mode="parallel", status="done", verdict="accepted", difficulty="easy",
                          score=0.9)
    send(DASHBOARD_GROUP, trajectory_event(t))
    row = page.locator(f"#row-t-{t.pk}")
    expect(row).to_be_visible()
    expect(row).to_contain_text("parallel")
    expect(page.locator("#iterations")).to_contain_text(f"#{it.number}")


def test_audit_with_the_keyboard_changes_the_export(page, login, live_server_url):
    it = IterationFactory(status="succeeded")
    rejected = TrajectoryFactory(iteration=it, status="done", verdict="rejected", difficulty="easy", score=0.8,
                                 offered_tools=[{"name": "get_weather", "inputSchema": {"type": "object"}}])
    conversation(rejected)
    login(user_with("reviewer"))
    export_url = f"{live_server_url}/api/exports/openai/?iteration={it.pk}"
    assert page.request.get(export_url).text() == ""

    page.goto(f"{live_server_url}/audit/?iteration={it.pk}&size=5&seed=1")
    item = page.locator(f"#audit-{rejected.pk}")
    expect(item).to_have_class("card audit-item current")
    page.keyboard.press("a")
    expect(page.locator(f"#audit-{rejected.pk} .badge.audit")).to_have_text("audit: accept")
    lines = page.request.get(export_url).text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["messages"][1]["content"] == "Weather in Paris?"

    page.fill(f"#audit-{rejected.pk} input[name=note]", "on second thought, no")
    page.click(f"#audit-{rejected.pk} button[value=reject]")
    expect(page.locator(f"#audit-{rejected.pk}")).to_contain_text("on second thought, no")
    assert page.request.get(export_url).text() == ""
    rejected.refresh_from_db()
    assert rejected.audit_decision == "reject" and rejected.audits.count() == 2


def test_launch_an_iteration_from_the_form(page, login, live_server_url):
    login(user_with("operator"))
    page.click("text=Launch an iteration")
    page.wait_for_url("**/iterations/new/")
    page.fill("input[name=count]", "0")
    page.click("button:has-text('Launch')")
    expect(page.locator(".field.has-error")).to_contain_text("must be an integer from 1 to 100000")
    page.fill("input[name=name]", "from the browser")
    page.fill("input[name=count]", "3")
    page.select_option("select[name=profile]", "none")
    page.click("button:has-text('Launch')")
    page.wait_for_url("**/iterations/*/")
    it = Iteration.objects.get(name="from the browser")
    assert page.url.endswith(f"/iterations/{it.pk}/") and it.config["count"] == 3
    expect(page.locator("h1")).to_contain_text(f"Iteration #{it.number}")
    iteration_cancel(iteration=it)  # nothing of this test should keep a worker busy
