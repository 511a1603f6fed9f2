"""The continual evaluator: every seen task, after every `eval.every` updates.

Per task, a fixed class-stratified (or uniform) subset of the test split is drawn once with a
dedicated generator and materialised once on the device, tasks concatenated in id order. Tasks are
introduced in id order, so the seen tasks are a prefix of that tensor: one evaluation is a few
forward passes over the prefix, with per-task correct counts and losses summed by `index_add_`.
Nothing is synced to the host per batch; results stay on the device until `RecordLog.flush`.
Evaluation consumes no global RNG and restores every module's training flag afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from clbench.data.stream import StreamData
from clbench.engine.records import RecordLog

Predict = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def draw_subset(
    labels: np.ndarray, size: int, stratified: bool, generator: torch.Generator
) -> np.ndarray:
    """Positions (into ``labels``) of an evaluation subset of at most ``size`` samples.

    Stratified: each class gets ``size // classes`` samples (the remainder to the first classes in
    a random order), capped by what the class has; shortfalls are filled from the remaining
    samples so the subset has ``min(size, len(labels))`` elements. Sorted for locality.
    """
    n = len(labels)
    if size < 0 or size >= n:
        return np.arange(n)
    order = torch.randperm(n, generator=generator).numpy()
    if not stratified:
        return np.sort(order[:size])
    shuffled = labels[order]
    classes = np.unique(labels)
    quota = np.full(len(classes), size // len(classes))
    quota[torch.randperm(len(classes), generator=generator).numpy()[: size % len(classes)]] += 1
    chosen = np.zeros(n, dtype=bool)
    for cls, q in zip(classes, quota, strict=True):  # one iteration per class
        chosen[np.flatnonzero(shuffled == cls)[:q]] = True
    shortfall = size - int(chosen.sum())
    if shortfall:
        chosen[np.flatnonzero(~chosen)[:shortfall]] = True
    return np.sort(order[chosen])


@contextmanager
def evaluation_mode(model: nn.Module) -> Iterator[None]:
    """``model.eval()`` + inference mode, restoring each module's own training flag afterwards."""
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        for module, flag in flags:
            module.training = flag


class ContinualEvaluator:
    """Evaluates seen tasks on fixed subsets (continual) and on full test sets (phase ends)."""

    def __init__(
        self,
        data: StreamData,
        model: nn.Module,
        predict: Predict,
        log: RecordLog,
        subset_size: int,
        stratified: bool,
        batch_size: int,
        seed: int,
        autocast: Callable[[], object],
    ) -> None:
        self.data, self.model, self.predict, self.log = data, model, predict, log
        self.batch_size = batch_size
        self.autocast = autocast
        generator = torch.Generator().manual_seed(seed)
        self.subset_indices: list[np.ndarray] = []
        for task in data.plan.tasks:
            labels = data.test_labels(task.id).numpy()
            positions = draw_subset(labels, subset_size, stratified, generator)
            self.subset_indices.append(task.test_indices[positions])
        sizes = [len(s) for s in self.subset_indices]
        self.ends = np.cumsum(sizes)  # seen tasks 0..k occupy rows [0, ends[k])
        index = torch.as_tensor(np.concatenate(self.subset_indices), dtype=torch.long)
        task_ids = torch.repeat_interleave(torch.arange(len(sizes)), torch.as_tensor(sizes))
        # every task's fixed subset, tasks concatenated in id order (seen tasks: a prefix)
        self.subset = data.make_batch(index, task_ids, split="test")
        self._subset_n = torch.as_tensor(sizes, dtype=torch.long)
        self._subset_n_device = self._subset_n.to(data.device)

    def _forward_counts(self, x, y, task, num_tasks: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-task (correct, summed loss) over one pre-built input tensor.

        Forward passes go batch by batch into one logits tensor; masking, predictions and the
        loss (logsumexp minus the target logit, i.e. cross-entropy) then run once over all of it.
        """
        logits = None
        for start in range(0, y.shape[0], self.batch_size):
            sl = slice(start, start + self.batch_size)
            with self.autocast():
                out = self.predict(x[sl], task[sl])
            if logits is None:
                logits = out.new_empty((y.shape[0], out.shape[1]), dtype=torch.float32)
            logits[sl] = out
        logits = self.data.mask_logits(logits, task)
        pred = logits.argmax(1)
        loss = torch.logsumexp(logits, 1) - logits.gather(1, y[:, None]).squeeze(1)
        device = self.data.device
        correct = torch.zeros(num_tasks, device=device).index_add_(0, task, (pred == y).float())
        loss_sum = torch.zeros(num_tasks, device=device).index_add_(0, task, loss)
        return correct, loss_sum

    def evaluate_subsets(
        self, step: int, phase: int, current_task: int, seen_upto: int
    ) -> torch.Tensor:
        """Continual evaluation of tasks ``0..seen_upto`` on their fixed subsets; returns their
        accuracies (on the device: reading them is a host sync)."""
        end = int(self.ends[seen_upto])
        s = self.subset
        with evaluation_mode(self.model):
            correct, loss = self._forward_counts(s.x[:end], s.y[:end], s.task[:end], seen_upto + 1)
        n = self._subset_n[: seen_upto + 1]
        self.log.add("subset", step, phase, current_task, correct, loss, n)
        return correct / self._subset_n_device[: seen_upto + 1]

    def evaluate_incoming(
        self, step: int, phase: int, current_task: int, index: torch.Tensor, task: torch.Tensor
    ) -> None:
        """Online accuracy: the training batch ``index`` (of tasks ``task``) as the stream
        delivers it (no augmentation, no plugin), with the weights of update ``step``, before
        any update has used it. Per task of the batch: its samples and how many are predicted
        right (kind ``online``), so the rows also record the stream's task mix per update."""
        num_tasks = self.data.plan.num_tasks
        # task ids come from the plan's batches on the host: counting them costs no device sync
        n = torch.bincount(task.cpu(), minlength=num_tasks)
        tasks = n.nonzero().flatten().tolist()
        batch = self.data.make_batch(index, task)
        with evaluation_mode(self.model):
            correct, loss = self._forward_counts(batch.x, batch.y, batch.task, num_tasks)
        ids = torch.as_tensor(tasks, device=self.data.device)
        self.log.add("online", step, phase, current_task, correct[ids], loss[ids], n[tasks], tasks)

    def evaluate_full(
        self, kind: str, step: int, phase: int, current_task: int, tasks: list[int]
    ) -> None:
        """Whole test sets of ``tasks`` (phase ends; ``init`` before training)."""
        device = self.data.device
        num_tasks = self.data.plan.num_tasks
        correct = torch.zeros(num_tasks, device=device)
        loss = torch.zeros(num_tasks, device=device)
        with evaluation_mode(self.model):
            for t in tasks:
                index = self.data.task_indices(t, "test")
                for start in range(0, len(index), self.batch_size):
                    chunk = index[start : start + self.batch_size]
                    b = self.data.make_batch(chunk, torch.full_like(chunk, t), split="test")
                    c, lo = self._forward_counts(b.x, b.y, b.task, num_tasks)
                    correct += c
                    loss += lo
        n = torch.tensor([len(self.data.plan.tasks[t].test_indices) for t in tasks])
        ids = torch.as_tensor(tasks, device=device)
        self.log.add(kind, step, phase, current_task, correct[ids], loss[ids], n, tasks=tasks)
