"""The factories define the data once; the bulk path must give exactly what they give."""

import factory.random
import pytest

from shared.factories import RowFactory, SubtaskRowFactory, TaskRowFactory
from shared.testdata import Volumes, generate_tenant


@pytest.mark.parametrize(
    ("row_factory", "fixed"), [(TaskRowFactory, {"project": 4}), (SubtaskRowFactory, {"task": 9})]
)
def test_rows_equal_build_batch(row_factory, fixed):
    factory.random.reseed_random("same seed")
    built = row_factory.build_batch(40, **fixed)
    factory.random.reseed_random("same seed")
    assert row_factory.rows(40, **fixed) == built
    assert len({row.name for row in built}) > 30


def test_a_declaration_rows_cannot_evaluate_falls_back_to_factory_boy():
    class WithSequence(SubtaskRowFactory):
        name = factory.Sequence(lambda n: f"subtask {n}")

    rows = WithSequence.rows(3, task=1)
    first = int(rows[0].name.split()[1])
    assert [r.name for r in rows] == [f"subtask {n}" for n in range(first, first + 3)]
    assert issubclass(WithSequence, RowFactory)


def test_generation_is_deterministic_per_account():
    assert generate_tenant(7) == generate_tenant(7)
    assert generate_tenant(7) != generate_tenant(8)
    assert generate_tenant(7, seed=1) != generate_tenant(7)


def test_volumes_are_respected():
    volumes = Volumes(users=(2, 2), projects=(3, 3), tasks=(1, 2), subtasks=(4, 4))
    data = generate_tenant(11, volumes=volumes)
    assert len(data.users) == 2 and len(data.projects) == 3
    assert 3 <= len(data.tasks) <= 6
    assert len(data.subtasks) == 4 * len(data.tasks)
    assert {u.email.split("@")[1] for u in data.users} == {"tenant-11.example"}
    assert len({u.email for u in data.users}) == 2
