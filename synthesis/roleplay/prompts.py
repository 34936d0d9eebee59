"""Every prompt and output schema of the role-play, in one place.

Prompts are short and concrete: the embedded model has 135M parameters, so structure comes
from constrained decoding (the schemas below, forced tool calls), and the text only has to
steer content.  Large models get the same prompts and do well with them.
"""

from __future__ import annotations

import json
from typing import Any

from .steps import Persona


def _j(v: Any, limit: int = 600) -> str:
    s = json.dumps(v, ensure_ascii=False)
    return s if len(s) <= limit else s[: limit - 3] + "..."


def tool_brief(tool: dict[str, Any]) -> str:
    props = (tool.get("inputSchema") or {}).get("properties") or {}
    params = ", ".join(
        f"{k} ({(v or {}).get('type', 'any')}{': ' + str((v or {}).get('description'))[:60] if (v or {}).get('description') else ''})"
        for k, v in list(props.items())[:8]
    )
    desc = (tool.get("description") or "").strip().split("\n")[0][:200]
    return f"- {tool['name']}: {desc}" + (f" Parameters: {params}." if params else "")


# ---------------------------------------------------------------------------------------
# Personas

PERSONA_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 2, "maxLength": 40},
        "role": {"type": "string", "minLength": 3, "maxLength": 60},
        "background": {"type": "string", "minLength": 10, "maxLength": 240},
        "style": {"type": "string", "minLength": 3, "maxLength": 80},
        "goals": {
            "type": "array",
            "items": {"type": "string", "minLength": 5, "maxLength": 100},
            "minItems": 1,
            "maxItems": 3,
        },
    },
    "required": ["name", "role", "background", "style", "goals"],
    "additionalProperties": False,
}


def persona_messages(domain: str, avoid: list[str]) -> list[dict[str, Any]]:
    avoid_txt = ", ".join(avoid[-12:]) or "none"
    return [
        {
            "role": "system",
            "content": "You invent realistic, specific people who use software tools. Reply with JSON only.",
        },
        {
            "role": "user",
            "content": (
                f"Invent one person who would use {domain} tools in daily life or work. "
                "Give a full name, a job or life role, a one-sentence background, a communication "
                "style (e.g. terse, chatty, formal), and 1-3 concrete goals.\n"
                f"It must be different from these people: {avoid_txt}."
            ),
        },
    ]


# ---------------------------------------------------------------------------------------
# Scenarios

QUERY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"query": {"type": "string", "minLength": 8, "maxLength": 400}},
    "required": ["query"],
    "additionalProperties": False,
}

GOAL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"goal": {"type": "string", "minLength": 8, "maxLength": 300}},
    "required": ["goal"],
    "additionalProperties": False,
}


def reference_args_messages(
    persona: Persona, tool: dict[str, Any], *, nth: int, total: int, previous: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Ask for realistic arguments of one call (the call itself is forced and schema-bound)."""
    prev = ""
    if previous:
        prev = "\nCalls already planned (use different values): " + "; ".join(
            f"{c['name']}({_j(c['arguments'], 200)})" for c in previous
        )
    return [
        {
            "role": "system",
            "content": (
                "You plan one realistic tool call for a user. Use concrete, plausible values "
                "(real-looking names, places, dates, numbers), never placeholders."
            ),
        },
        {
            "role": "user",
            "content": (
                f"User: {persona.describe()}\n"
                f"Call {nth} of {total}: call {tool['name']} the way this user would need it."
                f"{prev}"
            ),
        },
    ]


def query_values(calls: list[dict[str, Any]], *, limit: int = 6, text: str = "") -> list[str]:
    """The reference values a query must mention, as the user would write them: in the form
    and order in which ``text`` (the plain request) mentions them, when given."""
    from .phrasing import spoken_forms

    out: list[str] = []
    low = text.lower()
    for c in calls:
        for v in _scalars(c["arguments"]):
            form = str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)
            if low:
                found = [(low.find(f), f) for f in spoken_forms(v) if f in low]
                if found:
                    pos, f = min(found)
                    form = text[pos : pos + len(f)]
            if 0 < len(form) <= 60 and form not in out:
                out.append(form)
    if low:
        out.sort(key=lambda f: low.find(f.lower()) if f.lower() in low else len(low))
    return out[:limit]


def query_schema(values: list[str]) -> dict[str, Any]:
    """QUERY_SCHEMA whose query must contain ``values`` literally, in order (a regex
    ``pattern``, so constrained decoders cannot leave them out)."""
    if not values:
        return QUERY_SCHEMA
    pattern = "^.*" + ".*".join(_regex_escape(v) for v in values) + ".*$"
    return {
        "type": "object",
        "properties": {
            # No length bounds: grammar engines drop them when a pattern is present.
            "query": {"type": "string", "pattern": pattern}
        },
        "required": ["query"],
        "additionalProperties": False,
    }


def _regex_escape(s: str) -> str:
    return "".join("\\" + ch if ch in "\\.^$*+?()[]{}|/" else ch for ch in s)


def query_messages(
    persona: Persona, calls: list[dict[str, Any]], tools: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Ask for the user's request that the given calls answer (all values mentioned).

    The calls are described in words, not as JSON: small models copy whatever they see,
    and a query quoting a function signature is useless."""
    by_name = {t["name"]: t for t in tools}
    tasks = []
    for c in calls:
        desc = (
            ((by_name.get(c["name"]) or {}).get("description") or c["name"].replace("_", " "))
            .strip()
            .split("\n")[0]
        )
        details = ", ".join(
            f"{k.replace('_', ' ')}: {v}"
            for k, v in c["arguments"].items()
            if not isinstance(v, dict | list)
        )
        tasks.append(f"- {desc.rstrip('.')} ({details})")
    many = " Ask for all of these in one message." if len(calls) > 1 else ""
    values = query_values(calls)
    return [
        {
            "role": "system",
            "content": (
                f"You are {persona.name}, {persona.role}. Style: {persona.style}. "
                "Write the message you send to your assistant. Reply with JSON only."
            ),
        },
        {
            "role": "user",
            "content": (
                "You need:\n"
                + "\n".join(tasks)
                + f"\nWrite one short, natural request in first person.{many} "
                f"Include these exact values: {', '.join(values) or 'none'}. Do not mention APIs, tools or functions."
            ),
        },
    ]


def rewrite_query_messages(persona: Persona, plain: str) -> list[dict[str, Any]]:
    """Ask the persona to rewrite a plain request in their own words (values kept)."""
    return [
        {
            "role": "system",
            "content": (
                f"You are {persona.name}, {persona.role}. Style: {persona.style}. "
                "You rewrite requests to an assistant in your own words. Reply with JSON only."
            ),
        },
        {
            "role": "user",
            "content": (
                f"Request: {plain}\n"
                "Rewrite this request as one or two natural sentences in first person, the way you "
                "would type it. Keep every value exactly as written. Do not mention APIs, tools or "
                "functions."
            ),
        },
    ]


def irrelevant_query_messages(
    persona: Persona, tools: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    briefs = "\n".join(tool_brief(t) for t in tools)
    return [
        {
            "role": "system",
            "content": (
                f"You write what a user types to an assistant. You are {persona.name}, {persona.role}; "
                f"style: {persona.style}. Reply with JSON only."
            ),
        },
        {
            "role": "user",
            "content": (
                f"The assistant only has these tools:\n{briefs}\n"
                "Write a realistic request from this user that NONE of these tools can fulfil "
                "(a different task, not just missing details), with concrete details."
            ),
        },
    ]


def goal_messages(persona: Persona, calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    lines = "\n".join(f"- {c['name']} with {_j(c['arguments'], 300)}" for c in calls)
    return [
        {
            "role": "system",
            "content": "You describe what a user wants to get done, in one or two sentences. Reply with JSON only.",
        },
        {
            "role": "user",
            "content": (
                f"User: {persona.describe()}\nTo help them, an assistant will do:\n{lines}\n"
                "State the user's goal from their point of view (first person), with the key details."
            ),
        },
    ]


def _scalars(v: Any) -> list[Any]:
    if isinstance(v, dict):
        return [x for val in v.values() for x in _scalars(val)]
    if isinstance(v, list):
        return [x for val in v for x in _scalars(val)]
    if v is None or isinstance(v, bool):
        return []
    return [v]


# ---------------------------------------------------------------------------------------
# Tool Agent

AGENT_SYSTEM = (
    "You are a helpful assistant connected to an MCP server. The tools/list result gives the "
    "tools you can call. Call a tool when it is needed, with every required argument taken "
    "from what the user said; if a required value is missing, ask the user for it. If no tool "
    "fits the request, say so and do not call any tool. After tool results arrive, answer the "
    "user briefly using them."
)


def agent_system_message(tools: list[dict[str, Any]]) -> str:
    listing = {
        "tools": [{"name": t["name"], "description": t.get("description", "")} for t in tools]
    }
    return AGENT_SYSTEM + "\ntools/list: " + _j(listing, 1500)


def plan_schema(tool_names: list[str], *, max_calls: int) -> dict[str, Any]:
    """The Tool Agent's decision for its next step (for models that need structure)."""
    return {
        "type": "object",
        "properties": {
            "action": {"type": "string", "enum": ["call_tools", "ask_user", "answer"]},
            "tools": {
                "type": "array",
                "items": {"type": "string", "enum": tool_names},
                "minItems": 0,
                "maxItems": max_calls,
            },
        },
        "required": ["action", "tools"],
        "additionalProperties": False,
    }


PLAN_INSTRUCTION = (
    "Decide your next step. action=call_tools with the tools to call now (the same tool may "
    "appear several times for several calls); ask_user if a required value is missing; "
    "answer if the request is done or no tool fits (tools then empty)."
)


def next_call_instruction(nth: int, total: int, done: list[dict[str, Any]]) -> str:
    s = f"Write call {nth} of {total} now."
    if done:
        s += (
            " Already written in this step: "
            + "; ".join(f"{c['name']}({_j(c['arguments'], 160)})" for c in done)
            + ". Use the values for the next part of the request."
        )
    return s


def repair_feedback(problems: list[str], *, expect_call: bool) -> str:
    head = "Your previous reply was rejected by the validator:\n" + "\n".join(
        f"- {p}" for p in problems
    )
    tail = (
        "\nWrite the tool call(s) again, using only the offered tools and only the parameters "
        "their schemas define, with valid values."
        if expect_call
        else "\nReply again."
    )
    return head + tail


# ---------------------------------------------------------------------------------------
# User Simulator

USER_TURN_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "goal_met": {"type": "boolean"},
        "message": {"type": "string", "minLength": 2, "maxLength": 400},
    },
    "required": ["goal_met", "message"],
    "additionalProperties": False,
}


def user_sim_messages(
    persona: Persona,
    goal: str,
    facts: dict[str, Any],
    unrevealed: dict[str, Any],
    transcript: list[tuple[str, str]],
    first_step: str = "",
) -> list[dict[str, Any]]:
    """The User Simulator's prompt.  ``first_step`` (the plan's first action, e.g. "create
    an order") is what the opening message asks for: the agent works through the goal in
    the order the user asks, so an opening that asks for a later step first sets the two
    apart."""
    facts_txt = "; ".join(f"{k} = {_j(v, 80)}" for k, v in facts.items()) or "none"
    hidden = "; ".join(f"{k} = {_j(v, 80)}" for k, v in unrevealed.items())
    convo = "\n".join(
        f"{'You' if who == 'user' else 'Assistant'}: {text}" for who, text in transcript[-10:]
    )
    if not transcript:
        task = (
            "Write your first message: say what you want in a sentence or two, with only some "
            "of the details (the assistant may ask for the rest)."
            + (f" Start with the first step: {first_step}." if first_step else "")
        )
    else:
        task = (
            "Write your next message. If the assistant asked for something, give it (from the "
            "details you know). If your goal is fully done, set goal_met true and say thanks. "
            "Never invent details that contradict what you know."
        )
    return [
        {
            "role": "system",
            "content": (
                f"You are {persona.name}, {persona.role}, chatting with an AI assistant. "
                f"{persona.background} Style: {persona.style}. You are the user, not the assistant. "
                "Reply with JSON only."
            ),
        },
        {
            "role": "user",
            "content": (
                f"Your goal: {goal}\nDetails you know: {facts_txt}\n"
                + (f"Details not yet shared: {hidden}\n" if hidden else "")
                + (f"Conversation so far:\n{convo}\n" if convo else "")
                + task
            ),
        },
    ]


# ---------------------------------------------------------------------------------------
# MCP Server Simulator

# additionalProperties spelled out: grammar compilers in strict mode read its absence as false.
GENERIC_RESULT_SCHEMA: dict[str, Any] = {"type": "object", "minProperties": 1, "additionalProperties": True}


def server_messages(
    tool: dict[str, Any], arguments: dict[str, Any], known: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    state = ""
    if known:
        state = "\nRecords that already exist on the server (stay consistent with them): " + _j(
            known, 800
        )
    return [
        {
            "role": "system",
            "content": (
                "You are an MCP server executing a tool call. Return the tool's result as JSON: "
                "realistic, specific values consistent with the arguments. Reply with JSON only."
            ),
        },
        {
            "role": "user",
            "content": (
                f"Tool: {tool['name']} - {(tool.get('description') or '')[:300]}\n"
                f"Arguments: {_j(arguments, 600)}{state}\nResult:"
            ),
        },
    ]


# ---------------------------------------------------------------------------------------
# Verifiers

VOTE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "rationale": {"type": "string", "minLength": 5, "maxLength": 400},
        "decision": {"type": "string", "enum": ["accept", "reject"]},
    },
    "required": ["rationale", "decision"],
    "additionalProperties": False,
}

PERSPECTIVES: dict[str, str] = {
    "intent": (
        "Check CORRECTNESS: do the tool calls do exactly what the user asked: the right "
        "tool(s), nothing missing, nothing extra? If no tool fits the request, the right "
        "answer is no call."
    ),
    "faithfulness": (
        "Check FAITHFULNESS: is every argument value stated by the user or clearly implied, "
        "with no invented values, and do the arguments match the tool's parameters?"
    ),
    "realism": (
        "Check REALISM: is the user's request natural and specific, and does the conversation "
        "read like a real exchange between a person and a capable assistant?"
    ),
}


def verifier_messages(perspective: str, transcript: str) -> list[dict[str, Any]]:
    return [
        {
            "role": "system",
            "content": (
                "You review synthetic tool-use training data. Accept only examples you would "
                "want a model to learn from. "
                + PERSPECTIVES[perspective]
                + " Reply with JSON only."
            ),
        },
        {
            "role": "user",
            "content": f"{transcript}\n\nGive a short rationale, then accept or reject.",
        },
    ]


def negotiation_messages(
    perspective: str, transcript: str, own: dict[str, str], others: list[dict[str, str]]
) -> list[dict[str, Any]]:
    other_txt = "\n".join(f"- {o['verifier']} ({o['decision']}): {o['rationale']}" for o in others)
    msgs = verifier_messages(perspective, transcript)
    msgs[-1]["content"] = (
        f"{transcript}\n\nYour previous vote: {own['decision']} - {own['rationale']}\n"
        f"The other reviewers voted:\n{other_txt}\n"
        "Weigh their arguments against yours. Give a short rationale, then your final decision."
    )
    return msgs
