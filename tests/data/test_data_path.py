"""The batch path: seeded phase iteration, batch forming, device transforms, logit masking."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from clbench.data.batches import PhaseBatches
from clbench.data.stream import StreamData
from clbench.scenario.plan import InputTransform, PhasePart, ScenarioPlan, Task, sequential_phases


def two_task_plan(dataset, setting="class", transform=None) -> ScenarioPlan:
    y_train, y_test = dataset.train.y.numpy(), dataset.test.y.numpy()
    tasks = []
    for t, classes in enumerate([(0, 1), (2, 3)]):
        tasks.append(
            Task(
                id=t,
                classes=classes,
                train_indices=np.flatnonzero(np.isin(y_train, classes)),
                test_indices=np.flatnonzero(np.isin(y_test, classes)),
                label_map={c: c for c in classes},
                output_ids=classes,
                transform=transform[t] if transform else InputTransform(),
            )
        )
    return ScenarioPlan(
        "test", setting, dataset.name, dataset.checksum, 4, tuple(tasks), sequential_phases(tasks)
    )


def test_phase_batches_cover_each_sample_once_per_epoch():
    parts = [PhasePart(0, np.arange(0, 10)), PhasePart(1, np.arange(50, 57))]
    batches = PhaseBatches(parts, batch_size=4, generator=torch.Generator().manual_seed(0))
    assert len(batches) == 4  # 17 = 4 + 4 + 4 + 5: the lone 17th sample joins the last batch
    assert [len(i) for i, _ in batches.epoch()] == [4, 4, 4, 5]
    seen = torch.cat([index for index, _ in batches.epoch()])
    assert sorted(seen.tolist()) == list(range(10)) + list(range(50, 57))
    tasks = {
        int(i): int(t) for index, task in batches.epoch() for i, t in zip(index, task, strict=True)
    }
    assert all(tasks[i] == (0 if i < 10 else 1) for i in tasks)


def test_phase_batches_are_seeded():
    parts = [PhasePart(0, np.arange(100))]

    def order(seed):
        b = PhaseBatches(parts, 8, torch.Generator().manual_seed(seed))
        return torch.cat([i for i, _ in b.epoch()]).tolist()

    assert order(1) == order(1)
    assert order(1) != order(2)


def test_drop_last():
    b = PhaseBatches(
        [PhasePart(0, np.arange(10))], 4, torch.Generator().manual_seed(0), drop_last=True
    )
    assert len(b) == 2 and all(len(i) == 4 for i, _ in b.epoch())


def test_make_batch_maps_labels_and_scales(image_dataset):
    plan = two_task_plan(image_dataset)
    data = StreamData(image_dataset, plan, torch.device("cpu"))
    index = torch.tensor([0, 30])
    batch = data.make_batch(index, torch.tensor([0, 1]))
    assert batch.y.tolist() == [0, 2]
    assert batch.x.dtype == torch.float32
    assert torch.allclose(batch.x[1], torch.full((1, 4, 4), 30 / 255))


def test_permutation_transform_is_fixed_per_task(image_dataset):
    perm = InputTransform("permutation", seed=3)
    plan = two_task_plan(image_dataset, setting="domain", transform=[InputTransform(), perm])
    data = StreamData(image_dataset, plan, torch.device("cpu"))
    image_dataset.train.x[5].view(-1)[:] = torch.arange(16, dtype=torch.uint8)
    plain = data.make_batch(torch.tensor([5]), torch.tensor([0])).x
    permuted = data.make_batch(torch.tensor([5, 5]), torch.tensor([1, 1])).x
    assert not torch.equal(plain[0], permuted[0])
    assert torch.equal(permuted[0], permuted[1])
    assert sorted(permuted[0].flatten().tolist()) == sorted(plain[0].flatten().tolist())


@pytest.mark.parametrize(
    "kind,kw", [("rotation", {"degrees": 90.0}), ("noise", {"std": 0.2, "seed": 1})]
)
def test_rotation_and_noise_are_deterministic(image_dataset, kind, kw):
    plan = two_task_plan(
        image_dataset, setting="domain", transform=[InputTransform(), InputTransform(kind, **kw)]
    )
    image_dataset.train.x[3:5] = (
        torch.arange(16, dtype=torch.uint8).view(1, 1, 4, 4) * 10
    )  # not rotation-invariant
    data = StreamData(image_dataset, plan, torch.device("cpu"))
    a = data.make_batch(torch.tensor([3, 4]), torch.tensor([1, 1])).x
    b = data.make_batch(torch.tensor([3, 4]), torch.tensor([1, 1])).x
    plain = data.make_batch(torch.tensor([3, 4]), torch.tensor([0, 0])).x
    assert torch.equal(a, b)
    assert not torch.equal(a, plain)


def test_task_incremental_masks_other_tasks_outputs(image_dataset):
    data = StreamData(
        image_dataset, two_task_plan(image_dataset, setting="task"), torch.device("cpu")
    )
    logits = torch.zeros(2, 4)
    masked = data.mask_logits(logits, torch.tensor([0, 1]))
    assert torch.isinf(masked[0, 2:]).all() and torch.isfinite(masked[0, :2]).all()
    assert torch.isinf(masked[1, :2]).all() and torch.isfinite(masked[1, 2:]).all()
    class_il = StreamData(image_dataset, two_task_plan(image_dataset), torch.device("cpu"))
    assert torch.equal(class_il.mask_logits(logits, torch.tensor([0, 1])), logits)


def test_lone_trailing_sample_joins_the_previous_batch():
    """A last batch of one sample would break BatchNorm in train mode; it is merged instead."""
    b = PhaseBatches([PhasePart(0, np.arange(9))], 4, torch.Generator().manual_seed(0))
    sizes = [len(i) for i, _ in b.epoch()]
    assert len(b) == 2 and sizes == [4, 5]
    b = PhaseBatches([PhasePart(0, np.arange(10))], 4, torch.Generator().manual_seed(0))
    assert [len(i) for i, _ in b.epoch()] == [4, 4, 2]
    b = PhaseBatches([PhasePart(0, np.arange(1))], 4, torch.Generator().manual_seed(0))
    assert [len(i) for i, _ in b.epoch()] == [1]
