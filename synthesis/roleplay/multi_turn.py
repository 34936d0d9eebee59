"""Multi-turn conversations: User Simulator, Tool Agent (MCP client), MCP Server Simulator.

The scenario is a plan of 1..n reference calls (arguments drawn like single-turn reference
calls) and a goal written from the user's side; the plan's argument values become the
details the user knows.  Each turn the User Simulator (persona + goal + the details not
yet shared) writes a message under a schema with ``goal_met``; the Tool Agent then takes up
to ``max_agent_hops`` steps (tool calls executed by the server simulator, or a text reply
that asks for missing values or answers).  The conversation ends when the user says the
goal is met or after ``max_turns`` user turns.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from typing import Any

from synthesis.llm.base import ChatRequest, ChatResult, ToolCall
from synthesis.schema_utils import is_id_key, validation_errors

from . import phrasing, prompts
from .agent import agent_step, answer_check, assistant_message, execute_calls, rpc_ids_used
from .config import RoleplayConfig
from .phrasing import CHANGE_WORDS, DELETE_VERBS, STATE_CHANGING_VERBS
from .reflection import Problem
from .runtime import Gen, ask_first, parse_json_reply, rng_for, seed_for
from .scoring import Score, call_set_agreement, execution_consistency, multi_turn_ignore_key
from .server_sim import ServerSimulator, verb_of
from .single_turn import (
    MIN_REWRITE_OVERLAP,
    finish,
    finish_rejected_by_reflection,
    pick_persona,
    reference_call,
)
from .steps import FinishStep, MessageStep, Persona, ScenarioStep, StepLog, TrajectorySpec
from .values import implausible_arguments, is_request, overlap, query_problems
from .verify import (
    answer_problems,
    multi_turn_transcript,
    ungrounded_values,
    value_coverage,
    verify,
)

_CREATE_VERBS = {
    "create",
    "add",
    "new",
    "book",
    "place",
    "register",
    "open",
    "make",
    "start",
    "submit",
    "post",
    "insert",
}


class RoleplayError(RuntimeError):
    """A conversation cannot go on (e.g. the User Simulator keeps writing nothing)."""


def plan_tools(spec: TrajectorySpec, cfg: RoleplayConfig) -> list[dict[str, Any]]:
    by_name = {t["name"]: t for t in spec.tools}
    if spec.target_tools:
        return [by_name[n] for n in spec.target_tools]
    rng = rng_for(spec.seed, "plan")
    k = min(len(spec.tools), rng.randint(cfg.multi_turn_min_calls, cfg.multi_turn_max_calls))
    chosen = rng.sample(spec.tools, k)
    # Creating comes before using what was created.
    return sorted(chosen, key=lambda t: 0 if verb_of(t["name"]) in _CREATE_VERBS else 1)


def user_facts(calls: list[dict[str, Any]]) -> dict[str, Any]:
    """What the user knows: the plan's argument values (identifiers of later calls are
    left out: the server assigns them during the conversation)."""
    facts: dict[str, Any] = {}
    for i, c in enumerate(calls):
        for k, v in (c.get("arguments") or {}).items():
            if i > 0 and is_id_key(k):
                continue
            key = k if k not in facts or facts[k] == v else f"{k} (for {c['name']})"
            facts[key] = v
    return facts


def build_scenario(spec: TrajectorySpec, cfg: RoleplayConfig) -> Gen[ScenarioStep]:
    persona = pick_persona(spec)
    tools = plan_tools(spec, cfg)
    names = tuple(t["name"] for t in spec.tools)
    calls: list[dict[str, Any]] = []
    notes = []
    for i, tool in enumerate(tools):
        call, n = yield from reference_call(
            persona,
            tool,
            cfg,
            nth=i + 1,
            total=len(tools),
            previous=calls,
            seed=seed_for(spec.seed, "ref", i),
            tool_names=names,
        )
        calls.append(call)
        notes.append(n)
    req = ChatRequest(
        messages=prompts.goal_messages(persona, calls),
        json_schema=prompts.GOAL_SCHEMA,
        temperature=cfg.scenario_temperature,
        max_tokens=cfg.scenario_max_tokens,
        seed=seed_for(spec.seed, "goal"),
    )
    reply = yield from ask_first("scenario", req)
    try:
        goal = " ".join(str(parse_json_reply(reply).get("goal", "")).split())
    except Exception:
        goal = ""
    # The goal steers every user turn: a junk one (a request line, a tool name) is replaced
    # by a plain statement of the plan.
    goal_problems = query_problems(goal, names) if goal else ["empty"]
    coverage, missing = value_coverage(goal, calls)
    if goal and coverage < 1.0:
        goal_problems.append("mentions too few of the planned values (missing: " + ", ".join(missing[:4]) + ")")
    plain = plain_goal(calls, spec.tools)
    if goal and overlap(goal, plain) < MIN_REWRITE_OVERLAP:
        goal_problems.append("is not about the planned calls")
    if goal and not re.search(r"\b(i|i'd|i'm|i've|my|me)\b", goal, re.I):
        goal_problems.append("is not the user's own goal (first person)")
    made_up = phrasing.new_values(goal, plain) if goal else []
    if made_up:
        goal_problems.append("adds values the plan does not have: " + ", ".join(made_up[:4]))
    source = "model"
    if goal_problems:
        goal, source = plain, "plain"
    return ScenarioStep(
        mode="multi_turn",
        persona=persona.to_dict(),
        tools=spec.tools,
        goal=goal,
        reference_calls=calls,
        user_facts=user_facts(calls),
        meta={
            "reference": notes,
            "tool_group": spec.tool_group,
            "goal": {"source": source, "rejected": goal_problems},
        },
    )


def plain_goal(calls: list[dict[str, Any]], tools: list[dict[str, Any]], rng: random.Random | None = None) -> str:
    """``I want to create an order with item tea and quantity 2, then get the order.``"""
    rng = rng or random.Random(0)
    by_name = {t["name"]: t for t in tools}
    parts = []
    for i, c in enumerate(calls):
        action = phrasing.action_phrase(by_name.get(c["name"]) or {"name": c["name"]})
        args = {k: v for k, v in (c.get("arguments") or {}).items() if not (i > 0 and is_id_key(k))}
        parts.append(phrasing.describe_call(action, args, rng))
    return "I want to " + ", then ".join(parts) + "."


_CLOSING_RX = re.compile(r"\b(thanks?|thank you|thx|cheers|great|perfect|appreciate|that'?s (all|everything|it)|got it|"
                         r"all set|awesome|wonderful|excellent|brilliant|nice)\b", re.I)


def _fact_key(key: str) -> str:
    return key.split(" (for ", 1)[0]


def plain_user_message(
    scenario: ScenarioStep,
    hidden: dict[str, Any],
    transcript: list[tuple[str, str]],
    pending: Sequence[dict[str, Any]] = (),
) -> tuple[str, bool]:
    """The user's turn without a model: the goal first (with a detail or two), in the
    persona's register, then the details asked for, then the part of the goal still
    ``pending`` (planned calls not made), then thanks."""
    rng = random.Random(len(transcript) * 7919 + len(hidden))
    style = str((scenario.persona or {}).get("style", ""))
    if not transcript:
        calls = scenario.reference_calls
        action = phrasing.action_phrase(_tool_of(scenario, calls[0]["name"])) if calls else "get some help"
        # Only the first step's details: "get the homepage experience, with vendor spotify"
        # (the vendor of a later delete) had the agent make that delete at once.
        own = _step_facts(hidden, calls[0]) if calls else hidden
        first = {_fact_key(k): v for k, v in list(own.items())[:2]}
        return phrasing.opening(phrasing.describe_call(action, first, rng), style, rng), False
    if hidden and pending:
        # The details of the step at hand: a value of a later step, given now, is a request
        # for that step before its turn (the agent took "and the vendor is spotify" as one).
        # A step at hand that needs none of them is asked for instead (below).
        hidden = _step_facts(hidden, pending[0])
    if hidden:
        parts = []
        for k, v in hidden.items():
            key = _fact_key(k)
            noun = phrasing.humanize(key).lower()
            if is_id_key(key):
                noun = phrasing._id_noun(key) or "ID"
            kind, phrase = phrasing.clause(key, v, rng)
            parts.append(phrase if kind == "prep" and not is_id_key(key) else f"the {noun} is {phrasing.spoken(v)}")
        return rng.choice(["Sure: ", "Of course: ", "Sure, ", "Right: "]) + phrasing._join(parts, rng) + ".", False
    if pending:
        action = phrasing.action_phrase(_tool_of(scenario, pending[0]["name"]))
        return rng.choice(["Could you also {a}?", "Now please {a}.", "And can you {a} as well?"]).format(a=action), False
    return rng.choice(["Thanks, that's everything I needed.", "Perfect, thank you!", "Great, thanks for your help.",
                       "That's all, thanks."]), True


def _tool_of(scenario: ScenarioStep, name: str) -> dict[str, Any]:
    return next((t for t in scenario.tools if t["name"] == name), {"name": name})


# Words a person uses to ask for something to go.
_REMOVE_WORDS = DELETE_VERBS | {"erase", "clear", "purge", "wipe", "rid", "terminate", "kill", "revoke", "deactivate"}


def _forms(verbs: set[str] | frozenset[str]) -> frozenset[str]:
    """``verbs`` and their common inflections (removes, created, stopping)."""
    return frozenset(f for v in verbs for f in (v, v + "s", v + "d", v + "ed", v + "es", v + "ing", v[:-1] + "ing",
                                                v + v[-1] + "ed", v + v[-1] + "ing"))


_CHANGE_FORMS, _REMOVE_FORMS = _forms(CHANGE_WORDS), _forms(_REMOVE_WORDS)


def _says_change(text: str, forms: frozenset[str] = _CHANGE_FORMS) -> bool:
    """Whether ``text`` uses one of ``forms`` (by default, any verb of changing something).

    >>> _says_change("Could you remove my export?"), _says_change("I'm creating a list"), _says_change("Show my order")
    (True, True, False)
    >>> _says_change("Create a deployment for environment ZE2D", _REMOVE_FORMS)
    False
    """
    return not forms.isdisjoint(re.findall(r"[a-z]+", text.lower()))


def _values(call: dict[str, Any]) -> list[Any]:
    return [v for v in (call.get("arguments") or {}).values()
            if not isinstance(v, bool | dict | list) and v not in (None, "")]


def _own_values(calls: Sequence[dict[str, Any]], k: int) -> dict[str, Any]:
    """Call ``k``'s arguments whose values no other call of ``calls`` has (a service id
    that every step of a plan names tells nothing about which step the user asks for)."""
    others = {str(v) for j, c in enumerate(calls) if j != k for v in _values(c)}
    return {key: v for key, v in (calls[k].get("arguments") or {}).items() if str(v) not in others}


_ANY_WORD = 1e-9  # asks_for's min_overlap where one word of what a call acts on is enough


def asks_for(text: str, call: dict[str, Any], tool: dict[str, Any], min_overlap: float = 0.5) -> bool:
    """Whether ``text`` (what the user said) asks for ``call``: it gives one of the call's
    values, or names what the call acts on (half the content words of its
    :func:`phrasing.action_phrase` after the verb) and, for a call that changes something,
    asks for a change (for one that deletes, for something to go).  (Pass the call with
    only its :func:`_own_values` where other calls share its values.)  ``min_overlap``: the
    share of those content words the text must use (a read outside the plan needs one).

    >>> tool = {"name": "deleteMusicPreferencesExport", "description": "Delete the music preferences export."}
    >>> asks_for("Please remove my music preferences export.", {"name": tool["name"], "arguments": {}}, tool)
    True
    >>> asks_for("Can you get the suggested playspace container?", {"name": tool["name"], "arguments": {}}, tool)
    False
    >>> asks_for("What is in my music preferences export?", {"name": tool["name"], "arguments": {}}, tool)
    False
    >>> asks_for("Could you add tea to my basket?", {"name": "add_item", "arguments": {"item": "tea"}},
    ...          {"name": "add_item", "description": "Add an item."})
    True
    """
    if any(phrasing.mentions(text, v) for v in _values(call)):
        return True
    action = phrasing.action_phrase(tool).split(" ", 1)
    if overlap(text, action[-1]) < min_overlap:
        return False
    verb = verb_of(str(tool.get("name", "")))
    if verb in DELETE_VERBS:
        return _says_change(text, _REMOVE_FORMS)
    return verb not in STATE_CHANGING_VERBS or _says_change(text)


def _step_facts(facts: dict[str, Any], step: dict[str, Any]) -> dict[str, Any]:
    """The user facts (:func:`user_facts` keys) that are arguments of ``step``."""
    return {k: v for k, v in facts.items() if _fact_key(k) in (step.get("arguments") or {})
            and (k == _fact_key(k) or k.endswith(f"(for {step['name']})"))}


def _unrevealed(facts: dict[str, Any], said: str) -> dict[str, Any]:
    return {k: v for k, v in facts.items() if not phrasing.mentions(said, v)}


def user_turn(
    persona: Persona,
    scenario: ScenarioStep,
    transcript: list[tuple[str, str]],
    cfg: RoleplayConfig,
    *,
    seed: int,
    pending: Sequence[dict[str, Any]] = (),
) -> Gen[tuple[str, bool, dict[str, Any]]]:
    """The user's next turn: the model's, checked, else a plain one.  ``pending`` are the
    planned calls the agent has not made: while any is left the user does not close (a
    person whose goal is half done asks for the rest)."""
    said = " ".join(t for who, t in transcript if who == "user")
    hidden = _unrevealed(scenario.user_facts, said)
    meta: dict[str, Any] = {}
    backend_failures = 0
    # The opening asks for the plan's first step: the agent follows the user's order, and a
    # user who opens with the second step leaves the agent to make the first unasked.
    calls = scenario.reference_calls
    first = {**calls[0], "arguments": _own_values(calls, 0)} if calls and not transcript else None
    first_tool = _tool_of(scenario, first["name"]) if first else None
    first_step = phrasing.action_phrase(first_tool) if first_tool else ""
    for attempt in range(1 + cfg.max_repair_attempts):
        req = ChatRequest(
            messages=prompts.user_sim_messages(
                persona, scenario.goal, scenario.user_facts, hidden, transcript, first_step=first_step
            ),
            json_schema=prompts.USER_TURN_SCHEMA,
            temperature=cfg.user_temperature,
            max_tokens=cfg.user_max_tokens,
            seed=seed + attempt,
        )
        reply = yield from ask_first("user", req)
        try:
            obj = parse_json_reply(reply)
            text = " ".join(str(obj.get("message", "")).split())
            goal_met = bool(obj.get("goal_met")) and bool(transcript)
        except Exception as e:
            meta.setdefault("errors", []).append(str(e)[:200])
            backend_failures += reply.finish_reason == "error"
            continue
        problems = query_problems(text, tuple(t["name"] for t in scenario.tools))
        if goal_met:
            # A closing turn is a short thanks, still in the user's voice.
            problems = [p for p in problems if p != "fewer than three words"]
            if len(text.split()) > 25 or not _CLOSING_RX.search(text):
                problems.append("a closing turn is a short thanks")
            if pending:
                problems.append("closes before the goal is done (the agent has not done everything it needs)")
        elif transcript and text and len(_unrevealed(hidden, text)) == len(hidden):
            # A later turn gives what was asked for, or at least stays on the goal.
            said_before = " ".join(t for _, t in transcript[-2:])
            if overlap(text, scenario.goal + " " + said_before) == 0:
                problems.append("strays from the goal")
        made_up = phrasing.new_values(text, scenario.goal + " " + phrasing.details(scenario.user_facts) + " " + " ".join(
            t for _, t in transcript) + " " + " ".join(f"{k} {phrasing.spoken(v)}" for k, v in scenario.user_facts.items()))
        if made_up:
            problems.append("mentions values the user does not have: " + ", ".join(made_up[:4]))
        if not goal_met and text:
            if not transcript and not is_request(text):
                problems.append("asks for nothing (the opening turn must make the request)")
            # The user is there to pursue the goal: the opening turn states it with at
            # least one of its details (else it is a simulator's ramble).
            opening_facts = _step_facts(hidden, calls[0]) if calls else hidden
            if not transcript and opening_facts and len(_unrevealed(opening_facts, text)) == len(opening_facts):
                problems.append("shares none of the first step's details")
            if first is not None and not asks_for(text, first, first_tool):
                problems.append(f"does not start with the goal's first step ({first_step})")
            if transcript and scenario.reference_calls and not pending:
                # The agent has done the whole goal: what is left is to thank it (not "1 month
                # ago, I'm happy with my travel experience, but I'd like to do something more
                # meaningful ...", which the agent can only answer by repeating itself).
                problems.append("the goal is done: the user closes")
            if transcript and pending and not hidden and not any(
                asks_for(text, {**c, "arguments": _own_values(pending, j)}, _tool_of(scenario, c["name"]))
                for j, c in enumerate(pending)
            ):
                # Nothing left to give and part of the goal left to do: the user asks for it
                # (not "The interface is extremely unpolished. You need to improve it.").
                actions = "; ".join(phrasing.action_phrase(_tool_of(scenario, c["name"])) for c in pending[:2])
                problems.append(f"asks for none of what is left of the goal ({actions})")
        if text and not problems:
            if attempt:
                meta["attempts"] = attempt + 1
            return text, goal_met, meta
        meta.setdefault("rejected", []).append({"message": text[:300], "problems": problems or ["empty"]})
    if backend_failures == 1 + cfg.max_repair_attempts:
        # The model server failed every time (down, or answering garbage): the trajectory
        # fails naming it, rather than going on with made-up turns to a rejection.
        raise RoleplayError(
            f"the User Simulator's backend failed on all {backend_failures} attempts: {meta['errors'][-1]}"
        )
    # No usable message from the model: the plain one keeps the conversation going.
    text, goal_met = plain_user_message(scenario, hidden, transcript, pending)
    meta["source"] = "plain"
    return text, goal_met, meta


def multi_turn_conversation(
    spec: TrajectorySpec, cfg: RoleplayConfig, log: StepLog
) -> Gen[FinishStep]:
    scenario: ScenarioStep | None = log.take(ScenarioStep)
    if scenario is None:
        scenario = log.emit((yield from build_scenario(spec, cfg)))
    persona = Persona.from_dict(scenario.persona)
    tools = scenario.tools
    server = ServerSimulator(
        tools,
        seed=spec.seed,
        use_model=cfg.server_uses_model,
        temperature=cfg.server_temperature,
        max_tokens=cfg.server_max_tokens,
    )
    system = log.take(MessageStep, role="system") or log.emit(
        MessageStep(role="system", content=prompts.agent_system_message(tools))
    )
    history: list[dict[str, Any]] = [system.to_openai()]
    messages: list[MessageStep] = []
    transcript: list[tuple[str, str]] = []
    ended = "max_turns"
    for turn in range(cfg.max_turns):
        user = log.take(MessageStep, role="user")
        if user is None:
            text, goal_met, meta = yield from user_turn(
                persona, scenario, transcript, cfg, seed=seed_for(spec.seed, "user", turn),
                pending=pending_calls(scenario, messages),
            )
            user = log.emit(
                MessageStep(
                    role="user", content=text, meta={"turn": turn, "goal_met": goal_met, **meta}
                )
            )
        messages.append(user)
        transcript.append(("user", user.content or ""))
        if user.meta.get("goal_met"):
            ended = "goal_met"
            break
        history.append(user.to_openai())
        for hop in range(cfg.max_agent_hops):
            last_hop = hop == cfg.max_agent_hops - 1
            answered = _last_results(messages)  # a text reply now answers these results
            reply = yield from agent_step(
                log,
                history,
                tools,
                cfg,
                seed=spec.seed,
                tool_choice="none" if last_hop else "auto",
                samples=cfg.multi_turn_consistency_samples,
                meta={"turn": turn},
                check=_all_of(None if last_hop else plan_check(scenario, messages),
                              answer_check(answered, questions_ok=True) if answered else None),
            )
            if reply is None:
                after_results = bool(messages) and messages[-1].role == "tool"
                if not after_results and cfg.reference_fallback:
                    # The plan's next step (a call with values from the conversation, or a
                    # question for a value not given yet) takes the failed step's place.
                    reply = log.take(MessageStep, role="assistant")
                    if reply is None:
                        planned = reference_step(scenario, messages, log.next_index, rpc_ids_used(log) + 1)
                        reply = None if planned is None else log.emit(MessageStep(
                            **{**planned.__dict__, "meta": {**planned.meta, "turn": turn}}))
                if reply is None and not after_results:
                    return finish_rejected_by_reflection(log)
                # A text answer to tool results that failed reflection (e.g. it pasted the
                # raw output): a plain summary of those results takes its place.
                reply = reply or log.take(MessageStep, role="assistant") or log.emit(
                    MessageStep(
                        role="assistant",
                        content=phrasing.answer_text(
                            [(m.name or "", m.mcp or {}) for m in _last_results(messages)]
                        ),
                        meta={"turn": turn, "source": "plain"},
                    )
                )
            messages.append(reply)
            history.append(reply.to_openai())
            if not reply.tool_calls:
                transcript.append(("assistant", reply.content or ""))
                break
            results = yield from execute_calls(log, reply, server)
            messages += results
            history += [m.to_openai() for m in results]

    verdict = yield from verify(
        log,
        transcript=multi_turn_transcript(scenario, messages),
        rule_problems=rule_problems(messages, scenario),
        settings=cfg.verify_settings(),
    )
    return finish(log, verdict, score_multi_turn(scenario, messages, cfg), cfg, ended_by=ended)


def _result_value(key: str, messages: list[MessageStep]) -> Any:
    """The value an earlier tool result gave for ``key`` (an id the server assigned), newest
    first: the same key at any depth, or the ``id`` of a result about that thing."""
    norm = re.sub(r"[^a-z0-9]", "", key.lower())
    noun = re.sub(r"[^a-z0-9]", "", phrasing._id_noun(key))

    def find(node: Any, owner: str) -> Any:
        if isinstance(node, dict):
            for k, v in node.items():
                kn = re.sub(r"[^a-z0-9]", "", k.lower())
                if not isinstance(v, dict | list) and v not in (None, "") and (
                    kn == norm or (kn == "id" and noun and noun in owner)
                ):
                    return v
            for k, v in node.items():
                got = find(v, re.sub(r"[^a-z0-9]", "", k.lower()) or owner)
                if got is not None:
                    return got
        elif isinstance(node, list):
            for x in node[:5]:
                got = find(x, owner)
                if got is not None:
                    return got
        return None

    for m in reversed(messages):
        if m.role == "tool" and not m.is_error() and isinstance(m.mcp, dict):
            got = find(((m.mcp.get("result") or {}).get("structuredContent")), re.sub(r"[^a-z0-9]", "", (m.name or "").lower()))
            if got is not None:
                return got
    return None


def pending_calls(scenario: ScenarioStep, messages: list[MessageStep]) -> list[dict[str, Any]]:
    """The planned calls not made yet, in the plan's order (one made call of a tool counts
    off one planned call of it)."""
    pending = list(scenario.reference_calls)
    for name in (c["name"] for m in messages if m.role == "assistant" for c in m.calls()):
        hit = next((i for i, c in enumerate(pending) if c["name"] == name), None)
        if hit is not None:
            pending.pop(hit)
    return pending


def reference_step(
    scenario: ScenarioStep, messages: list[MessageStep], index: int, first_rpc_id: int
) -> MessageStep | None:
    """What the plan says the agent does next, built without a model (``meta["source"] =
    "reference"``): the next planned call that has not been made, with the values the user
    gave and the ids earlier results returned; a question when the user has not given a
    value yet; once every planned call is made, a summary of the results.  ``None`` when
    the next call needs an id nothing in the conversation supplies."""
    said = " ".join(m.content or "" for m in messages if m.role == "user")
    pending = pending_calls(scenario, messages)
    if not pending:
        results = [m for m in messages if m.role == "tool"]
        text = phrasing.answer_text([(m.name or "", m.mcp or {}) for m in results[-3:]]) if results else "Done."
        return MessageStep(role="assistant", content=text, meta={"source": "reference"})
    call = pending[0]
    args: dict[str, Any] = {}
    missing: list[str] = []
    for key, value in (call.get("arguments") or {}).items():
        if is_id_key(key) and not phrasing.mentions(said, value):
            found = _result_value(key, messages)
            if found is not None:
                args[key] = found
                continue
        if phrasing.mentions(said, value) or isinstance(value, bool | dict | list):
            args[key] = value
        else:
            missing.append(key)
    if missing:
        if all(is_id_key(k) for k in missing) and any(m.role == "user" for m in messages[-1:]) and \
                _asked_before(messages, missing):
            return None
        nouns = [phrasing._id_noun(k) if is_id_key(k) else phrasing.humanize(k).lower() for k in missing[:3]]
        return MessageStep(
            role="assistant",
            content=f"Sure. Could you tell me the {phrasing._join([n or 'ID' for n in nouns], random.Random(0))}?",
            meta={"source": "reference"},
        )
    message = assistant_message(
        ChatResult(text="", tool_calls=[ToolCall(name=call["name"], arguments=args)]), index, first_rpc_id=first_rpc_id
    )
    message.meta["source"] = "reference"
    return message


def _planned(calls: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each planned tool's first call, with only its :func:`_own_values` (what asks for it)."""
    return {c["name"]: {**c, "arguments": _own_values(calls, k)} for k, c in reversed(list(enumerate(calls)))}


def given_values_changed(call: dict[str, Any], scenario: ScenarioStep, said: str) -> list[str]:
    """The arguments of ``call`` (a planned tool's) that differ from the value the plan gives
    them although the user said that value (``said``): "for service serv_22c60968" answered
    with ``ServiceSid`` set to the function's id.  Tools the plan calls more than once are
    left alone (which of their calls is meant is not known).

    >>> sc = ScenarioStep(mode="multi_turn", persona={}, tools=[], reference_calls=[
    ...     {"name": "fetch", "arguments": {"Sid": "ZN47", "ServiceSid": "serv_22"}}])
    >>> given_values_changed({"name": "fetch", "arguments": {"Sid": "ZN47", "ServiceSid": "ZN47"}}, sc,
    ...                      "Get function version ZN47 for service serv_22.")
    ['ServiceSid = ZN47, but the user gave serv_22']
    >>> given_values_changed({"name": "fetch", "arguments": {"Sid": "ZN47", "ServiceSid": "ZN47"}}, sc, "Get ZN47.")
    []
    """
    refs = [c for c in scenario.reference_calls if c["name"] == call["name"]]
    if len(refs) != 1:
        return []
    out = []
    got = call.get("arguments") or {}
    for key, want in (refs[0].get("arguments") or {}).items():
        if key not in got or isinstance(want, bool | dict | list) or want in (None, ""):
            continue
        if not phrasing.spoken_forms(got[key]) & phrasing.spoken_forms(want) and phrasing.mentions(said, want):
            out.append(f"{key} = {phrasing.spoken(got[key])}, but the user gave {phrasing.spoken(want)}")
    return out


def plan_check(scenario: ScenarioStep, messages: list[MessageStep]) -> Callable[[ChatResult], list[Problem]]:
    """Self-reflection's extra check of a multi-turn agent step: a text reply while the
    user has given everything the plan's next call needs is a missing call, and a
    state-changing call outside the plan changes something nobody asked for, and so does a
    planned one the user has not asked for yet (the plan is the simulator's, not something
    the user said).  A planned read the user has not asked for yet is refused too: made
    in the step before, it teaches calling what nobody asked for."""
    planned = _planned(scenario.reference_calls)
    said = " ".join(m.content or "" for m in messages if m.role == "user")

    def check(result: ChatResult) -> list[Problem]:
        problems = []
        if not result.tool_calls:
            nxt = reference_step(scenario, messages, 0, 1)
            if nxt is not None and nxt.tool_calls:
                name = nxt.calls()[0]["name"]
                problems.append(Problem("missing_call", f"the user has given what {name} needs: call it now"))
        for i, tc in enumerate(result.tool_calls):
            for wrong in given_values_changed({"name": tc.name, "arguments": tc.arguments}, scenario, said):
                problems.append(Problem("changed_value", f"{tc.name} argument {wrong}: use the value the user gave", i))
            if verb_of(tc.name) not in STATE_CHANGING_VERBS:
                if tc.name not in planned and not asks_for(said, {"name": tc.name, "arguments": {}},
                                                           _tool_of(scenario, tc.name), _ANY_WORD):
                    problems.append(Problem("unasked_call", f"{tc.name} is not part of what the user asked for", i))
                elif tc.name in planned and not asks_for(said, planned[tc.name], _tool_of(scenario, tc.name)):
                    # a later step of the plan: the user asks for it in a later turn
                    problems.append(Problem(
                        "unasked_call", f"{tc.name} is a step the user has not asked for yet: answer what they asked", i))
                continue
            if tc.name not in planned:
                problems.append(Problem("unasked_call", f"{tc.name} changes something the user did not ask for", i))
            elif not asks_for(said, planned[tc.name], _tool_of(scenario, tc.name)):
                problems.append(Problem(
                    "unasked_call", f"{tc.name} changes something the user has not asked for yet: answer what they asked", i))
        return problems

    return check


def _list_lengths(node: Any, depth: int = 0) -> list[int]:
    """How many items each list in ``node`` (a tool message's MCP response) holds.

    >>> _list_lengths({"result": {"structuredContent": {"items": [1, 2], "tags": [{"x": []}]}}})
    [2, 1, 0]
    """
    if depth > 8:
        return []
    if isinstance(node, list):
        return [len(node)] + [n for x in node[:5] for n in _list_lengths(x, depth + 1)]
    if isinstance(node, dict):
        return [n for v in node.values() for n in _list_lengths(v, depth + 1)]
    return []


def _all_of(*checks: Callable[[ChatResult], list[Problem]] | None) -> Callable[[ChatResult], list[Problem]] | None:
    """One check that reports the problems of every given one."""
    given = [c for c in checks if c is not None]
    if not given:
        return None
    return lambda result: [p for c in given for p in c(result)]


def _asked_before(messages: list[MessageStep], keys: list[str]) -> bool:
    """Whether an assistant message already asked for these values (asking again loops)."""
    asks = [m.content or "" for m in messages if m.role == "assistant" and not m.tool_calls]
    nouns = [phrasing._id_noun(k) for k in keys]
    return any(all(n and n in a for n in nouns) for a in asks)


def _last_results(messages: list[MessageStep]) -> list[MessageStep]:
    out: list[MessageStep] = []
    for m in reversed(messages):
        if m.role != "tool":
            break
        out.append(m)
    return out[::-1]


def rule_problems(messages: list[MessageStep], scenario: ScenarioStep) -> list[str]:
    """The rule checks of a finished conversation, among them that the agent called what
    the goal needs (every reference tool) and changed nothing unasked (no
    state-changing call to a tool outside the references).

    >>> m = [MessageStep(role="assistant", content="", tool_calls=[{"id": "1", "type": "function",
    ...      "function": {"name": "cancel_payment", "arguments": "{}"}}]), MessageStep(role="assistant", content="ok")]
    >>> sc = ScenarioStep(mode="multi_turn", persona={}, tools=[], reference_calls=[{"name": "list_refunds", "arguments": {}}])
    >>> rule_problems(m, sc)
    ['the agent never called list_refunds, which the goal needs', 'the agent called cancel_payment, which changes something the user did not ask for']
    """
    problems = []
    calls = [c for m in messages if m.role == "assistant" for c in m.calls()]
    by_name = {t["name"]: t for t in scenario.tools}
    if calls:
        wanted = {c["name"] for c in scenario.reference_calls}
        made = {c["name"] for c in calls}
        said = " ".join(m.content or "" for m in messages if m.role == "user")
        problems += [f"the agent never called {n}, which the goal needs" for n in sorted(wanted - made)]
        for n in sorted(made - wanted):
            if verb_of(n) in STATE_CHANGING_VERBS:  # made unasked, they teach harm
                problems.append(f"the agent called {n}, which changes something the user did not ask for")
            elif not asks_for(said, {"name": n, "arguments": {}}, _tool_of(scenario, n), _ANY_WORD):
                # a read outside the plan is fine where the user asked for it in their words
                problems.append(f"the agent called {n}, which nothing the user asked for")
    planned = _planned(scenario.reference_calls)
    context: list[str] = []
    asked: list[str] = []
    for m in messages:
        if m.role == "assistant":
            asked_so_far = " ".join(asked)
            for c in m.calls():
                if c["name"] in planned and not asks_for(asked_so_far, planned[c["name"]], _tool_of(scenario, c["name"])):
                    problems.append(f"the agent called {c['name']} before the user asked for it")
                problems += [f"the agent called {c['name']} with {w}" for w in
                             given_values_changed(c, scenario, asked_so_far)]
                problems += [f"the agent called {v}, which nobody gave" for v in
                             ungrounded_values(c, "\n".join(context), by_name.get(c["name"]))]
                problems += [f"the agent called {p}" for p in
                             implausible_arguments(c, by_name.get(c["name"]), tool_names=tuple(by_name))]
                schema = (by_name.get(c["name"]) or {}).get("inputSchema")
                problems += [f"the agent's call {c['name']} is invalid: {e}" for e in validation_errors(c["arguments"], schema)]
            if m.content and not m.tool_calls:
                problems += answer_problems(m.content, "\n".join(context))
        elif m.role in ("user", "tool"):
            context.append(m.content or "")
            if m.role == "user":
                asked.append(m.content or "")
            if m.role == "tool":  # "the result has 2 items" counts what the result holds
                context.append(" ".join(str(n) for n in _list_lengths(m.mcp)))
    tool_msgs = [m for m in messages if m.role == "tool"]
    if not calls:
        problems.append("the agent never called a tool")
    if not any(m.role == "assistant" and m.content for m in messages):
        problems.append("the agent never answered the user in text")
    if tool_msgs and all(m.is_error() for m in tool_msgs):
        problems.append("every tool call failed")
    return problems


def score_multi_turn(
    scenario: ScenarioStep, messages: list[MessageStep], cfg: RoleplayConfig
) -> Score:
    # Steps the plan made for a failed Tool Agent are the model's failures, not its calls.
    calls = [c for m in messages if m.role == "assistant" and m.meta.get("source") != "reference" for c in m.calls()]
    sampled = [m for m in messages if m.role == "assistant" and m.meta.get("samples")]
    base = execution_consistency(
        agent_calls=calls,
        reference_calls=scenario.reference_calls,
        server_errors=[m.is_error() for m in messages if m.role == "tool"],
        tools=scenario.tools,
        weights=cfg.score_weights,
        ignore_key=multi_turn_ignore_key,
    )
    if not sampled:
        return base
    # Self-consistency per sampled step, averaged over the steps.
    per_step = [
        sum(call_set_agreement(s, m.calls(), tools=scenario.tools) for s in m.meta["samples"])
        / len(m.meta["samples"])
        for m in sampled
    ]
    s = sum(per_step) / len(per_step)
    w = cfg.score_weights
    parts = [(w.reference, base.reference), (w.consistency, s), (w.execution, base.execution)]
    total = sum(wt for wt, v in parts if v is not None)
    value = sum(wt * v for wt, v in parts if v is not None) / total if total else 0.0
    return Score(
        value=round(value, 6), reference=base.reference, consistency=s, execution=base.execution
    )
