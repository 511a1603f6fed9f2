"""Property tests over random configs: every invalid one is refused with exit code 2 before any
folder is written; every small valid one runs to a finished folder with metrics in range."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clbench.cli import main

SMALL = {
    "data.name": "synthetic",
    "data.num_classes": 4,
    "data.dim": 8,
    "data.train_per_class": 20,
    "data.test_per_class": 10,
    "scenario.n_experiences": 2,
    "model.hidden_sizes": "[16]",
    "train.epochs": 1,
    "output.plot": "false",
    "threads": 1,
}

# (override, why it is invalid): each must be refused before any work
INVALID = [
    "train.epochs=0",
    "train.epochs=-2",
    "train.epochs=many",
    "train.batch_size=0",
    "train.lr=0",
    "train.lr=-0.1",
    "train.optimizer=rmsprop",
    "train.momentum=1.5",
    "eval.every=0",
    "eval.subset_size=0",
    "eval.subset_size=-7",
    "eval.counter=weekly",
    "strategy.name=no_such_method",
    "strategy.buffer_size=-3",
    "scenario.name=no_such_scenario",
    "scenario.n_experiences=3",  # 4 classes do not split into 3 tasks
    "data.name=imagenet",
    "data.noise=lots",
    "precision=fp8",
    "device=tpu",
    "seed=-1",
    "output.name=../escaped",
    "output.name=a/b",
    "train.epoks=2",
    "checkpoint.every=-1",
    "trainepochs",
    "strategy.name=view_batch",  # a plugin, not a strategy
    "strategy.name=fpf",
    "plugins.nope={}",
    "plugins.er={}",  # a strategy, not a plugin
    "plugins.view_batch.bogus=1",
    "plugins.fpf.iterations=-1",
]

VALID_CHOICES = {
    "strategy.name": st.sampled_from(["naive", "er", "joint", "k_fpf"]),
    # FPF finetunes after any of them (its own memory where the strategy has none)
    "plugins.fpf": st.sampled_from(["{}", "{when: every_phase, iterations: 3}"]),
    "scenario.name": st.sampled_from(["class_incremental", "task_incremental"]),
    "scenario.n_experiences": st.sampled_from([1, 2, 4]),
    "train.batch_size": st.integers(2, 24),
    "train.optimizer": st.sampled_from(["sgd", "adam", "adamw"]),
    "train.lr": st.sampled_from([0.001, 0.01, 0.1]),
    "eval.every": st.integers(1, 6),
    "eval.subset_size": st.sampled_from([-1, 3, 10]),
    "eval.counter": st.sampled_from(["global", "per_phase", "per_epoch"]),
    "checkpoint.every": st.sampled_from([0, 2, 7]),
    "seed": st.integers(0, 3),
}


def overrides(root: Path, chosen: dict[str, object], extra: list[str]) -> list[str]:
    values = {**SMALL, **chosen, "output.root": str(root)}
    return [f"{k}={v}" for k, v in values.items()] + extra


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    chosen=st.fixed_dictionaries({}, optional=VALID_CHOICES),
    bad=st.lists(st.sampled_from(INVALID), min_size=1, max_size=3, unique=True),
)
def test_every_invalid_config_exits_2_and_writes_nothing(chosen, bad):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "results"
        assert main(["run", "--quiet", *overrides(root, chosen, bad)]) == 2
        assert not root.exists()


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chosen=st.fixed_dictionaries({}, optional=VALID_CHOICES))
def test_every_small_valid_config_runs_to_a_finished_folder(chosen):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "results"
        assert main(["run", "--quiet", *overrides(root, chosen, [])]) == 0
        (run_dir,) = root.iterdir()
        assert json.loads((run_dir / "status.json").read_text())["status"] == "finished"
        metrics = json.loads((run_dir / "summary.json").read_text())["metrics"]
        assert 0 <= metrics["final_acc"] <= 1
        assert all(0 <= a <= 1 for a in metrics["per_task_final_acc"])


# ------------------------------------------------------------------------ hostile inputs

VALID_YAML = Path("configs/stability_gap/split_digits_er.yaml").read_bytes()
# fragments that make YAML hostile: aliases, tags, duplicates, non-finite, bools, bad bytes
HOSTILE = [
    b"&a ",
    b"*a",
    b"!!python/object/apply:os.system ",
    b"\nseed: 1\nseed: 2\n",
    b".inf",
    b".nan",
    b"true",
    b"\xff",
    b"\x00",
    b"[",
    b"{",
    b": ",
    b"\n  - ",
    b"1.0e+30",
    b"<<: *a\n",
    b"\t",
    b"'",
    b"%YAML 1.1\n",
    b"---\n",
    b"? [a]\n: 1\n",
]


YAML_EDITS = st.lists(
    st.tuples(
        st.integers(0, len(VALID_YAML)),
        st.integers(0, 8),
        st.one_of(st.sampled_from(HOSTILE), st.binary(max_size=6)),
    ),
    min_size=1,
    max_size=4,
)
SHORT = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LONG = settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SHORT
@given(edits=YAML_EDITS)
def test_random_yaml_mutations_exit_2_naming_the_file_or_field_or_resolve(edits):
    check_yaml_mutation(edits)


@pytest.mark.slow
@LONG
@given(edits=YAML_EDITS)
def test_random_yaml_mutations_long_form(edits):
    check_yaml_mutation(edits)


def check_yaml_mutation(edits):
    """Splice/delete bytes of a valid config: a valid config or exit 2 with one bounded line
    naming the file or a field; never a traceback (hypothesis reports any exception)."""
    import contextlib
    import io

    data = VALID_YAML
    for position, cut, insert in edits:
        data = data[:position] + insert + data[position + cut :]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mutated.yaml"
        path.write_bytes(data)
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main(["run", str(path), "--print-config"])
    message = err.getvalue()
    assert code in (0, 2), message
    if code == 2:
        assert message.startswith("clbench: error:") and len(message.splitlines()) == 1
        assert len(message) < 2000
        field = message.removeprefix("clbench: error: ").split(":", 1)[0]
        section = field.split(".")[0].split("[")[0]
        named = "mutated.yaml" in message or section in SECTIONS
        assert named or "not a known setting" in message, message


SECTIONS = {
    *("data", "scenario", "model", "strategy", "plugins", "train", "eval", "metrics"),
    "output",
    *("checkpoint", "seed", "device", "precision", "deterministic", "threads", "config"),
}


_FINISHED: dict[str, Path] = {}


def _finished_run() -> Path:
    """One small finished run, made once for the damage tests below."""
    if "run" not in _FINISHED:
        root = Path(tempfile.mkdtemp()) / "base"
        assert main(["run", "--quiet", *overrides(root, {}, [])]) == 0
        _FINISHED["run"] = next(root.iterdir())
    return _FINISHED["run"]


DAMAGE = st.one_of(
    st.tuples(st.just("truncate"), st.floats(0, 1)),
    st.tuples(
        st.just("flip"),
        st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), min_size=1, max_size=5),
    ),
)
COMMANDS = st.sampled_from(["report", "info", "plot"])
RESULT_FILES = ["summary.json", "status.json", "config.yaml"]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(RESULT_FILES), damage=DAMAGE, command=COMMANDS)
def test_random_byte_damage_to_result_files_is_named_or_harmless(name, damage, command):
    check_byte_damage(name, damage, command)


@pytest.mark.slow
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from([*RESULT_FILES, "records.parquet", "manifest.json"]),
    damage=DAMAGE,
    command=COMMANDS,
)
def test_random_byte_damage_long_form(name, damage, command):
    check_byte_damage(name, damage, command)


def check_byte_damage(name, damage, command):
    import contextlib
    import io
    import shutil

    source = _finished_run()
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "results" / source.name
        shutil.copytree(source, run)
        (run / "digests.json").unlink(missing_ok=True)  # exercise the readers themselves
        data = bytearray((run / name).read_bytes())
        kind, how = damage
        if kind == "truncate":
            data = data[: int(len(data) * how)]
        else:
            for where, byte in how:
                if data:
                    data[min(int(where * len(data)), len(data) - 1)] = byte
        (run / name).write_bytes(bytes(data))
        argv = {
            "report": ["report", str(run.parent)],
            "info": ["info", str(run)],
            "plot": ["plot", str(run), "--out", str(Path(tmp) / "plots")],
        }[command]
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main(argv)
    message = err.getvalue()
    assert code in (0, 2), message
    if code == 2:
        assert message.startswith("clbench: error:") and len(message) < 2000, message
        assert name in message or "no finished run" in message, message
