"""`clbench export`: TensorBoard event files and offline W&B runs, read back and compared with the
run's records, training loss, metrics and config."""

from __future__ import annotations

import json
import os
import struct
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clbench.cli import main
from clbench.export.wandb import wandb_id
from tests.reporting.helpers import write_hand_runs

# seed-0 hand run (tests/reporting/helpers.py): subset accuracy per task and step, full evaluations
ACC = {0: {0: 0.0, 1: 0.5, 2: 1.0, 3: 0.6, 4: 0.8}, 1: {3: 0.4, 4: 0.9}}
ACC_FULL = {0: {2: 1.0, 4: 0.7}, 1: {2: 0.1, 4: 0.9}}
LOSS = {1: 2.0, 2: 1.5, 3: 1.0, 4: 0.5}


@pytest.fixture
def hand_run(real_runs: Path, tmp_path: Path) -> Path:
    """One finished run folder holding the hand-made seed-0 records."""
    run = write_hand_runs(real_runs, tmp_path / "all")["a0"]
    single = tmp_path / "results" / run.name
    single.parent.mkdir()
    run.rename(single)
    return single


def _scalars(accumulator: Any, tag: str) -> dict[int, float]:
    return {e.step: e.value for e in accumulator.Scalars(tag)}


def test_tensorboard_scalars_equal_the_records(hand_run: Path, tmp_path: Path, capsys: Any) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "tb"
    assert main(["export", str(hand_run.parent), "--to", "tensorboard", "--out", str(out)]) == 0
    assert "exported 1 run(s); view with: tensorboard --logdir" in capsys.readouterr().out

    events = EventAccumulator(str(out / hand_run.name), size_guidance={"scalars": 0})
    events.Reload()
    for task, expected in ACC.items():
        assert _scalars(events, f"acc/task_{task}") == pytest.approx(expected)
    for task, expected in ACC_FULL.items():
        assert _scalars(events, f"acc_full/task_{task}") == pytest.approx(expected)
    assert _scalars(events, "train/loss") == pytest.approx(LOSS)
    assert _scalars(events, "metric/final_acc") == pytest.approx({4: 0.8})
    assert "metric/fwt" not in events.Tags()["scalars"]  # undefined metric: not logged
    assert "config/text_summary" in events.Tags()["tensors"]
    assert events.PluginTagToContent("hparams")  # HParams dashboard entry

    # a second export is refused without --force and replaces, never duplicates, with it
    assert main(["export", str(hand_run), "--to", "tensorboard", "--out", str(out)]) == 0
    assert "exported before" in capsys.readouterr().out
    assert main(["export", str(hand_run), "--to", "tensorboard", "--out", str(out), "--force"]) == 0
    again = EventAccumulator(str(out / hand_run.name), size_guidance={"scalars": 0})
    again.Reload()
    assert len(again.Scalars("acc/task_0")) == len(ACC[0])


def wandb_records(path: Path) -> Iterator[Any]:
    """Records of an offline ``.wandb`` file: a 7-byte header, then LevelDB-log chunks."""
    from wandb.proto import wandb_internal_pb2

    raw = path.read_bytes()
    assert raw[:4] == b":W&B"
    block, pos, data = 32768, 7, b""
    while pos + 7 <= len(raw):
        if block - pos % block < 7:  # block trailer padding
            pos += block - pos % block
            continue
        _checksum, length, kind = struct.unpack("<IHB", raw[pos : pos + 7])
        data += raw[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # full record, or last chunk of one
            record = wandb_internal_pb2.Record()
            record.ParseFromString(data)
            data = b""
            yield record


def _key(item: Any) -> str:
    """Keys holding "/" are stored split into ``nested_key``."""
    return item.key or "/".join(item.nested_key)


@pytest.fixture
def no_network_wandb(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No API key, no netrc, an unreachable server and an 'online' setting that must be ignored."""
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("WANDB_MODE", "online")


@pytest.mark.usefixtures("no_network_wandb")
def test_wandb_offline_run_holds_config_history_and_summary(
    hand_run: Path, tmp_path: Path, capsys: Any
) -> None:
    out = tmp_path / "wb"
    args = ["export", str(hand_run), "--to", "wandb", "--out", str(out), "--project", "cl"]
    assert main(args) == 0
    assert os.environ["WANDB_MODE"] == "online"  # the user's environment is restored
    (folder,) = (out / "wandb").glob("offline-run-*")
    assert str(folder) in capsys.readouterr().out
    records = list(wandb_records(next(folder.glob("*.wandb"))))

    (run,) = [r.run for r in records if r.WhichOneof("record_type") == "run"]
    assert run.run_id == wandb_id(hand_run.name) and run.display_name == hand_run.name
    assert run.project == "cl"
    config = {item.key: json.loads(item.value_json) for item in run.config.update}
    assert config["strategy"]["name"] == "er" and config["seed"] == 0

    history: dict[int, dict[str, float]] = {}
    for record in records:
        if record.WhichOneof("record_type") == "history":
            items = {_key(i): json.loads(i.value_json) for i in record.history.item}
            history[int(items.pop("_step"))] = items
    for task, expected in ACC.items():
        got = {s: h[f"acc/task_{task}"] for s, h in history.items() if f"acc/task_{task}" in h}
        assert got == pytest.approx(expected)
    assert {s: h["train/loss"] for s, h in history.items() if "train/loss" in h} == LOSS

    summary: dict[str, Any] = {}
    for record in records:
        if record.WhichOneof("record_type") == "summary":
            summary.update({_key(i): json.loads(i.value_json) for i in record.summary.update})
    assert summary["metric/final_acc"] == pytest.approx(0.8)

    assert main(args) == 0  # exported before: skipped, still one folder
    assert "exported before" in capsys.readouterr().out
    assert len(list((out / "wandb").glob("offline-run-*"))) == 1


@pytest.mark.parametrize(
    ("target", "blocked"),
    [
        ("wandb", ["wandb"]),
        ("tensorboard", ["torch.utils.tensorboard", "tensorboard"]),
        ("mlflow", ["mlflow"]),
    ],
)
def test_a_missing_tracker_names_the_extra_to_install(
    hand_run: Path,
    tmp_path: Path,
    capsys: Any,
    monkeypatch: pytest.MonkeyPatch,
    target: str,
    blocked: list[str],
) -> None:
    for module in blocked:
        monkeypatch.setitem(sys.modules, module, None)  # import now raises ImportError
    out = tmp_path / "out"
    assert main(["export", str(hand_run), "--to", target, "--out", str(out)]) == 2
    assert f'pip install "clbench[{target}]"' in capsys.readouterr().err
    assert not out.exists()


def test_export_refuses_bad_input(hand_run: Path, tmp_path: Path, capsys: Any) -> None:
    assert main(["export", str(hand_run), "--to", "tensorboard", "--project", "x"]) == 2
    assert "--project only applies to --to wandb" in capsys.readouterr().err
    (hand_run / "status.json").write_text(json.dumps({"status": "failed"}))
    assert main(["export", str(hand_run), "--to", "tensorboard", "--out", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert "skipped 1 partial run(s) (1 failed)" in captured.out
    assert "no finished run" in captured.err
