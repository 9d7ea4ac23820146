"""The shape of the test data, defined once. Factories build plain rows (named tuples), which
every strategy's loader writes with COPY; nothing here touches a database.

Text fields use ``Lorem``, which draws words from Faker's own English word list with
factory-boy's seeded generator: the same kind of text as ``Faker("sentence")`` at a fraction of
the cost, which matters at a million rows. For the same reason tasks and subtasks, 95% of the
rows, are made with ``RowFactory.rows``.
"""

from datetime import UTC, datetime
from typing import Any, NamedTuple

import factory
import factory.random
from faker.providers.lorem.en_US import Provider as LoremProvider


class UserRow(NamedTuple):
    email: str
    first_name: str
    last_name: str
    password: str
    is_active: bool
    date_joined: datetime


class ProjectRow(NamedTuple):
    name: str
    details: str


class TaskRow(NamedTuple):
    project: int  # index into TenantData.projects
    name: str
    is_complete: bool
    details: str


class SubtaskRow(NamedTuple):
    task: int  # index into TenantData.tasks
    name: str
    is_complete: bool
    details: str


# Fixed bounds: dates relative to "now" would make the data differ from day to day.
JOINED_FROM = datetime(2020, 1, 1, tzinfo=UTC)
JOINED_TO = datetime(2025, 12, 31, tzinfo=UTC)
WORDS = tuple(LoremProvider.word_list)


class Draw(factory.declarations.BaseDeclaration):
    """A declaration whose value depends only on the seeded generator, so ``RowFactory.rows``
    can evaluate it without factory-boy's per-object machinery."""

    def evaluate(self, instance: object, step: object, extra: object) -> object:
        return self.draw()

    def draw(self) -> object:
        raise NotImplementedError


class Lorem(Draw):
    """``words`` random words (one sentence), or ``sentences`` sentences of 6 to 12 words."""

    def __init__(self, words: int = 0, sentences: int = 0) -> None:
        super().__init__()
        self.words = words
        self.sentences = sentences

    def draw(self) -> str:
        rng = factory.random.randgen
        if self.words:
            return " ".join(rng.choices(WORDS, k=self.words)).capitalize()
        return " ".join(
            " ".join(rng.choices(WORDS, k=rng.randint(6, 12))).capitalize() + "."
            for _ in range(self.sentences)
        )


class Chance(Draw):
    def __init__(self, probability: float) -> None:
        super().__init__()
        self.probability = probability

    def draw(self) -> bool:
        return bool(factory.random.randgen.random() < self.probability)


class RowFactory(factory.Factory):
    """A factory whose rows can also be made in bulk.

    ``rows(n, **fixed)`` gives what ``build_batch(n, **fixed)`` gives, drawing from the seeded
    generator in the same order, at a fraction of the cost: factory-boy's builder costs about
    26 µs a row, which is most of the time at a million rows. A factory with any declaration
    other than a plain value or a ``Draw`` uses ``build_batch`` instead.
    """

    class Meta:
        abstract = True

    @classmethod
    def rows(cls, count: int, **fixed: Any) -> list[Any]:
        declarations = cls._meta.declarations
        plan: list[tuple[str, Any]] = []
        for name, declaration in declarations.items():
            if name in fixed:
                plan.append((name, None))
            elif isinstance(declaration, Draw):
                plan.append((name, declaration.draw))
            elif isinstance(declaration, factory.declarations.BaseDeclaration):
                return list(cls.build_batch(count, **fixed))
            else:
                fixed.setdefault(name, declaration)
                plan.append((name, None))
        model = cls._meta.model
        return [
            model(**{name: fixed[name] if draw is None else draw() for name, draw in plan})
            for _ in range(count)
        ]


def account_name() -> str:
    return str(factory.Faker("company").evaluate(None, None, {"locale": None}))


class UserRowFactory(factory.Factory):
    class Meta:
        model = UserRow

    class Params:
        number = 1
        domain = "example.com"

    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    email = factory.LazyAttribute(
        lambda o: f"{o.first_name}.{o.last_name}.{o.number}@{o.domain}".lower().replace(" ", "")
    )
    password = ""
    is_active = Chance(0.9)
    date_joined = factory.Faker(
        "date_time_between", start_date=JOINED_FROM, end_date=JOINED_TO, tzinfo=UTC
    )


class ProjectRowFactory(factory.Factory):
    class Meta:
        model = ProjectRow

    name = factory.Faker("catch_phrase")
    details = Lorem(sentences=2)


class TaskRowFactory(RowFactory):
    class Meta:
        model = TaskRow

    project = 0
    name = Lorem(words=4)
    is_complete = Chance(0.5)
    details = Lorem(sentences=2)


class SubtaskRowFactory(RowFactory):
    class Meta:
        model = SubtaskRow

    task = 0
    name = Lorem(words=3)
    is_complete = Chance(0.5)
    details = Lorem(sentences=1)
