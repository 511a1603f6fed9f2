"""Device-resident view of a dataset under a scenario plan: forms batches from indices.

`StreamData` keeps the base dataset's inputs on the training device (uint8 images stay uint8),
together with per-task label lookup tables, input transforms and output masks. Forming a batch
from ``(indices, task ids)`` is a handful of tensor ops: gather, scale, transform per task,
normalise, look up targets. Replay buffers therefore store indices, never images.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from clbench.data.dataset import InMemoryDataset, Split
from clbench.data.transforms import DeviceTransform
from clbench.scenario.plan import ScenarioPlan


@dataclass(slots=True)  # not frozen: frozen dataclasses pay for object.__setattr__ per field
class Batch:
    """A training or evaluation batch on the device."""

    x: torch.Tensor  # normalised float inputs
    y: torch.Tensor  # model targets
    task: torch.Tensor  # per-sample task id
    index: torch.Tensor  # indices into the base split (what buffers store)

    def __len__(self) -> int:
        return int(self.y.shape[0])


Storage = Literal["device", "host"]


def split_bytes(split: Split) -> int:
    return split.x.element_size() * split.x.nelement() + split.y.element_size() * split.y.nelement()


class StreamData:
    """Batch former for one plan over one dataset, on one device.

    ``storage="device"`` keeps both splits on the device (a batch is a device-side gather).
    ``storage="host"`` keeps them in host memory, for data larger than the device should hold: a
    batch is gathered on the host, pinned and copied over (``non_blocking``). The maths after the
    gather is the same, so both give the same batches.
    """

    def __init__(
        self,
        dataset: InMemoryDataset,
        plan: ScenarioPlan,
        device: torch.device,
        storage: Storage = "device",
        channels_last: bool = False,
    ) -> None:
        self.dataset = dataset
        self.plan = plan
        self.device = device
        self.storage = storage
        # image batches in the memory format of a channels_last model (same values)
        self.channels_last = channels_last and dataset.is_image and len(dataset.input_shape) == 3
        self._splits = {
            "train": self._placed(dataset.train),
            "test": self._placed(dataset.test),
        }
        self._is_image = dataset.is_image
        shape = dataset.input_shape
        stat_shape = (1, -1) + (1,) * (len(shape) - 1) if len(shape) > 1 else (1, -1)
        mean = torch.tensor(dataset.mean, dtype=torch.float32).view(stat_shape)
        std = torch.tensor(dataset.std, dtype=torch.float32).view(stat_shape)
        # (x / 255 - mean) / std folded into one multiply-add on the uint8 batch
        self._scale = (1.0 / (255.0 * std)).to(device)
        self._shift = (mean / std).to(device)

        num_tasks, num_classes = plan.num_tasks, dataset.num_classes
        # label_table[task, base class] -> model target (-1 where the task does not own the class)
        label_table = torch.full((num_tasks, num_classes), -1, dtype=torch.long)
        output_mask = torch.zeros(num_tasks, plan.num_outputs, dtype=torch.bool)
        for task in plan.tasks:
            for cls, target in task.label_map.items():
                label_table[task.id, cls] = target
            output_mask[task.id, list(task.output_ids)] = True
        self.label_table = label_table.to(device)
        self.output_mask = output_mask.to(device)
        self._transforms = [
            None if t.transform.kind == "identity" else DeviceTransform(t.transform, shape, device)
            for t in plan.tasks
        ]
        self._any_transform = any(t is not None for t in self._transforms)

    def _placed(self, split: Split) -> Split:
        if self.storage == "device":
            return Split(split.x.to(self.device), split.y.to(self.device))
        return split  # host: each batch is pinned after its gather (pinning it all costs more)

    def make_batch(self, index: torch.Tensor, task: torch.Tensor, split: str = "train") -> Batch:
        """Gather samples ``index`` of ``split`` seen as belonging to tasks ``task``."""
        data = self._splits[split]
        if self.storage == "host":
            x, y = self._host_gather(data, index)
        else:
            index = index.to(self.device)
            x = data.x.index_select(0, index)  # index_select: ~4x faster than x[index] here
            y = data.y.index_select(0, index)
        index = index.to(self.device)
        task = task.to(self.device)
        transformed = self._transformed_tasks(task)
        if not self._is_image:
            x = x.float()
        elif not transformed:
            x = torch.mul(x, self._scale).sub_(self._shift)
        else:  # transforms work in 0..255 pixel units, before normalisation
            x = x.float()
            for task_id in transformed:
                rows = task == task_id
                x[rows] = self._transforms[task_id](x[rows], index[rows])
            x = x.mul_(self._scale).sub_(self._shift)
        y = self.label_table[task, y]
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return Batch(x=x, y=y, task=task, index=index)

    def _host_gather(self, data: Split, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch's raw inputs and labels, gathered on the host and sent to the device."""
        index = index.cpu()
        x, y = data.x.index_select(0, index), data.y.index_select(0, index)
        if self.device.type == "cuda":
            x, y = x.pin_memory(), y.pin_memory()
        return x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)

    def _transformed_tasks(self, task: torch.Tensor) -> list[int]:
        if not self._any_transform:
            return []
        # one small sync per batch, only for scenarios with input transforms
        return [t for t in torch.unique(task).tolist() if self._transforms[t] is not None]

    def mask_logits(
        self, logits: torch.Tensor, task: torch.Tensor, fill: float = float("-inf")
    ) -> torch.Tensor:
        """Task-incremental: keep only the outputs of each sample's task (others set to
        ``fill``)."""
        if not self.plan.task_ids_at_test:
            return logits
        return logits.masked_fill(~self.output_mask[task], fill)

    def task_indices(self, task_id: int, split: str) -> torch.Tensor:
        task = self.plan.tasks[task_id]
        indices = task.train_indices if split == "train" else task.test_indices
        return torch.as_tensor(indices, dtype=torch.long)

    def test_labels(self, task_id: int) -> torch.Tensor:
        """Base-dataset labels of a task's test samples (CPU), for stratified subsets."""
        return self.dataset.test.y[self.task_indices(task_id, "test")]
