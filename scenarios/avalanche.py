"""`avalanche`: an Avalanche benchmark's own stream, as a clbench plan.

Config route (data and scenario come from the same benchmark)::

    data: {name: avalanche, benchmark: SplitMNIST,
           kwargs: {n_experiences: 5, seed: 0, dataset_root: /data}}
    scenario: {name: avalanche}

The data source (``clbench/data/sources/avalanche.py``) materialises the streams and records each
sample's experience and each experience's task label; this scenario turns that back into tasks
and phases: phase k = train experience k, with the benchmark's class order and targets unchanged
(Avalanche's targets are the model outputs, so an Avalanche strategy sees exactly what it sees in
Avalanche). The setting follows the benchmark: ``task`` when experiences carry different task
labels, ``class`` when their classes are disjoint, ``domain`` otherwise (e.g. PermutedMNIST).
Test experience k is task k's test set; a single test experience (``new_instances``-style
benchmarks) is split by class (class/task) or shared by all tasks (domain).

Python route, for benchmark objects built in code (``nc_benchmark``, ``benchmark_from_datasets``,
...): ``plan, dataset = from_avalanche(benchmark)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from clbench.registry import SCENARIOS
from clbench.scenario import ScenarioBuilder
from clbench.scenario.plan import ScenarioPlan, Setting, Task
from clbench.scenarios._common import make_plan, param_error

if TYPE_CHECKING:
    from clbench.data.dataset import InMemoryDataset


@SCENARIOS.register("avalanche")
class AvalancheScenario(ScenarioBuilder):
    summary: ClassVar[str] = (
        "[Avalanche] an Avalanche benchmark's stream (class order, task labels); "
        "use with data.name=avalanche"
    )

    class Config(ScenarioBuilder.Config):
        pass

    _setting: Setting = "class"

    @property
    def setting(self) -> Setting:
        return self._setting

    def build(self, dataset: InMemoryDataset, seed: int) -> ScenarioPlan:
        # the loader module imports torch: loaded here, not when the registry lists scenarios
        from clbench.data.sources.avalanche import experience_ids

        train_exp, test_exp = experience_ids(dataset.train), experience_ids(dataset.test)
        names = dataset.domain_names or ()
        task_labels = [int(n.rsplit(":task", 1)[1]) for n in names]
        n = len(task_labels)
        y_train, y_test = dataset.train.y.numpy(), dataset.test.y.numpy()
        classes = [tuple(sorted(set(y_train[train_exp == i].tolist()))) for i in range(n)]
        flat = [c for group in classes for c in group]
        if len(set(task_labels)) > 1:
            self._setting = "task"
        elif len(flat) == len(set(flat)):
            self._setting = "class"
        else:
            self._setting = "domain"
        n_test = int(test_exp.max()) + 1 if len(test_exp) else 0
        if n_test not in (n, 1):
            raise param_error("name", "avalanche", f"1 or {n} test experiences, not {n_test}")
        tasks = []
        for i in range(n):
            if n_test == n:
                test_idx = np.flatnonzero(test_exp == i)
            elif self._setting == "domain":
                test_idx = np.arange(len(y_test))
            else:
                test_idx = np.flatnonzero(np.isin(y_test, classes[i]))
            tasks.append(
                Task(
                    id=i,
                    classes=classes[i],
                    train_indices=np.flatnonzero(train_exp == i).astype(np.int64),
                    test_indices=test_idx.astype(np.int64),
                    label_map={c: c for c in classes[i]},
                    output_ids=classes[i],
                    name=names[i],
                )
            )
        return make_plan(self, dataset, tasks, num_outputs=dataset.num_classes)


def from_avalanche(
    benchmark: Any, name: str = "avalanche", max_gb: float = 8.0
) -> tuple[ScenarioPlan, InMemoryDataset]:
    """Convert an Avalanche benchmark object into a clbench plan and its in-memory dataset."""
    from clbench.data.sources.avalanche import benchmark_to_dataset

    dataset = benchmark_to_dataset(benchmark, name=name, max_gb=max_gb)
    builder = AvalancheScenario(AvalancheScenario.Config())
    return builder.build(dataset, seed=0), dataset
