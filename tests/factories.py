import factory
from django.contrib.auth import get_user_model

from inftool_web.catalog.models import ApiSource, Tool
from inftool_web.loop.models import Iteration
from inftool_web.synth.models import Trajectory


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("pw-for-tests-123")


class ApiSourceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ApiSource

    kind = ApiSource.Kind.OPENAPI
    name = factory.Sequence(lambda n: f"example{n}.com")
    location = factory.LazyAttribute(lambda o: f"/specs/{o.name}.json")
    status = ApiSource.Status.OK


class ToolFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tool

    source = factory.SubFactory(ApiSourceFactory)
    name = factory.Sequence(lambda n: f"get_item_{n}")
    description = "Get one item by id."
    input_schema = factory.LazyFunction(
        lambda: {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]}
    )
    content_hash = factory.Sequence(lambda n: f"{n:064x}")


class IterationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Iteration

    number = factory.Sequence(lambda n: n + 1)
    config = factory.LazyFunction(dict)


class TrajectoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Trajectory

    iteration = factory.SubFactory(IterationFactory)
    seq = factory.Sequence(lambda n: n)
    mode = Trajectory.Mode.SINGLE


class TreeNodeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "catalog.TreeNode"

    level = "domain"
    name = factory.Sequence(lambda n: f"Domain {n}")


class PersonaFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "synth.Persona"

    name = factory.Sequence(lambda n: f"Persona {n}")
    role = "analyst"
    content_hash = factory.Sequence(lambda n: f"persona-{n}")


class MessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "synth.Message"

    trajectory = factory.SubFactory(TrajectoryFactory)
    index = factory.Sequence(lambda n: n)
    role = "user"
    content = "Hello"


class VerifierVoteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "synth.VerifierVote"

    trajectory = factory.SubFactory(TrajectoryFactory)
    verifier = factory.Sequence(lambda n: f"verifier-{n}")
    vote = "accept"
    rationale = "Grounded in the request."


class CheckpointFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "loop.ModelCheckpoint"

    name = factory.Sequence(lambda n: f"ckpt-{n}")
    kind = "sft"
    path = factory.LazyAttribute(lambda o: f"var/{o.name}")


class EvaluationRunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "loop.EvaluationRun"

    checkpoint = factory.SubFactory(CheckpointFactory)
    status = "succeeded"
    overall = 0.5


def conversation(trajectory, *, tool_name: str = "get_weather", arguments: dict | None = None,
                 answer: str = "It is sunny.") -> list:
    """A complete single-call conversation: system, user, assistant call, tool result, answer."""
    from inftool_web.synth.models import Message

    arguments = arguments if arguments is not None else {"city": "Paris"}
    call_id = f"call_{trajectory.pk}"
    rows = [
        Message(trajectory=trajectory, index=0, role="system", content="You can call tools."),
        Message(trajectory=trajectory, index=1, role="user", agent="user_simulator", content="Weather in Paris?"),
        Message(trajectory=trajectory, index=2, role="assistant", agent="tool_agent", tool_calls=[
            {"id": call_id, "type": "function", "function": {"name": tool_name, "arguments": arguments}}]),
        Message(trajectory=trajectory, index=3, role="tool", agent="server_simulator",
                content='{"temp_c": 21, "sky": "clear"}', tool_results=[{"tool_call_id": call_id}]),
        Message(trajectory=trajectory, index=4, role="assistant", agent="tool_agent", content=answer),
    ]
    return Message.objects.bulk_create(rows)


def shop_tools(source_name: str = "shop.example") -> list:
    """The role-play fakes' tools (tests/synthesis/roleplay/fakes.py) stored as Tool rows."""
    from tests.synthesis.roleplay.fakes import ALL_TOOLS

    source = ApiSourceFactory(name=source_name)
    return [ToolFactory(source=source, name=t["name"], description=t["description"],
                        input_schema=t["inputSchema"], output_schema=t.get("outputSchema")) for t in ALL_TOOLS]


# ------------------------------------------------------------------ tool-use trajectories
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Weather for a city.",
    "inputSchema": {"type": "object", "required": ["city"], "properties": {
        "city": {"type": "string"}, "days": {"type": "integer", "default": 1}}},
}
QUOTE_TOOL = {
    "name": "get_quote",
    "description": "A stock quote.",
    "inputSchema": {"type": "object", "required": ["symbol"], "properties": {
        "symbol": {"type": "string", "pattern": "^[A-Z]{1,5}$"}, "when": {"type": "string", "default": "now"}}},
}
TOOL_USE_CITIES = ["Paris", "Rome", "Oslo", "Lima", "Quito", "Accra", "Hanoi", "Perth", "Cusco", "Tunis", "Riga", "Baku"]


def _call(t, i, name, args):
    return {"id": f"call_{t.pk}_{i}", "type": "function", "function": {"name": name, "arguments": args}}


def tool_use_trajectory(it, seq, city):
    """An accepted single-call trajectory whose assistant call has no text (content null)."""
    from inftool_web.synth.models import Message

    t = TrajectoryFactory(iteration=it, seq=seq, mode="single", status="done", verdict="accepted",
                          difficulty="easy" if seq % 2 else "hard", score=0.5 + seq / 100,
                          offered_tools=[WEATHER_TOOL, QUOTE_TOOL],
                          reference_calls=[{"name": "get_weather", "arguments": {"city": city}}])
    call = _call(t, 0, "get_weather", {"city": city})
    Message.objects.bulk_create([
        Message(trajectory=t, index=0, role="system", content="You can call tools."),
        Message(trajectory=t, index=1, role="user", content=f"Weather in {city}?"),
        Message(trajectory=t, index=2, role="assistant", content="", tool_calls=[call]),
        Message(trajectory=t, index=3, role="tool", content='{"temp_c": 21}', tool_call_id=call["id"]),
        Message(trajectory=t, index=4, role="assistant", content=f"It is 21 °C in {city}."),
    ])
    return t


def _parallel(it, seq):
    from inftool_web.synth.models import Message

    t = TrajectoryFactory(iteration=it, seq=seq, mode="parallel", status="done", verdict="accepted",
                          difficulty="hard", score=0.4, offered_tools=[QUOTE_TOOL],
                          reference_calls=[{"name": "get_quote", "arguments": {"symbol": "AAPL"}},
                                           {"name": "get_quote", "arguments": {"symbol": "MSFT", "when": "close"}}])
    a = _call(t, 0, "get_quote", {"symbol": "AAPL"})
    b = _call(t, 1, "get_quote", {"symbol": "MSFT", "when": "close"})
    Message.objects.bulk_create([
        Message(trajectory=t, index=0, role="user", content="Quotes for AAPL and MSFT at close?"),
        Message(trajectory=t, index=1, role="assistant", content="Two quotes.", tool_calls=[a, b]),
        Message(trajectory=t, index=2, role="tool", content='{"price": 190}', tool_call_id=a["id"]),
        Message(trajectory=t, index=3, role="tool", content='{"price": 410}', tool_call_id=b["id"]),
        Message(trajectory=t, index=4, role="assistant", content="AAPL 190, MSFT 410."),
    ])
    return t


def _irrelevant(it, seq):
    from inftool_web.synth.models import Message

    t = TrajectoryFactory(iteration=it, seq=seq, mode="irrelevance", status="done", verdict="accepted",
                          difficulty="easy", score=1.0, offered_tools=[WEATHER_TOOL])
    Message.objects.bulk_create([
        Message(trajectory=t, index=0, role="user", content="Book me a flight to Lisbon."),
        Message(trajectory=t, index=1, role="assistant", content="None of my tools can book flights."),
    ])
    return t


def tool_use_trajectories(it) -> list:
    """14 accepted trajectories offering tools of different schemas: 12 single calls, one
    parallel pair with text, one irrelevance refusal."""
    out = [tool_use_trajectory(it, i, city) for i, city in enumerate(TOOL_USE_CITIES)]
    return out + [_parallel(it, 100), _irrelevant(it, 101)]
