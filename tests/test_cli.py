"""The command line, run as a user runs it: real subprocesses, exit codes, one-line errors."""

import json
import subprocess
import sys

import torch


def run(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "metaforge", *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_help_teaches_the_flow():
    r = run("--help")
    assert r.returncode == 0
    for command in ("train", "info", "materialize"):
        assert command in r.stdout
    r = run("train", "--help")
    assert "--resume" in r.stdout and "--bn-mode" in r.stdout
    for bare in ((), ("profile",)):  # no command: the help, not a traceback
        r = run(*bare)
        assert r.returncode == 0 and "Usage" in r.stdout and "Traceback" not in r.stderr, r.stderr


def test_train_command_defaults_are_the_library_recipe():
    """`metaforge train` spells its defaults out for --help; they must be TrainConfig's own."""
    import inspect

    from metaforge.cli.train import train
    from metaforge.train.config import RECIPE_CHANNEL_ORDER, RECIPE_MLP_LR, RECIPE_WIDTH_MAP, TrainConfig

    recipe = TrainConfig()
    progressive_own = {"full_every"}  # the single recipe's field of that name is not an option
    shared = [(name, p.default) for name, p in inspect.signature(train).parameters.items()
              if hasattr(recipe, name) and name not in progressive_own]
    assert len(shared) >= 15
    for name, default in shared:
        if name == "channel_order":  # chosen by the recipe when not given
            default = RECIPE_CHANNEL_ORDER[recipe.recipe]
        if name == "mlp_lr":
            default = RECIPE_MLP_LR[recipe.recipe]
        if name == "recipe":  # the CLI's is the one that met issue 15's bar; the dataclass keeps the earlier one
            assert (default, recipe.recipe) == ("progressive", "single")
            continue
        assert default == getattr(recipe, name), name
    assert RECIPE_WIDTH_MAP[recipe.recipe] == recipe.inr.width_map
    phase = [(name, p.default) for name, p in inspect.signature(train).parameters.items()
             if hasattr(recipe.progressive, name) and (name in progressive_own or not hasattr(recipe, name))]  # lr, ema: TrainConfig's own
    assert {"shared_step", "train_mlp", "bottom_depth", "shared_depth", "random_sizes", "full_every", "full_weight"} <= {n for n, _ in phase}
    for name, default in phase:  # the progressive options: same names, same defaults as ProgressiveConfig
        if name == "label_weight":  # None: the dataclass's default with inplace distillation, 0 without (tested below)
            assert default is None
            continue
        assert default == getattr(recipe.progressive, name), name
    renamed = {"phase_lr": "lr", "phase_optimizer": "optimizer", "width_sampling": "widths"}
    for cli_name, field in renamed.items():
        assert inspect.signature(train).parameters[cli_name].default == getattr(recipe.progressive, field), cli_name


def test_the_progressive_recipe_defaults_to_nested_usage_ordered_channels(tmp_path):
    """What the fidelity runs measured best for it (and the faster MLP rate); the single recipe keeps
    resampling, smoothing and its rate; an explicit --mlp-lr wins over either."""
    from metaforge.checkpoint import load_manifold

    stored = {}
    for recipe in ("progressive", "single"):
        out = tmp_path / f"{recipe}.safetensors"
        r = run("train", "--preset", "tiny", "--recipe", recipe, "--base-epochs", "1", "--epochs", "1", "--limit", "200",
                "--out", str(out), "--device", "cpu")
        assert r.returncode == 0, r.stderr
        cfg = load_manifold(out).info.train_config
        stored[recipe] = (cfg["inr"]["width_map"], cfg["channel_order"], cfg["mlp_lr"])
    assert stored == {"progressive": ("nested", "usage", 5e-3), "single": ("resample", "smooth", 2e-3)}
    out = tmp_path / "set.safetensors"
    r = run("train", "--preset", "tiny", "--base-epochs", "1", "--epochs", "1", "--limit", "200", "--mlp-lr", "0.001",
            "--out", str(out), "--device", "cpu")
    assert r.returncode == 0, r.stderr
    assert load_manifold(out).info.train_config["mlp_lr"] == 1e-3


def test_the_label_weight_defaults_to_the_dataclass_with_distillation_and_to_zero_without(tmp_path):
    """--label-weight left out: ProgressiveConfig's default where the smaller sizes distil, 0 under
    --no-inplace-distill (they learn the labels alone, and a weight there is refused); given, it is stored."""
    from metaforge.checkpoint import load_manifold
    from metaforge.train.config import ProgressiveConfig

    stored = {}
    for name, extra in (("default", ()), ("labels", ("--no-inplace-distill",)), ("given", ("--label-weight", "0.25"))):
        out = tmp_path / f"{name}.safetensors"
        r = run("train", "--preset", "tiny", "--base-epochs", "1", "--epochs", "1", "--limit", "200", *extra,
                "--out", str(out), "--device", "cpu")
        assert r.returncode == 0, r.stderr
        stored[name] = load_manifold(out).info.train_config["progressive"]["label_weight"]
    assert stored == {"default": ProgressiveConfig.label_weight, "labels": 0.0, "given": 0.25}
    assert ProgressiveConfig.label_weight > 0
    r = run("train", "--preset", "tiny", "--no-inplace-distill", "--label-weight", "0.5", "--out", str(tmp_path / "x.safetensors"))
    assert r.returncode != 0 and "--no-inplace-distill trains on the labels alone" in r.stderr


def test_train_writes_a_manifold_and_prints_the_table(tmp_path):
    out = tmp_path / "m.safetensors"
    r = run("train", "--preset", "tiny", "--base-epochs", "1", "--epochs", "1", "--limit", "200", "--out", str(out), "--device", "cpu")
    assert r.returncode == 0, r.stderr
    assert out.exists()
    assert "accuracy vs size" in r.stdout and "unseen" in r.stdout


def test_info_shows_space_and_table(tiny_run):
    path, manifold, _ = tiny_run
    r = run("info", str(path))
    assert r.returncode == 0, r.stderr
    assert "w=2..8,4..16,8..32 d=1..2,1..2,1..2" in r.stdout
    assert manifold.info.accuracy[0]["config"] in r.stdout
    r = run("info", str(path), "--json")
    assert json.loads(r.stdout)["format"] == "metaforge-manifold"


def test_materialize_writes_a_model_plain_torch_loads(tiny_run, tmp_path):
    path, manifold, _ = tiny_run
    out = tmp_path / "model"
    r = run("materialize", str(path), "--config", "w=5,10,20 d=1,2,1", "--out", str(out), "--evaluate")
    assert r.returncode == 0, r.stderr
    assert "unseen" in r.stdout and "test top-1" in r.stdout
    program = torch.export.load(str(out / "model.pt2")).module()
    x = torch.randn(3, 1, 8, 8)
    reference = manifold.materialize("w=5,10,20 d=1,2,1")
    torch.testing.assert_close(program(x), reference(x), atol=1e-5, rtol=1e-5)
    assert json.loads((out / "model.json").read_text())["config"] == "w=5,10,20 d=1,2,1"


# Bad inputs (one line, exit code, nothing left behind) for every command: tests/test_bad_inputs.py


def test_fit_table_is_whole_in_a_pipe(tiny_run):
    """CI reads `fit` through a pipe: the front table keeps every column whole, not cut to 80 ("(roofl…")."""
    import os

    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    r = subprocess.run([sys.executable, "-m", "metaforge", "fit", str(tiny_run[0]), "--profile", "raspberry-pi-5", "--max-evals", "4"],
                       capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr
    table = [line for line in r.stdout.splitlines() if "(roofline)" in line]
    assert table and "…" not in r.stdout and "(analytic)" in table[0], r.stdout
    assert max(map(len, r.stdout.splitlines())) > 80  # the width a terminal-less rich would have cut it to
