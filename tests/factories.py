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
