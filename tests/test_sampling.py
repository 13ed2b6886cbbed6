import torch

from metaforge.space import make_space
from metaforge.train.sampling import evaluation_grid, sample_config, seen_depths, seen_widths, varying_stages

SPACE = make_space("resnet20", 1, 10, 28)


def test_seen_widths_and_depths():
    assert seen_widths(SPACE, (0.5, 0.75, 1.0)) == ((8, 12, 16), (16, 24, 32), (32, 48, 64))
    assert seen_depths(SPACE) == ((1, 2, 3),) * 3


def test_incremental_schedule_goes_shallow_to_deep_then_all():
    stages = [varying_stages(t, 1000, 3, True, 0.4) for t in range(1000)]
    assert stages[0] == 1 and stages[199] == 1 and stages[200] == 2 and stages[399] == 2 and stages[400] == 3
    assert stages == sorted(stages)
    assert all(varying_stages(t, 1000, 3, False, 0.4) == 3 for t in (0, 500))


def test_sampled_configs_vary_only_leading_stages_and_stay_seen():
    widths, depths = seen_widths(SPACE, (0.5, 0.75, 1.0)), seen_depths(SPACE)
    gen = torch.Generator().manual_seed(0)
    configs = [sample_config(SPACE, widths, depths, 1, gen) for _ in range(50)]
    assert all(c.widths[1:] == (32, 64) and c.depths[1:] == (3, 3) for c in configs)
    assert len({c.widths[0] for c in configs}) == 3
    assert sample_config(SPACE, widths, depths, 3, gen, smallest=True) == SPACE.scaled(0.5, (1, 1, 1))


def test_evaluation_grid_spans_quarter_to_full_flops_with_unseen_sizes():
    grid = evaluation_grid(SPACE)
    assert len(grid) == 12 and SPACE.full in grid and SPACE.scaled(0.625) in grid
