"""The progressive recipe: a trained base teaching every size (issue 15), on the embedded digits data."""

import dataclasses

import pytest
import torch

from metaforge.errors import ConfigError
from metaforge.inr import INRConfig, WeightINR
from metaforge.nets import ResNet
from metaforge.space import make_space
from metaforge.train.config import ProgressiveConfig, TrainConfig
from metaforge.train.progressive import grid_preconditioners
from metaforge.train.sampling import (bottom_of_step, continuous_widths, grid_fractions, random_size, sample_bottom, sample_shared_fraction,
                                     seen_depths)


def test_held_out_widths_are_never_sampled_and_the_ends_always_are():
    space = make_space("resnet20", 1, 10, 28, 0.25, 1)
    widths = continuous_widths(space, (0.375, 0.625, 0.875))
    assert widths[0] == (4, 5, 7, 8, 9, 11, 12, 13, 15, 16)
    assert 56 not in widths[2] and 40 not in widths[2] and 24 not in widths[2]
    assert widths[2][0] == 16 and widths[2][-1] == 64


def test_shared_fraction_sizes_scale_every_stage_alike_and_skip_held_out_widths():
    space = make_space("resnet20", 1, 10, 28, 0.25, 1)
    widths = continuous_widths(space, (0.375, 0.625, 0.875))
    gen = torch.Generator().manual_seed(0)
    configs = [sample_shared_fraction(space, widths, seen_depths(space), gen) for _ in range(200)]
    for c in configs:
        assert all(w in ws for w, ws in zip(c.widths, widths))
        fracs = [(w - lo) / (hi - lo) for w, lo, hi in zip(c.widths, space.min_widths, space.max_widths)]
        assert max(fracs) - min(fracs) <= 1 / 6 + 1e-9, c  # each stage within one allowed step of the shared fraction
    assert min(c.widths[0] for c in configs) == 4 and max(c.widths[0] for c in configs) == 16
    assert len({c.depths for c in configs}) > 10  # depths still vary per stage


def test_with_redraw_full_a_random_size_is_never_the_full_size():
    space = make_space("resnet20", 1, 10, 28, 0.25, 1)
    widths = continuous_widths(space, (0.3125, 0.5625, 0.8125))
    pc = ProgressiveConfig(random_sizes=3, shared_fraction=2, shared_depth=True, shared_step=0.125, redraw_full=True)

    def draws(pc: ProgressiveConfig) -> list:
        gen = torch.Generator().manual_seed(0)
        return [random_size(space, widths, seen_depths(space), gen, pc, 0) for _ in range(600)]

    old = draws(dataclasses.replace(pc, redraw_full=False))
    assert 10 < sum(c == space.full for c in old) < 60  # one grid draw in 21 is the full size (28.6 expected)
    new = draws(pc)
    assert space.full not in new
    assert len(set(new)) == 20  # every other multiplier and depth of the grid is still drawn
    point = make_space("tiny", 1, 10, 8, 1.0, 2)  # a space of one size: the draw returns it instead of looping
    assert random_size(point, seen_widths_of(point), seen_depths(point), torch.Generator(), pc, 2) == point.full


def seen_widths_of(space):
    return tuple((w,) for w in space.max_widths)


def test_a_shared_step_draws_only_the_grid_multipliers_each_about_equally_often():
    space = make_space("resnet20", 1, 10, 28, 0.25, 1)
    widths = continuous_widths(space, (0.3125, 0.5625, 0.8125))
    assert grid_fractions(space, 0.125) == (1.0, 0.875, 0.75, 0.625, 0.5, 0.375, 0.25)
    gen = torch.Generator().manual_seed(0)
    configs = [sample_shared_fraction(space, widths, seen_depths(space), gen, True, 0.125) for _ in range(2100)]
    scalings = {space.scaled(f, (d,) * 3) for f in grid_fractions(space, 0.125) for d in (1, 2, 3)}
    assert set(configs) == scalings  # 7 multipliers x 3 shared depths, nothing between
    counts = [configs.count(c) for c in scalings]
    assert min(counts) > 100 / 2 and max(counts) < 100 * 2  # ~2100 / 21 each
    with pytest.raises(ConfigError, match="--shared-step"):
        ProgressiveConfig(shared_step=1.0)


def test_a_shared_tilt_draws_the_wide_multipliers_in_proportion_to_their_width():
    """--shared-tilt 1: multiplier f comes with probability f / sum(grid); every multiplier is still drawn."""
    space = make_space("resnet20", 1, 10, 28, 0.25, 1)
    widths = continuous_widths(space, (0.3125, 0.5625, 0.8125))
    gen = torch.Generator().manual_seed(0)
    configs = [sample_shared_fraction(space, widths, seen_depths(space), gen, True, 0.125, tilt=1.0) for _ in range(7000)]
    grid = grid_fractions(space, 0.125)
    for f in grid:
        n = sum(c.widths[2] == round(f * 64) for c in configs)
        assert abs(n / 7000 - f / sum(grid)) < 0.02, (f, n)  # 1.0: 22.9%, 0.25: 5.7%
    with pytest.raises(ConfigError, match="--shared-tilt must be 0 or more"):
        ProgressiveConfig(shared_tilt=-1.0)


def test_a_shared_cycle_trains_every_grid_scaling_once_per_cycle_in_a_new_order_each_cycle():
    """--shared-cycle: each run of 21 draws (7 multipliers x 3 shared depths) holds every scaling once,
    the same step gives the same size (resume), another seed another order; the per-stage size stays drawn."""
    space = make_space("resnet20", 1, 10, 28, 0.25, 1)
    widths, depths = continuous_widths(space, (0.3125, 0.5625, 0.8125)), seen_depths(space)
    pc = ProgressiveConfig(shared_cycle=True)
    scalings = {space.scaled(f, (d,) * 3) for f in grid_fractions(space, 0.125) for d in (1, 2, 3)}

    def draws(seed: int, steps: range) -> list:
        gen = torch.Generator().manual_seed(0)
        return [random_size(space, widths, depths, gen, pc, k, t, seed) for t in steps for k in range(pc.shared_fraction)]

    run = draws(0, range(42))  # 84 draws: four full cycles
    for c in range(4):
        assert set(run[21 * c:21 * (c + 1)]) == scalings
    assert run[:21] != run[21:42]  # a new order each cycle
    assert draws(0, range(30, 42)) == run[60:]  # a step's sizes depend on the step alone
    assert draws(1, range(42)) != run
    no_full = ProgressiveConfig(shared_cycle=True, redraw_full=True)
    no_full_run = [random_size(space, widths, depths, torch.Generator(), no_full, k, t, 0) for t in range(40) for k in range(2)]
    assert space.full not in no_full_run and set(no_full_run[:20]) == scalings - {space.full}  # cycles of 20
    gen = torch.Generator().manual_seed(0)
    assert len({random_size(space, widths, depths, gen, pc, 2, 0, 0) for _ in range(20)}) > 10  # the per-stage size
    with pytest.raises(ConfigError, match="--shared-cycle .* --shared-step > 0"):
        ProgressiveConfig(shared_cycle=True, shared_step=0.0)
    with pytest.raises(ConfigError, match="no --shared-tilt"):
        ProgressiveConfig(shared_cycle=True, shared_tilt=1.0)


def test_the_bottom_of_the_sandwich_is_the_narrowest_width_at_the_least_or_at_every_shared_depth():
    space = make_space("resnet20", 1, 10, 28, 0.25, 1)
    widths, depths = continuous_widths(space, (0.3125,)), seen_depths(space)
    assert sample_bottom(widths, depths, None) == space.smallest
    gen = torch.Generator().manual_seed(0)
    bottoms = {sample_bottom(widths, depths, gen, any_depth=True) for _ in range(60)}
    assert bottoms == {space.scaled(0.25, (d, d, d)) for d in (1, 2, 3)}
    alternate = [bottom_of_step(widths, depths, gen, t, "alternate") for t in range(60)]
    assert all(b == space.smallest for b in alternate[0::2])  # even steps: the shallowest
    assert set(alternate[1::2]) == bottoms  # odd steps: every shared depth
    assert all(bottom_of_step(widths, depths, gen, t, "min") == space.smallest for t in range(4))
    with pytest.raises(ConfigError, match="bottom depth"):
        ProgressiveConfig(bottom_depth="deepest")


def test_a_preconditioned_sgd_step_on_a_grid_is_the_plain_step_on_the_full_size_weight():
    """The step the base recipe would take on the network's own weight, whatever the fan-in scale."""
    torch.manual_seed(0)
    space = make_space("tiny", 1, 10, 8, 0.25, 1)
    inr = WeightINR(space, INRConfig(), bn=True)
    state = ResNet(space.full, 1, 10, "batch").state_dict()
    inr.fit_scales(state)
    inr.init_grids(state)
    name = next(n for n, t in inr.generate(space.full).items() if t.dim() == 4)  # the stem's conv weight
    before = inr.generate(space.full)[name].detach().clone()
    target = torch.randn_like(before)
    (inr.generate(space.full)[name] * target).sum().backward()  # d loss / d weight = target
    for p, k in grid_preconditioners(inr):
        if p.grad is not None:
            p.grad.mul_(k)
    lr = 0.1
    with torch.no_grad():
        for p in inr.grid_parameters():
            if p.grad is not None:
                p -= lr * p.grad
    after = inr.generate(space.full)[name].detach()
    assert torch.allclose(after, before - lr * target, atol=1e-5, rtol=1e-4)


def test_nested_map_from_an_importance_ordered_base_starts_each_width_as_the_l1_pruned_base():
    """OFA's start: a narrower layer is the base's top-L1 channels (rescaled by the fan-in), not a resampling."""
    from metaforge.permute import channel_scores
    from metaforge.train.init import ground_truth

    torch.manual_seed(0)
    space = make_space("tiny", 1, 10, 8, 0.25, 1)
    base = ResNet(space.full, 1, 10, "batch")
    for p in base.parameters():
        p.data.normal_()
    cfg = TrainConfig(preset="tiny", channel_order="importance", inr=INRConfig(width_map="nested"))
    truth = ground_truth(cfg, base)
    inr = WeightINR(space, cfg.inr, bn=True)
    inr.fit_scales(truth)
    inr.init_grids(truth)
    narrow = space.scaled(0.5, space.max_depths)
    out = inr.generate(narrow)
    scores = channel_scores(base)
    for name, t in out.items():
        if t.dim() != 4 or t.shape[1] == 1:
            continue  # the stem reads the image: no input channels to cut
        full = truth[name]
        torch.testing.assert_close(t * t.shape[1] / full.shape[1], full[: t.shape[0], : t.shape[1]])
    kept = scores["stream2"].sort(descending=True).values[: narrow.widths[2]]
    ordered = ResNet(space.full, 1, 10, "batch")
    ordered.load_state_dict(truth)
    torch.testing.assert_close(channel_scores(ordered)["stream2"][: narrow.widths[2]], kept)


def test_progressive_tiny_manifold_learns_every_size_and_keeps_held_out_sizes_unseen(tmp_path):
    from metaforge.train.run import train

    cfg = TrainConfig(preset="tiny", base_epochs=4, epochs=3, device="cpu", recipe="progressive")
    m = train(cfg, tmp_path / "prog.safetensors")
    rows = {r["config"]: r for r in m.info.accuracy}
    assert rows["w=8,16,32 d=2,2,2"]["top1"] >= 0.93  # measured 0.972
    assert rows["w=4,8,16 d=1,1,1"]["top1"] >= 0.85  # measured 0.905
    # held out of the sampling: 31.25/56.25/81.25% of each stage's width, on this preset's 8 channels 4 and 6
    assert rows["w=6,12,24 d=2,2,2"]["seen"] is False
    assert rows["w=5,10,20 d=2,2,2"]["seen"] is True


def test_size_corrections_train_beside_the_grids_and_resume_bitwise(tmp_path, crash_at):
    """--train-mlp: the MLP (AdamW) learns per-size corrections while SGD moves the grids; a run
    crashed mid-phase resumes to exactly the uninterrupted manifold (both optimisers' states saved)."""
    from safetensors.torch import load_file

    from metaforge.train.run import resume_run, train

    CrashAt, Crash = crash_at
    cfg = TrainConfig(preset="tiny", base_epochs=1, epochs=2, limit=640, device="cpu", recipe="progressive", save_every=4,
                      progressive=ProgressiveConfig(train_mlp=True))
    ref = train(cfg, tmp_path / "ref" / "m.safetensors")
    heads = [p for n, p in ref.inr.named_parameters() if "weight_heads" in n]
    assert max(float(p.abs().max()) for p in heads) > 1e-4  # zero at the start: the corrections moved
    base = tmp_path / "ref" / "m.run" / "base.safetensors"
    out = tmp_path / "crash" / "m.safetensors"
    with pytest.raises(Crash):
        train(dataclasses.replace(cfg, base_path=str(base)), out, progress=CrashAt("manifold (progressive)", 11))
    resume_run(out.with_name("m.run"))
    a, b = load_file(out), load_file(tmp_path / "ref" / "m.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in b), "resumed run differs from the uninterrupted one"


def test_with_full_every_the_full_size_learns_on_every_nth_step_only(tmp_path, monkeypatch):
    """--full-every 3: the full size (alone in the sandwich here) takes a gradient on steps 0, 3, 6, ...;
    between, it only teaches (no gradient reaches the INR, the optimiser moves nothing)."""
    from metaforge.train.precision import Precision
    from metaforge.train.run import train

    learned: list[bool] = []
    real_step = Precision.step

    def step(self, *opts):
        learned.append(any(p.grad is not None for o in opts for g in o.param_groups for p in g["params"]))
        real_step(self, *opts)

    monkeypatch.setattr(Precision, "step", step)
    phase = ProgressiveConfig(random_sizes=0, shared_fraction=0, smallest=False, full_every=3)
    cfg = TrainConfig(preset="tiny", base_epochs=1, epochs=1, limit=640, device="cpu", recipe="progressive", progressive=phase)
    train(cfg, tmp_path / "m.safetensors")
    assert learned == [True] * 10 + [t % 3 == 0 for t in range(10)]  # the base's 10 steps, then the phase's
    with pytest.raises(ConfigError, match="--full-every must be 1 or more"):
        ProgressiveConfig(full_every=0)


def test_with_one_size_each_step_trains_one_size_of_the_sandwich_in_turn(tmp_path, monkeypatch):
    """--one-size (the ablation): step t trains size t mod 4 of full, bottom and two random sizes;
    on the others' turns the full size runs once, without gradient, to teach."""
    import metaforge.train.progressive as progressive
    from metaforge.train.run import train

    passes: list[bool] = []  # per forward pass of the phase: did it record a gradient
    real = progressive.functional_call

    def call(*args, **kwargs):
        passes.append(torch.is_grad_enabled())
        return real(*args, **kwargs)

    monkeypatch.setattr(progressive, "functional_call", call)
    phase = ProgressiveConfig(random_sizes=2, one_size=True)
    cfg = TrainConfig(preset="tiny", base_epochs=1, epochs=1, limit=640, device="cpu", recipe="progressive", progressive=phase)
    train(cfg, tmp_path / "m.safetensors")
    expected = [p for t in range(10) for p in ([True] if t % 4 == 0 else [False, True])]
    assert passes == expected


def test_with_sub_batches_each_smaller_size_trains_on_its_part_of_the_batch(tmp_path, monkeypatch):
    """--sub-batches 2: the full size sees the whole batch, the bottom and the random sizes the first
    and second halves in turn, and their distillation targets are the full size's rows for those images."""
    import metaforge.train.progressive as progressive
    from metaforge.train.run import train

    inputs: list[torch.Tensor] = []
    outputs: list[torch.Tensor] = []
    real_call, real_kl = progressive.functional_call, torch.nn.functional.kl_div
    targets: list[torch.Tensor] = []

    def call(net, params, args):
        inputs.append(args[0])
        outputs.append(real_call(net, params, args))
        return outputs[-1]

    def kl(log_probs, target, **kwargs):
        targets.append(target)
        return real_kl(log_probs, target, **kwargs)

    monkeypatch.setattr(progressive, "functional_call", call)
    monkeypatch.setattr(torch.nn.functional, "kl_div", kl)
    phase = ProgressiveConfig(random_sizes=2, shared_fraction=1, sub_batches=2)
    cfg = TrainConfig(preset="tiny", base_epochs=1, epochs=1, limit=640, device="cpu", recipe="progressive", progressive=phase)
    train(cfg, tmp_path / "m.safetensors")
    assert len(inputs) == 40 and len(targets) == 30  # 10 steps of full, bottom and 2 random sizes
    for t in range(10):
        full, *smaller = inputs[4 * t: 4 * t + 4]
        assert len(full) == 64
        for k, x in enumerate(smaller):
            half = slice(0, 32) if k % 2 == 0 else slice(32, 64)
            assert torch.equal(x, full[half])
            torch.testing.assert_close(targets[3 * t + k], outputs[4 * t].detach().softmax(1)[half])
    with pytest.raises(ConfigError, match="--sub-batches must be 1 or more"):
        ProgressiveConfig(sub_batches=0)
    small = TrainConfig(preset="tiny", base_epochs=1, epochs=1, limit=64, batch_size=6, device="cpu", recipe="progressive",
                        progressive=dataclasses.replace(phase, sub_batches=4))
    with pytest.raises(ConfigError, match="use --batch-size 8 or more"):
        train(small, tmp_path / "small.safetensors")


def first_phase_step_grads(tmp_path, monkeypatch):
    """A function (name, **phase settings) -> the gradients of the first progressive step, every run from one
    shared tiny base, with only the full size and the bottom (no random sizes): a step's loss terms compared exactly."""
    from metaforge.train.precision import Precision
    from metaforge.train.run import train

    tiny = dict(preset="tiny", base_epochs=1, epochs=1, limit=320, device="cpu", recipe="progressive")
    train(TrainConfig(**tiny), tmp_path / "ref.safetensors")
    base = str(tmp_path / "ref.run" / "base.safetensors")

    class Stop(Exception):
        pass

    def first_step_grads(name: str, **phase) -> list[torch.Tensor]:
        grads = []

        def step(self, *opts):
            grads.extend(p.grad.clone() for o in opts for g in o.param_groups for p in g["params"] if p.grad is not None)
            raise Stop
        monkeypatch.setattr(Precision, "step", step)
        cfg = TrainConfig(**tiny, base_path=base, progressive=ProgressiveConfig(random_sizes=0, shared_fraction=0, **phase))
        with pytest.raises(Stop):
            train(cfg, tmp_path / name / "m.safetensors")
        return grads

    return first_step_grads


def test_the_full_weight_scales_the_full_sizes_gradient_and_leaves_the_others(tmp_path, monkeypatch):
    """--full-weight 2: the full size's label loss counts twice in the step's sum and the bottom's
    gradient is unchanged (compared on the first phase step, from one shared base)."""
    first_step_grads = first_phase_step_grads(tmp_path, monkeypatch)
    full = first_step_grads("full", smallest=False, full_weight=1.0)
    full2 = first_step_grads("full2", smallest=False, full_weight=2.0)
    both = first_step_grads("both", smallest=True, full_weight=1.0)
    both2 = first_step_grads("both2", smallest=True, full_weight=2.0)
    assert len(full) == len(full2) == len(both) == len(both2) > 10
    for f, f2, b, b2 in zip(full, full2, both, both2):
        torch.testing.assert_close(f2, 2 * f)
        torch.testing.assert_close(b2, b + f, atol=1e-6, rtol=1e-4)  # the bottom's part is the same
    with pytest.raises(ConfigError, match="--full-weight must be positive"):
        ProgressiveConfig(full_weight=0.0)


def test_the_full_weight_moves_linearly_to_its_end_value_over_the_phase():
    pc = ProgressiveConfig(full_weight=4.0, full_weight_end=2.0)
    weights = [pc.full_weight_at(t, 11) for t in range(11)]
    assert weights[0] == 4.0 and weights[-1] == 2.0
    assert all(a - b == pytest.approx(0.2) for a, b in zip(weights, weights[1:]))
    assert {ProgressiveConfig(full_weight=3.0).full_weight_at(t, 11) for t in range(11)} == {3.0}  # None: constant
    with pytest.raises(ConfigError, match="--full-weight-end must be positive"):
        ProgressiveConfig(full_weight_end=0.0)


def test_the_label_weight_adds_the_labels_cross_entropy_to_the_smaller_sizes_loss(tmp_path, monkeypatch):
    """--label-weight w: the bottom's loss is its distillation plus w x cross-entropy on the labels, so the
    step's gradient moves by the same amount from w=0 to 1 as from 1 to 2; the full size's part does not move."""
    first_step_grads = first_phase_step_grads(tmp_path, monkeypatch)
    g0, g1, g2 = (first_step_grads(f"w{w}", label_weight=float(w)) for w in (0, 1, 2))
    full0, full2 = first_step_grads("f0", smallest=False), first_step_grads("f2", smallest=False, label_weight=2.0)
    assert len(g0) == len(g1) == len(g2) > 10
    for a, b, c in zip(g0, g1, g2):
        torch.testing.assert_close(c - b, b - a, atol=3e-5, rtol=1e-3)  # float sums: the differences are of larger numbers
    assert max((b - a).abs().max().item() for a, b in zip(g0, g1)) > 1e-4  # the labels' term is there
    for a, b in zip(full0, full2):
        torch.testing.assert_close(a, b)  # no smaller size: nothing to add to
    with pytest.raises(ConfigError, match="--label-weight must be 0 or more"):
        ProgressiveConfig(label_weight=-1.0)
    with pytest.raises(ConfigError, match="--no-inplace-distill trains on the labels alone"):
        ProgressiveConfig(label_weight=0.5, inplace_distill=False)


@pytest.mark.parametrize("teacher", ["base", "full"])
def test_the_smaller_sizes_learn_the_teachers_predictions(tmp_path, monkeypatch, teacher):
    """--teacher base: every distillation target is the frozen base network's prediction (eval mode, no
    gradient) on the step's batch; --teacher full (the default): the full size's, and the base never runs."""
    from metaforge.train.run import train

    events: list[tuple[str, torch.Tensor]] = []
    real_forward, real_kl = ResNet.forward, torch.nn.functional.kl_div

    def forward(self, x):
        out = real_forward(self, x)
        if not self.training and not torch.is_grad_enabled():
            events.append(("teacher", out.float().softmax(1)))
        return out

    def kl_div(inp, target, *args, **kwargs):
        events.append(("target", target))
        return real_kl(inp, target, *args, **kwargs)

    monkeypatch.setattr(ResNet, "forward", forward)
    monkeypatch.setattr(torch.nn.functional, "kl_div", kl_div)
    phase = ProgressiveConfig(random_sizes=1, shared_fraction=1, teacher=teacher)
    cfg = TrainConfig(preset="tiny", base_epochs=1, epochs=1, limit=640, device="cpu", recipe="progressive", progressive=phase)
    train(cfg, tmp_path / "m.safetensors")
    targets = [(i, t) for i, (kind, t) in enumerate(events) if kind == "target"]
    assert len(targets) == 2 * 10  # the bottom and one random size in each of the phase's 10 steps
    for i, target in targets:
        before = [t for kind, t in events[:i] if kind == "teacher"]
        if teacher == "base":
            assert torch.allclose(target, before[-1])
        else:
            assert not any(t.shape == target.shape and torch.allclose(target, t) for t in before)
    with pytest.raises(ConfigError, match="unknown teacher 'ensemble'"):
        ProgressiveConfig(teacher="ensemble")
    with pytest.raises(ConfigError, match="--teacher base teaches through inplace distillation"):
        ProgressiveConfig(teacher="base", inplace_distill=False)


def test_bad_progressive_settings_are_config_errors():
    with pytest.raises(ConfigError, match="recipe"):
        TrainConfig(recipe="bigbang")
    with pytest.raises(ConfigError, match="optimiser"):
        ProgressiveConfig(optimizer="lion")
    with pytest.raises(ConfigError, match="channel order"):
        TrainConfig(channel_order="random")
    with pytest.raises(ConfigError, match="width map"):
        INRConfig(width_map="sideways")


def test_an_older_run_config_without_a_recipe_resumes_with_the_single_recipe():
    d = TrainConfig().to_dict()
    del d["recipe"], d["progressive"]
    assert TrainConfig.from_dict(d).recipe == "single"
    assert TrainConfig.from_dict(TrainConfig(recipe="progressive").to_dict()).recipe == "progressive"
