"""Device-resident view of a dataset under a scenario plan: forms batches from indices.

`StreamData` keeps the base dataset's inputs on the training device (uint8 images stay uint8),
together with per-task label lookup tables, input transforms and output masks. Forming a batch
from ``(indices, task ids)`` is a handful of tensor ops: gather, scale, transform per task,
normalise, look up targets. Replay buffers therefore store indices, never images.

With the data off the device (``storage`` ``host`` or ``memmap``) on a GPU, `StreamData.prefetching`
looks one training batch ahead: that batch's host gather and pinned copy are issued on a side CUDA
stream before the current batch is handed out, so the copy overlaps the current update.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Literal, TypeVar

import numpy as np
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

    @staticmethod
    def joined(*batches: Batch) -> Batch:
        """The batches one after the other (e.g. a new batch and its replayed samples)."""
        if len(batches) == 1:
            return batches[0]
        return Batch(*(torch.cat([getattr(b, f) for b in batches]) for f in _BATCH_FIELDS))


_BATCH_FIELDS = ("x", "y", "task", "index")
Storage = Literal["device", "host", "memmap"]
B = TypeVar("B", bound=tuple[torch.Tensor, torch.Tensor])


@dataclass(slots=True)
class _Ahead:
    """A training batch's stored rows, gathered and sent to the device ahead of its use."""

    index: torch.Tensor  # the very tensor the batch iterator yielded (matched by identity)
    x: torch.Tensor
    y: torch.Tensor
    ready: torch.cuda.Event | None  # recorded on the copy stream after the copies (CUDA only)


def split_bytes(split: Split) -> int:
    return split.x.element_size() * split.x.nelement() + split.y.element_size() * split.y.nelement()


class StreamData:
    """Batch former for one plan over one dataset, on one device.

    ``storage="device"`` keeps both splits on the device (a batch is a device-side gather).
    ``storage="host"`` keeps them in host memory, for data larger than the device should hold: a
    batch is gathered on the host, pinned and copied over (``non_blocking``). ``storage="memmap"``
    is ``host`` over a dataset memory-mapped from the cache (`clbench.data.cache`): the rows are
    gathered with numpy in ascending file order from the page cache. The maths after the gather is
    the same, so all give the same batches.

    ``prefetch`` (default: on for ``host``/``memmap`` on a CUDA device, where a copy can overlap
    compute; off elsewhere, where there is nothing to overlap) makes `prefetching` look one
    training batch ahead. Tests force it on a CPU to check the batches stay the same.
    """

    def __init__(
        self,
        dataset: InMemoryDataset,
        plan: ScenarioPlan,
        device: torch.device,
        storage: Storage = "device",
        channels_last: bool = False,
        prefetch: bool | None = None,
    ) -> None:
        self.dataset = dataset
        self.plan = plan
        self.device = device
        self.storage = storage
        off_device = storage != "device"
        self.prefetch = off_device and device.type == "cuda" if prefetch is None else prefetch
        # copies of batches gathered ahead go on their own stream, to overlap the current update
        on_gpu = self.prefetch and off_device and device.type == "cuda"
        self._copy_stream = torch.cuda.Stream(device) if on_gpu else None
        self._ahead: list[_Ahead] = []
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
        # host/memmap: each batch is pinned after its gather (pinning it all costs more)
        return split

    def make_batch(self, index: torch.Tensor, task: torch.Tensor, split: str = "train") -> Batch:
        """Gather samples ``index`` of ``split`` seen as belonging to tasks ``task``."""
        ahead = self._take_ahead(index) if split == "train" and self._ahead else None
        x, y = ahead if ahead is not None else self._rows(self._splits[split], index)
        index = index.to(self.device)
        task = task.to(self.device)
        transformed = self._transformed_tasks(task)
        if not self._is_image:
            x = x.float()
        elif not transformed:
            # the same float32 products either way; on a CPU uint8 * float32 first makes a float
            # copy of x, so cast once and scale in place (halves the peak of a large batch, e.g.
            # the evaluator's subsets), while CUDA casts on the fly inside one kernel
            x = torch.mul(x, self._scale) if x.is_cuda else x.float().mul_(self._scale)
            x = x.sub_(self._shift)
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

    def _rows(self, data: Split, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The stored inputs and labels of samples ``index``, on the device (images still uint8)."""
        if self.storage == "device":
            index = index.to(self.device)
            # index_select: ~4x faster than x[index] here
            return data.x.index_select(0, index), data.y.index_select(0, index)
        index = index.cpu()
        if self.storage == "memmap":
            x, y = _gather_ascending(data.x, index), _gather_ascending(data.y, index)
        else:
            x, y = data.x.index_select(0, index), data.y.index_select(0, index)
        if self.device.type == "cuda":
            x, y = x.pin_memory(), y.pin_memory()
        return x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)

    # -- one training batch ahead -----------------------------------------------------------
    def prefetching(self, batches: Iterable[B]) -> Iterable[B]:
        """``batches`` (``(indices, task ids)`` of one epoch), each gathered and sent to the device
        before the one before it is handed out when ``prefetch`` is on; unchanged otherwise.

        `make_batch` then takes the rows of a training batch whose index tensor is the one
        yielded here (by identity); any other batch (replay, a strategy's own) is gathered as
        usual. Looking ahead pulls the iterator one batch early, so it must not depend on the
        update in between (``PhaseBatches`` and view-batch's iterator draw their order when the
        epoch starts).
        """
        if not self.prefetch:
            return batches
        return self._look_ahead(batches)

    def _look_ahead(self, batches: Iterable[B]) -> Iterator[B]:
        self._ahead.clear()
        pending = iter(batches)
        current = next(pending, None)
        if current is None:
            return
        self._send_ahead(current[0])
        for upcoming in pending:
            self._send_ahead(upcoming[0])
            yield current
            current = upcoming
        yield current

    def _send_ahead(self, index: torch.Tensor) -> None:
        data = self._splits["train"]
        ready = None
        if self._copy_stream is None:
            x, y = self._rows(data, index)
        else:  # CUDA: host gather + pin now, the copies queued on the side stream
            with torch.cuda.stream(self._copy_stream):
                x, y = self._rows(data, index)
            ready = torch.cuda.Event()
            ready.record(self._copy_stream)
        self._ahead.append(_Ahead(index, x, y, ready))
        del self._ahead[:-2]  # this batch and the one being handed out; older ones went unused

    def _take_ahead(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The rows sent ahead for this very ``index`` tensor, ready to use on the current
        stream; None if it was not sent ahead."""
        for i, ahead in enumerate(self._ahead):
            if ahead.index is index:
                del self._ahead[: i + 1]
                if ahead.ready is not None:  # CUDA: the compute stream waits for the copies,
                    stream = torch.cuda.current_stream(self.device)
                    stream.wait_event(ahead.ready)
                    # and the allocator keeps their memory until that stream is done with it
                    ahead.x.record_stream(stream)
                    ahead.y.record_stream(stream)
                return ahead.x, ahead.y
        return None

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


def _gather_ascending(stored: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Rows ``index`` of a (memory-mapped) tensor, read in ascending row order, which is file
    order, and returned in ``index`` order.

    Numpy fancy indexing on the map copies the rows into a fresh, writable array, which
    `torch.from_numpy` takes as it is (no copy, no warning about read-only memory).
    """
    rows = index.numpy()
    if len(rows) < 2 or bool((rows[1:] >= rows[:-1]).all()):  # ascending already (evaluation)
        return torch.from_numpy(stored.numpy()[rows])
    order = np.argsort(rows, kind="stable")
    gathered = stored.numpy()[rows[order]]
    out = np.empty_like(gathered)
    out[order] = gathered
    return torch.from_numpy(out)
