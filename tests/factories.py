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
    kind = Trajectory.Kind.SINGLE
