"""``bench export``: our trained weights back into an official layout, from a file or a run folder; bad input is
exit 2 with a one-line message."""

from __future__ import annotations

import official_keys as ok
import pytest
import torch
from ckpt_helpers import forward, random_state

from bench.checkpoints import load_checkpoint
from bench.cli import EXIT_BAD_INPUT, EXIT_OK, build_parser, main
from bench.models import create_model
from bench.train.checkpointing import checkpoint_paths, save_atomic

KWARGS = {"num_classes": 10, "width": 1 / 16, "input_size": "cifar"}


def trained_run(tmp_path, label: str = "SEW 18", name: str = "sew_resnet18"):
    """A run folder as `bench train` leaves it, with one model's final checkpoint."""
    model = create_model(name, **KWARGS)
    model.load_state_dict(random_state([(k, tuple(v.shape)) for k, v in model.state_dict().items()]))
    final, _ = checkpoint_paths(tmp_path / "run", label)
    save_atomic({"model": model.state_dict(), "meta": {"model": name, "kwargs": KWARGS, "trained_T": 2}}, final)
    return tmp_path / "run", model


def image() -> torch.Tensor:
    return torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0)).unsqueeze(0).repeat(2, 1, 1, 1, 1)


def error_line(capsys) -> str:
    """The one error message printed (the console may fold it at 160 columns; unfolded here)."""
    err = capsys.readouterr().err
    assert err.startswith("error:") and err.count("error:") == 1, err
    return " ".join(err.split())


@pytest.mark.parametrize("fmt", ["sew-official", "spikingjelly-zoo"])
def test_export_from_a_run_folder_round_trips(tmp_path, fmt):
    run, model = trained_run(tmp_path)
    out = tmp_path / "official.pth"
    assert main(["export", str(run), "--label", "SEW 18", "--format", fmt, "--out", str(out)]) == EXIT_OK
    back = create_model("sew_resnet18", **KWARGS)
    loaded = load_checkpoint(back, out)
    assert loaded.format == fmt and loaded.detected
    assert torch.equal(forward(back, image()), forward(model, image()))


def test_export_from_a_file_names_the_model_and_writes_official_names(tmp_path):
    run, model = trained_run(tmp_path)
    out = tmp_path / "sew.pth"
    source = next((run / "checkpoints").glob("*.pt"))
    assert main(["export", str(source), "--model", "sew_resnet18", "--kwargs",
                 '{"num_classes": 10, "width": 0.0625, "input_size": "cifar"}', "--format", "sew-official",
                 "--out", str(out)]) == EXIT_OK
    names = {k: tuple(v.shape) for k, v in torch.load(out, weights_only=True)["model"].items()}
    official = dict(ok.sew_official(18, 4, 10))
    assert set(names) == set(official)
    assert names["conv1.weight"] == (4, 3, 3, 3)  # the cifar stem, under the official name


def test_export_to_our_own_format_keeps_the_metadata(tmp_path):
    run, model = trained_run(tmp_path)
    official = tmp_path / "official.pth"
    assert main(["export", str(run), "--format", "sew-official", "--out", str(official)]) == EXIT_OK  # one model
    ours = tmp_path / "ours.pt"
    assert main(["export", str(official), "--model", "sew_resnet18", "--kwargs",
                 '{"num_classes": 10, "width": 0.0625, "input_size": "cifar"}', "--format", "snnbench",
                 "--out", str(ours)]) == EXIT_OK
    saved = torch.load(ours, weights_only=True)
    assert saved["meta"]["model"] == "sew_resnet18"
    assert all(torch.equal(saved["model"][k], v) for k, v in model.state_dict().items())


def test_a_format_of_another_family_is_exit_2_in_one_line(tmp_path, capsys):
    run, _ = trained_run(tmp_path)
    code = main(["export", str(run), "--format", "ms-resnet-official", "--out", str(tmp_path / "x.pth")])
    assert code == EXIT_BAD_INPUT
    assert "cannot export 'sew_resnet18' as ms-resnet-official: format ms-resnet-official holds" in error_line(capsys)
    assert not (tmp_path / "x.pth").exists()


@pytest.mark.parametrize("args, message", [
    (["export", "missing.pt", "--model", "sew_resnet18", "--format", "sew-official"], "does not exist"),
    (["export", "RUN", "--label", "nope", "--format", "sew-official"], "has no trained checkpoint labelled 'nope'"),
    (["export", "RUN", "--format", "sew", "--model", "sew_resnet18"], "--format: unknown checkpoint format 'sew'"),
    (["export", "RUN", "--format", "snnbench", "--kwargs", "{bad json"], "cannot build 'sew_resnet18'"),
])
def test_bad_input_is_exit_2_in_one_line(tmp_path, capsys, args, message):
    run, _ = trained_run(tmp_path)
    args = [str(run) if a == "RUN" else a for a in args] + ["--out", str(tmp_path / "x.pth")]
    assert main(args) == EXIT_BAD_INPUT
    assert message in error_line(capsys)


def test_a_run_folder_with_several_models_needs_a_label(tmp_path, capsys):
    run, _ = trained_run(tmp_path, "a")
    trained_run(tmp_path, "b")
    assert main(["export", str(run), "--format", "sew-official", "--out", str(tmp_path / "x.pth")]) == EXIT_BAD_INPUT
    assert "has 2 trained checkpoints (a, b); choose one with --label LABEL" in error_line(capsys)


def test_help_lists_every_format():
    from bench.checkpoint_formats import FORMAT_NAMES

    text = build_parser()._subparsers._group_actions[0].choices["export"].format_help()  # noqa: SLF001
    for name in FORMAT_NAMES:
        assert name in text.replace("\n", "").replace(" ", ""), name


def _unwritable(tmp_path):
    """A folder this process cannot create files in: a 0o500 folder, or as root (who writes anyway) /sys/kernel."""
    import os

    if os.geteuid() != 0:
        folder = tmp_path / "ro"
        folder.mkdir(mode=0o500)
        return folder
    return "/sys/kernel"


@pytest.mark.parametrize("where", ["read-only", "under a file", "a folder"])
def test_an_out_that_cannot_be_written_is_exit_2_in_one_line(tmp_path, capsys, where):
    run, _ = trained_run(tmp_path)
    (tmp_path / "file").write_text("")
    out = {"read-only": f"{_unwritable(tmp_path)}/x.pth", "under a file": str(tmp_path / "file" / "x.pth"),
           "a folder": str(tmp_path)}[where]
    assert main(["export", str(run), "--format", "sew-official", "--out", out]) == EXIT_BAD_INPUT
    line = error_line(capsys)
    assert f"cannot write --out {out!r}" in line and "Fix:" in line and "Traceback" not in line
    assert not list(tmp_path.glob("*.tmp")) and not (tmp_path / "file").read_text()
