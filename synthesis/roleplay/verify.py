"""Multi-agent verification: rule checks, votes, negotiation, verdict.

1. Deterministic rule checks run first and are stored as the vote of verifier ``rules``
   (round 0).  When they reject, the trajectory is rejected without asking any model
   (unless configured otherwise).
2. ``verifier_count`` verifiers, each with its own perspective (correctness of the calls
   against the user's intent, faithfulness of the arguments, realism of the exchange) and
   optionally its own backend (role ``verifier:<i>``), vote accept/reject with a rationale,
   under a JSON schema.
3. While they disagree and rounds remain, each reads the others' rationales and votes
   again (negotiation).
4. The verdict is the majority of the last round; a tie rejects.

A vote that judged nothing *abstains*: it is stored with ``meta["abstain"]`` and not
counted.  That is an unreadable vote, or one whose rationale is empty, repeats itself,
echoes the instructions, names nothing from the trajectory or cites values it does not
hold (what a very small model writes when it cannot judge; see
:func:`unusable_rationale`).  Negotiation and the majority use the counted votes; when
every model vote abstains, the rule checks' decision stands.

Every vote of every round is a step.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from synthesis.llm.base import ChatRequest
from synthesis.schema_utils import resolve, schema_properties

from . import prompts
from .phrasing import action_phrase, humanize, mentions, new_values
from .runtime import Gen, ask_first, gather, parse_json_reply
from .server_sim import DELETE_VERBS, response_text
from .steps import MessageStep, ScenarioStep, StepLog, VoteStep
from .values import content_words, repeats_itself, singular

PERSPECTIVE_ORDER = ("intent", "faithfulness", "realism")


@dataclass
class VerifySettings:
    verifier_count: int = 3
    negotiation_rounds: int = 1
    temperature: float = 0.0
    max_tokens: int = 160
    llm_after_rule_reject: bool = False


def verifier_names(count: int) -> list[tuple[str, str, str]]:
    """(name, perspective, backend role) of each verifier."""
    out = []
    for i in range(count):
        p = PERSPECTIVE_ORDER[i % len(PERSPECTIVE_ORDER)]
        out.append((f"v{i}-{p}", p, f"verifier:{i}"))
    return out


def majority(decisions: Sequence[str]) -> str:
    """Majority of accept/reject; a tie rejects.

    >>> majority(["accept", "reject"]), majority(["accept", "accept", "reject"])
    ('reject', 'accept')
    """
    acc = sum(1 for d in decisions if d == "accept")
    return "accept" if acc * 2 > len(decisions) else "reject"


def verify(
    log: StepLog, *, transcript: str, rule_problems: list[str], settings: VerifySettings
) -> Gen[str]:
    """Run verification for one trajectory; returns the verdict ``accept`` or ``reject``."""
    rules = log.take(VoteStep, verifier="rules", round=0)
    if rules is None:
        rules = log.emit(
            VoteStep(
                verifier="rules",
                perspective="rules",
                round=0,
                decision="reject" if rule_problems else "accept",
                rationale="; ".join(rule_problems) or "all rule checks passed",
            )
        )
    if rules.decision == "reject" and not settings.llm_after_rule_reject:
        return "reject"
    if settings.verifier_count == 0:
        return rules.decision

    verifiers = verifier_names(settings.verifier_count)
    votes = yield from _round(log, verifiers, transcript, 0, None, settings)
    rnd = 0
    while len({v.decision for v in _counted(votes)}) > 1 and rnd < settings.negotiation_rounds:
        rnd += 1
        votes = yield from _round(log, verifiers, transcript, rnd, votes, settings)
    counted = _counted(votes)
    verdict = majority([v.decision for v in counted]) if counted else rules.decision
    if rules.decision == "reject":
        verdict = "reject"
    return verdict


def _counted(votes: list[VoteStep]) -> list[VoteStep]:
    return [v for v in votes if not v.meta.get("abstain")]


_GENERIC = {
    "does", "not", "doesn't", "isn't", "fit", "fits", "make", "makes", "sense", "good", "bad", "fine", "right",
    "tool", "tools", "user", "users", "request", "requests", "call", "calls", "answer", "assistant", "argument",
    "arguments", "value", "values", "example", "data", "model", "conversation", "correct", "wrong", "accept",
    "reject", "response", "result", "results", "function", "parameter", "parameters", "question", "task",
    "help", "thank", "thanks", "please", "yes", "sure", "great", "awesome", "perfect", "done", "okay",
}  # fmt: skip


# A verifier that answers the user's request as the assistant would ("Yes, I can help you with
# that.", "Sure! I can get the weather for you.", "I'm sorry, but I cannot help with this."),
# or thanks it as the user would ("Awesome, thank you for the help!"), has not judged
# anything: a judge writes about the calls, not to the people in the conversation.
_SERVES = re.compile(
    r"^\W*(yes|sure|certainly|of course|absolutely|okay|ok|hello|hi|hey)\b[\s,!.]+(i\b|i'|here\b|let\b)|"
    r"\bi(?:'ll| will| can| could| would| am happy to|'m happy to| am glad to|'m glad to)"
    r"(?: certainly| definitely)? (help|assist|do that|do this|take care)\b|"
    r"\bi(?:'m| am) (sorry|afraid)\b|\bi (cannot|can't|can not|am unable to|'m unable to) (help|assist)\b|"
    r"\bhow (can|may) i\b|\blet me (know|help|get|check|find|look)\b|\b(for|with) you\b|"
    r"\bthank you\b|\bthanks\b(?! to)",
    re.I,
)


def unusable_rationale(text: str, transcript: str = "") -> str | None:
    """Why a verifier's rationale cannot back a vote, or ``None``.

    Given the ``transcript`` it judged, a rationale must also be about it: it names at least
    one of its tools, parameters, values or request words, and cites no value the
    transcript does not hold (a verifier that makes up what it judges is not judging).

    >>> unusable_rationale("The answer is no, the answer is no, the answer is no, the answer is no.")
    'it repeats itself'
    >>> unusable_rationale("The call uses the city the user named.", "get_weather(city=Oslo) User: weather in Oslo?") is None
    True
    >>> unusable_rationale("The tool is not 4DC 2017-2022.", "get_weather(city=Oslo) User: weather in Oslo?")
    'it cites values the trajectory does not hold: 4DC, 2017-2022'
    >>> unusable_rationale("The answer is no, the tool does not fit.", "get_weather(city=Oslo) User: weather in Oslo?")
    'it names nothing from the trajectory'
    >>> unusable_rationale("No tool call, because none of the tools can do this.",
    ...                    "User: book a flight\\nAssistant's answer: no tool call, because none of the tools can do this.")
    'it only repeats the trajectory'
    >>> unusable_rationale("Oslo is not supported by the tools. Oslo is not supported by the tools.")
    'it repeats itself'
    >>> unusable_rationale("The request is not supported by the provided tools. Please list the episodes, "
    ...                    "and the request is not supported by the provided tools.")
    'it repeats itself'
    >>> unusable_rationale("Yes, I can help you with that.", "User: can you help with the weather in Oslo?")
    'it answers the request instead of judging it'
    >>> unusable_rationale("I can see that get_weather was called with Oslo, as asked.", "get_weather(city=Oslo) User: weather in Oslo?") is None
    True
    """
    words = re.findall(r"[a-z0-9']+", text.lower())
    if not words:
        return "it is empty"
    if repeats_itself(text):
        return "it repeats itself"
    if _SERVES.search(text):
        return "it answers the request instead of judging it"
    instructions = " ".join(re.findall(r"[a-z0-9']+", " ".join(prompts.PERSPECTIVES.values()).lower()))
    if any(" ".join(words[i : i + 6]) in instructions for i in range(len(words) - 5)):
        return "it echoes the instructions"
    if transcript and len(words) >= 5:
        seen = re.findall(r"[a-z0-9']+", transcript.lower())
        grams5 = {" ".join(seen[i : i + 5]) for i in range(len(seen) - 4)}
        copied = {j for i in range(len(words) - 4) if " ".join(words[i : i + 5]) in grams5 for j in range(i, i + 5)}
        if len(copied) >= 0.8 * len(words):
            return "it only repeats the trajectory"
    if transcript:
        made_up = new_values(text, transcript)
        if made_up:
            return "it cites values the trajectory does not hold: " + ", ".join(made_up[:4])
        said = content_words(humanize(transcript)) - _GENERIC
        if not said & content_words(humanize(text)):
            return "it names nothing from the trajectory"
    return None


def _round(
    log: StepLog,
    verifiers: list[tuple[str, str, str]],
    transcript: str,
    rnd: int,
    previous: list[VoteStep] | None,
    settings: VerifySettings,
) -> Gen[list[VoteStep]]:
    stored: list[VoteStep | None] = [
        log.take(VoteStep, verifier=name, round=rnd) for name, _, _ in verifiers
    ]
    missing = [i for i, v in enumerate(stored) if v is None]
    gens = []
    for i in missing:
        name, perspective, role = verifiers[i]
        if previous is None:
            messages = prompts.verifier_messages(perspective, transcript)
        else:
            own = {"decision": previous[i].decision, "rationale": previous[i].rationale}
            others = [
                {"verifier": v.verifier, "decision": v.decision, "rationale": v.rationale}
                for j, v in enumerate(previous)
                if j != i and not v.meta.get("abstain")
            ]
            messages = prompts.negotiation_messages(perspective, transcript, own, others)
        req = ChatRequest(
            messages=messages,
            json_schema=prompts.VOTE_SCHEMA,
            temperature=settings.temperature,
            max_tokens=settings.max_tokens,
        )
        gens.append(ask_first(role, req))
    replies = yield from gather(gens)
    for i, reply in zip(missing, replies, strict=True):
        name, perspective, _ = verifiers[i]
        meta: dict[str, Any] = {}
        try:
            obj = parse_json_reply(reply)
            decision = obj.get("decision") if isinstance(obj, dict) else None
            rationale = str(obj.get("rationale", "")) if isinstance(obj, dict) else ""
            if decision not in ("accept", "reject"):
                raise ValueError(f"decision {decision!r} is neither accept nor reject")
            why = unusable_rationale(rationale, transcript)
            if why:
                meta["abstain"] = f"rationale unusable: {why}"
        except Exception as e:  # an unreadable vote judged nothing: it abstains, like an unusable one
            decision, rationale = "reject", ""
            meta["error"] = str(e)[:300]
            meta["abstain"] = "unreadable vote"
        stored[i] = log.emit(
            VoteStep(
                verifier=name,
                perspective=perspective,
                round=rnd,
                decision=decision,
                rationale=rationale,
                meta=meta,
            )
        )
    return [v for v in stored if v is not None]


# ---------------------------------------------------------------------------------------
# What the verifiers read


def _call_str(c: dict[str, Any]) -> str:
    import json

    return f"{c['name']}({json.dumps(c['arguments'], ensure_ascii=False)})"


def single_turn_transcript(scenario: ScenarioStep) -> str:
    """The training pair under review: offered tools, request, expected calls."""
    tools = "\n".join(prompts.tool_brief(t) for t in scenario.tools)
    if scenario.reference_calls:
        answer = "Assistant's tool calls:\n" + "\n".join(
            f"- {_call_str(c)}" for c in scenario.reference_calls
        )
    else:
        answer = "Assistant's answer: no tool call, because none of the tools can do this."
    return f"Available tools:\n{tools}\n\nUser: {scenario.query}\n\n{answer}"


def multi_turn_transcript(
    scenario: ScenarioStep, messages: list[MessageStep], *, limit: int = 6000
) -> str:
    tools = "\n".join(prompts.tool_brief(t) for t in scenario.tools)
    lines = [f"Available tools:\n{tools}", f"User's goal: {scenario.goal}", ""]
    for m in messages:
        if m.role == "user":
            lines.append(f"User: {m.content}")
        elif m.role == "assistant":
            if m.content:
                lines.append(f"Assistant: {m.content}")
            for c in m.calls():
                lines.append(f"Assistant calls {_call_str(c)}")
        elif m.role == "tool" and isinstance(m.mcp, dict):
            lines.append(f"Tool result: {response_text(m.mcp)[:300]}")
    text = "\n".join(lines)
    return text if len(text) <= limit else text[: limit // 3] + "\n...\n" + text[-2 * limit // 3 :]


def value_coverage(query: str, calls: list[dict[str, Any]]) -> tuple[float, list[str]]:
    """Share of the reference calls' scalar argument values that the query mentions, and
    the values it does not.

    >>> value_coverage("Weather in Paris on 2025-05-01?", [{"name": "w", "arguments": {"city": "Paris", "date": "2025-05-01", "units": "metric"}}])
    (0.666667, ['metric'])
    """
    values = [v for c in calls for v in prompts._scalars(c.get("arguments") or {})]
    if not values:
        return 1.0, []
    missing = [str(v) for v in values if not mentions(query, v)]
    return round(1 - len(missing) / len(values), 6), missing


# ---------------------------------------------------------------------------------------
# Rule checks shared by the single- and multi-turn rules

_GENERIC_INTENT = {
    "get", "list", "show", "find", "fetch", "retrieve", "return", "returns", "look", "lookup", "all", "one", "given",
    "specific", "specified", "provided", "existing", "new", "information", "info", "details", "detail", "data",
    "api", "resource", "resources", "object", "objects", "item", "items", "entry", "entries", "record", "records",
    "by", "for", "with", "from", "the", "and", "request", "search", "query", "create", "update", "delete", "set",
    "single", "multiple", "user", "users", "current", "this", "that", "use", "using", "can", "id", "ids", "name",
}  # fmt: skip


def _stems(text: str) -> set[str]:
    return {singular(w) for w in content_words(humanize(text))} - _GENERIC_INTENT


_DESTRUCTIVE = set(DELETE_VERBS) | {"cancel", "refund", "void", "revoke", "close", "charge", "deactivate", "disable"}


def tool_intent(tool: dict[str, Any]) -> set[str]:
    """The words that say what ``tool`` is about (its name and summary, less verbs and
    words every tool has): ``getForecast`` "Returns the weather forecast" -> forecast, weather."""
    first = re.split(r"(?<=[.!?])\s|\n", (tool.get("description") or "").strip(), maxsplit=1)[0]
    # an operation id made of the method and path (post_api_v1_lists): the method is no subject
    name = re.sub(r"^(get|post|put|patch|delete|head|options)_(?=api_|v\d+_)", "", tool.get("name", ""), flags=re.I)
    return _stems(name) | _stems(first)


def _names_operation(name: str, said: set[str]) -> bool:
    """Whether the words ``said`` hold every word of the operation ``name`` (two or more),
    less a leading OpenAPI tag (``Account_`` in ``Account_deleteUser``)."""
    op = re.sub(r"^[A-Z][A-Za-z0-9]*_(?=[a-z])", "", name)
    words = {singular(w) for w in re.findall(r"[a-z0-9]+", humanize(op).lower())}
    heard = {singular(w) for w in said}
    return len(words) >= 2 and words <= heard


def intent_problems(query: str, calls: list[dict[str, Any]], tools: list[dict[str, Any]]) -> list[str]:
    """A reference call to a tool the request does not ask for: its subject words are not in
    the request, or another offered tool's are and its own are not.

    >>> w = {"name": "get_weather", "description": "Get the current weather for a city."}
    >>> a = {"name": "get_air_quality", "description": "Get the air quality index for a city."}
    >>> intent_problems("What's the weather in Paris?", [{"name": "get_air_quality", "arguments": {}}], [w, a])
    ['the request does not ask for what get_air_quality does (air, city, index); it asks for what get_weather does']
    >>> intent_problems("What's the weather in Paris?", [{"name": "get_weather", "arguments": {}}], [w, a])
    []
    >>> intent_problems("Create a new list, please.", [{"name": "post_api_v1_lists", "arguments": {}}],
    ...                 [{"name": "post_api_v1_lists", "description": "Create list"}])
    []

    A request that says the operation's own words asks for it, even where they are words
    every API has ("delete user" for ``Account_deleteUser``, whose tag says little):

    >>> d = {"name": "Account_deleteUser", "description": "Delete an account user."}
    >>> intent_problems("Can you delete user user_a7df9859?", [{"name": "Account_deleteUser", "arguments": {}}], [d])
    []
    >>> intent_problems("Can you delete the file f_1?", [{"name": "Account_deleteUser", "arguments": {}}], [d])
    ['the request does not ask for what Account_deleteUser does (account)']
    """
    asked = _stems(query)
    said = set(re.findall(r"[a-z]+", query.lower()))
    by_name = {t["name"]: t for t in tools}
    out = []
    for name in dict.fromkeys(c["name"] for c in calls):
        tool = by_name.get(name)
        if tool is None:
            continue
        verb = action_phrase(tool).split(" ", 1)[0]
        if verb in _DESTRUCTIVE and verb not in said and not any(w.startswith(verb) for w in said):
            # a call that destroys or takes back must be asked for in so many words
            out.append(f"the request does not ask to {verb} anything, but {name} does")
            continue
        own = tool_intent(tool)
        if not own or own & asked or _names_operation(name, said):
            continue
        fits = [t["name"] for t in tools if t["name"] != name and tool_intent(t) & asked]
        out.append(f"the request does not ask for what {name} does ({', '.join(sorted(own)[:3])})"
                   + (f"; it asks for what {fits[0]} does" if fits else ""))
    return out


_STATUS_WORDS = {
    "confirmed", "cancelled", "canceled", "pending", "shipped", "delivered", "active", "inactive", "failed",
    "completed", "succeeded", "approved", "rejected", "declined", "refunded", "paid", "unpaid", "open", "closed",
    "expired", "suspended", "available", "unavailable", "sunny", "rainy", "cloudy", "snowy",
}  # fmt: skip


def answer_problems(answer: str, grounds: str) -> list[str]:
    """What a text answer states that the tool results (and the conversation, ``grounds``)
    do not: a number, or a status word.

    >>> answer_problems("It is 30 degrees and sunny in Oslo.", '{"city": "Oslo", "temperature": 12, "condition": "rain"}')
    ['the answer states 30, which no tool result or message holds', 'the answer says sunny, which no tool result or message says']
    """
    low = " ".join(grounds.lower().split())
    out = [f"the answer states {tok}, which no tool result or message holds"
           for tok in new_values(answer, grounds) if re.search(r"\d", tok) and re.search(r"[A-Za-z]", tok)]
    for num in dict.fromkeys(re.findall(r"(?<![\w.])\d+(?:[.,]\d+)?(?![\w.])", answer)):
        forms = {num, num.replace(",", ""), num.rstrip("0").rstrip(".") if "." in num else num}
        if not any(re.search(rf"(?<![\d.]){re.escape(f)}(?![\d])", low) for f in forms if f):
            out.append(f"the answer states {num}, which no tool result or message holds")
    said = set(re.findall(r"[a-z]+", answer.lower())) & _STATUS_WORDS
    for word in sorted(said):
        if word not in low and word.rstrip("d") not in low:
            out.append(f"the answer says {word}, which no tool result or message says")
    return out


def ungrounded_values(call: dict[str, Any], context: str, tool: dict[str, Any] | None) -> list[str]:
    """Argument values of a multi-turn call that nothing before it gave: not said by the
    user, not returned by a tool (enum members, booleans and the schema's defaults aside).

    >>> ungrounded_values({"name": "get_weather", "arguments": {"city": "Lisbon"}}, "User: weather in Paris?", None)
    ['get_weather.city = Lisbon']
    """
    props = schema_properties((tool or {}).get("inputSchema"))
    root = (tool or {}).get("inputSchema") or {}
    out = []
    for key, value in (call.get("arguments") or {}).items():
        sub = resolve(props.get(key) or {}, root) if props else {}
        sub = sub if isinstance(sub, dict) else {}
        for v in prompts._scalars(value):
            if sub.get("enum") and v in sub["enum"] or ("default" in sub and sub["default"] == v):
                continue
            if not mentions(context, v):
                out.append(f"{call['name']}.{key} = {v}")
    return out
