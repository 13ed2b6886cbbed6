"""``metaforge train``: train a metamorphic manifold on a dataset."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Annotated, Optional

import typer

from metaforge.cli import app
from metaforge.cli.info import print_table
from metaforge.cli.progress import RichProgress
from metaforge.progress import Progress


@app.command()
def train(
    dataset: Annotated[str, typer.Option(help="digits (embedded), fashion-mnist, mnist, cifar10, cifar100 or imagefolder.")] = "digits",
    data_dir: Annotated[Optional[Path], typer.Option(help="Folder with the dataset's files (IDX, CIFAR pickles, or class subfolders).")] = None,
    preset: Annotated[str, typer.Option(help="Largest network of the space: tiny, resnet20, resnet32, resnet56.")] = "resnet20",
    epochs: Annotated[int, typer.Option(help="Manifold training epochs.")] = 60,
    base_epochs: Annotated[int, typer.Option(help="Epochs of the full-size base network (ignored with --base).")] = 30,
    base: Annotated[Optional[Path], typer.Option(help="A trained full-size base network (a model saved by metaforge) instead of training one.")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Manifold file to write (default manifold.safetensors; with --resume, confirms a path not beside the run folder).")] = None,
    run_dir: Annotated[Optional[Path], typer.Option(help="Folder for resumable state (default: OUT with .run).")] = None,
    resume: Annotated[Optional[Path], typer.Option(help="Continue an interrupted run from its run folder; other settings are read from it.")] = None,
    bn_mode: Annotated[str, typer.Option(help="BatchNorm treatment: recalibrate (per-size statistics, then folded) or fold (folded before training, as NeuMeta).")] = "recalibrate",
    batch_size: Annotated[int, typer.Option(help="Training batch size.")] = 64,
    lr: Annotated[float, typer.Option(help="Learning rate of the INR's weight grids, the network's own weights (AdamW, cosine).")] = 3e-2,
    mlp_lr: Annotated[Optional[float], typer.Option(help="AdamW rate of the rest of the INR (the MLP that corrects each size, channel codes): every change there moves all sizes. Default: 5e-3 with --recipe progressive (measured best of 2e-3, 5e-3 and 1e-2 on Fashion-MNIST, docs/BENCHMARKS.md round 10), 2e-3 with single (at 3e-2 a short run collapsed, docs/METHOD.md).", show_default=False)] = None,
    calibration_size: Annotated[int, typer.Option(help="bn-mode recalibrate: training images stored in the manifold, on which every materialised size re-estimates its BatchNorm statistics. More give steadier statistics (4096 measured 0.13 points above 256 on average) but a larger file (uint8 pixels: 3.2 MB at 28x28, 12.6 MB at 32x32x3) and a slower materialisation.")] = 4096,
    samples: Annotated[int, typer.Option(help="K: stratified coordinate samples averaged when materialising sizes narrower than every seen width (others use cell centres).")] = 4,
    permute: Annotated[bool, typer.Option(help="Reorder the base network's channels (function unchanged) before the INR takes them; see --channel-order.")] = True,
    channel_order: Annotated[Optional[str], typer.Option(help="smooth: neighbouring channels alike, so a narrower layer resamples the same function (for --width-map resample). importance: channels by the L1 norm of the filters that write them, largest first, so a narrower layer starts as the L1-filter-pruned base (for --width-map nested). usage: by the L1 norm of the weights that read them (OFA's sort; under BatchNorm a better guide to what a channel is worth, for --width-map nested). Default: usage with --recipe progressive, smooth with single.", show_default=False)] = None,
    width_map: Annotated[Optional[str], typer.Option(help="Which coordinate a channel has. resample: its relative position (a narrower layer resamples the whole channel axis). nested: its absolute index (a narrower layer is the first channels, as slimmable networks and OFA slice). Default: nested with --recipe progressive (1 point better on average than resample at equal compute, two seeds, docs/BENCHMARKS.md), resample with single.", show_default=False)] = None,
    distill: Annotated[float, typer.Option(help="Weight of distillation from the base network's predictions (0 = cross-entropy only).")] = 0.0,
    sandwich: Annotated[bool, typer.Option(help="Also train the smallest seen size regularly (every 4th step, between full-size steps).")] = False,
    incremental: Annotated[bool, typer.Option(help="Stage-wise incremental training, shallow to deep.")] = True,
    limit: Annotated[Optional[int], typer.Option(help="Use at most this many training samples (quick runs).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of splits, initialisation and sampling.")] = 0,
    device: Annotated[str, typer.Option(help="auto (CUDA when present), cpu or cuda.")] = "auto",
    save_every: Annotated[int, typer.Option(help="Steps between resumable checkpoints in the run folder (one is also written after every epoch).")] = 200,
    precision: Annotated[str, typer.Option(help="Forward pass precision: fp32, or bf16/fp16 autocast (CUDA only; fp16 adds loss scaling). Weights stay fp32.")] = "fp32",
    recipe: Annotated[str, typer.Option(help="progressive: a base network trained alone, then it teaches every size: each step the full size on the labels, the smallest and random sizes on its predictions (docs/METHOD.md, 'The progressive recipe'); on Fashion-MNIST within 1 point of networks trained one by one at every size, for half their compute. single: the INR learns every size from the base's weights (the earlier default, about 7 points below there).")] = "progressive",
    phase_lr: Annotated[float, typer.Option(help="progressive: SGD learning rate of the weight grids (a grid step equals a step on the full-size weight). 0.03 with --full-weight 4 (0.02 with 3 until round 12) raised the mean gap to individual training by 0.09 points over six matched runs, three seeds, at the same compute (docs/BENCHMARKS.md).")] = 0.03,
    phase_optimizer: Annotated[str, typer.Option(help="progressive: sgd (momentum 0.9, weight decay on conv/linear weights) or adamw (at --lr).")] = "sgd",
    random_sizes: Annotated[int, typer.Option(help="progressive: random sizes trained per step besides the full and the smallest (each costs a forward and backward pass).")] = 3,
    shared_fraction: Annotated[int, typer.Option(help="progressive: how many of the random sizes scale every stage by one width fraction; the others draw a width per stage (they teach stages to work at unlike widths and depths).")] = 2,
    shared_depth: Annotated[bool, typer.Option(help="progressive: the --shared-fraction sizes also share one depth across stages (d=2,2,2 rather than a depth per stage), so uniformly shallower networks are trained as often as uniformly narrower ones.")] = True,
    shared_step: Annotated[float, typer.Option(help="progressive: the --shared-fraction sizes draw their fraction from the grid 1, 1-step, 1-2 step, ... (0.125: 100, 87.5, ..., 25%) instead of continuously, so each width multiplier on it is trained several times as often; the per-stage random sizes still see every width. 0: continuous.")] = 0.125,
    shared_tilt: Annotated[float, typer.Option(help="progressive: with --shared-step, draw width multiplier f with probability in proportion to f ** tilt instead of uniformly (1: in proportion to the width, 2: about to the FLOPs), so the wide sizes, which share most of their weights with the full size, are trained more often. 0: uniform.")] = 0.0,
    shared_cycle: Annotated[bool, typer.Option(help="progressive: with --shared-step, the uniform scalings go through every (width multiplier, depth) pair once per cycle, each cycle in a seeded order, instead of independent draws (stratified sampling: each scaling is trained equally often over any stretch of the run, the last steps included). Measured on four seeds: no gain (mean gap +0.01, docs/BENCHMARKS.md, round 15), so off: independent draws.")] = False,
    width_sampling: Annotated[str, typer.Option(help="progressive: continuous (every integer width but the held-out 31.25/56.25/81.25%, which stay unseen: the test of sizes never trained) or seen (only the seen width fractions).")] = "continuous",
    bottom_depth: Annotated[str, typer.Option(help="progressive: depth of the sandwich's bottom (every stage at its narrowest width): min (the shallowest, the US-Nets rule), shared (one depth drawn per step for every stage, so the narrowest widths are trained at full depth too) or alternate (min on even steps, shared on odd: keeps the narrow depth-1 configs that shared trades away).")] = "alternate",
    train_mlp: Annotated[bool, typer.Option(help="progressive: also train the INR's MLP (AdamW at --mlp-lr), which adds to each weight a correction computed from the wanted width and depth, so sizes need not share their weights exactly; --no-train-mlp: only the weight grids train and a narrower size is the first channels of a wider one.")] = True,
    full_weight: Annotated[float, typer.Option(help="progressive: weight of the full size's label loss in each step's sum (the smaller sizes' distillation losses weigh 1): above 1, the full size and the shared weights it anchors move less under the smaller sizes' pull. 4 (2 until round 10, 3 until round 12), taken with --phase-lr 0.03: alone, 4 was level with 3 (docs/BENCHMARKS.md, rounds 11 and 12).")] = 4.0,
    full_weight_end: Annotated[Optional[float], typer.Option(help="progressive: the full size's loss weight moves linearly from --full-weight at the first step to this at the last, so the smaller sizes weigh more in the steps that settle them. Measured from 4 to 2 on two seeds at the same compute: lost (mean gap -0.10 and -0.11, the middle sizes down too, docs/BENCHMARKS.md, round 16), so constant by default.", show_default=False)] = None,
    full_every: Annotated[int, typer.Option(help="progressive: the full size learns the labels on every n-th step only; on the others it just teaches (a forward pass without gradient, about a third of a trained pass), which leaves more of the compute to the narrower sizes. 1: every step (the US-Nets rule).")] = 1,
    one_size: Annotated[bool, typer.Option(help="progressive, an ablation: each step trains one size of the sandwich in turn (the full size, the bottom, each random size) instead of all of them together; the full size still teaches by a forward pass on every step. Kept for the comparison (docs/BENCHMARKS.md).")] = False,
    redraw_full: Annotated[bool, typer.Option(help="progressive: a random size that comes out as the full size is drawn again (the full size is in every step already; a second pass of it on its own predictions has no gradient). Measured: no saving to speak of and no gain (docs/BENCHMARKS.md, round 8), so off.")] = False,
    inplace_distill: Annotated[bool, typer.Option(help="progressive: smaller sizes learn the full size's predictions (--no-inplace-distill: the labels).")] = True,
    teacher: Annotated[str, typer.Option(help="progressive, with inplace distillation: whose predictions the smaller sizes learn. full: the full size's, as it trains (US-Nets' inplace distillation). base: the frozen base network's, a fixed target as accurate as the base (one more forward pass per step: about a fifth more phase CPU time). Measured in round 12: better on one base, worse on another, over the compute budget; so off.")] = "full",
    distill_loss: Annotated[str, typer.Option(help="progressive, with inplace distillation: how the smaller sizes learn the teacher's predictions. kl: KL(teacher || student), the US-Nets rule. alpha: AlphaNet's adaptive alpha-divergence, per image the larger of the alpha=-1 and alpha=+1 divergences with the gradient's importance weights clipped at 5, which also punishes a student that spreads probability over classes the teacher rules out. Measured on two seeds at the same compute: lost (mean gap -0.10 and -0.04, docs/BENCHMARKS.md, round 16), so kl.")] = "kl",
    temperature: Annotated[float, typer.Option(help="progressive, with inplace distillation: the softmax temperature of the teacher's and the students' predictions in the distillation loss, which is multiplied by its square (Hinton's knowledge distillation). Above 1 the teacher's confident predictions soften, so a student also learns which classes look alike. Measured at 2 on two seeds at the same compute: lost (mean gap -0.34 and -0.02, docs/BENCHMARKS.md, round 16), so 1, as US-Nets.")] = 1.0,
    label_weight: Annotated[Optional[float], typer.Option(help="progressive, with inplace distillation: the smaller sizes' loss adds this times the cross-entropy on the labels to the distillation from the teacher (OFA's children learn both). Default 0.5 (0 with --no-inplace-distill, where the labels are all they learn): at 0.5, over nine matched runs on five seeds at the same compute, the 9-size table is level (mean gap change -0.01; runs at or above pruning + fine-tune at every size 8 of 10 against 6 of 9) and the rest of the space gains (16 of 19 configs, mean +0.37, the depth-1 and unlike-stage ones most; docs/BENCHMARKS.md, rounds 14-15). 0: distillation alone (the US-Nets rule, the default until round 14).")] = None,
    sub_batches: Annotated[int, typer.Option(help="progressive: the smaller sizes of a step each train on one of this many parts of the batch, in turn (the full size, which teaches them, on all of it). A pass costs about what its batch costs whatever its width, so 2 makes a step about a third cheaper: more steps for the same CPU-seconds. 1: every size on the whole batch (the US-Nets rule).")] = 1,
    sync_bn: Annotated[bool, typer.Option(help="Under torchrun: BatchNorm uses the statistics of the whole global batch, so N processes train what one would (--no-sync-bn: each process its own part, less communication).")] = True,
) -> None:
    """Train a metamorphic manifold: a base network, then an INR that generates every size.

    The defaults train a ResNet-20 manifold on the embedded digits data in a few minutes on a CPU.
    Interrupted runs continue with --resume RUN_DIR. The accuracy-vs-size table is printed at the end.
    Started by `torchrun --nproc_per_node N -m metaforge train ...`, N processes share each batch
    of --batch-size (NCCL on GPUs, gloo on CPU) and rank 0 writes the files.
    """
    from metaforge.inr_config import INRConfig
    from metaforge.train.config import RECIPE_CHANNEL_ORDER, RECIPE_MLP_LR, RECIPE_WIDTH_MAP, ProgressiveConfig, TrainConfig

    phase = None if resume is not None else ProgressiveConfig(
        lr=phase_lr, optimizer=phase_optimizer, random_sizes=random_sizes, shared_fraction=shared_fraction, shared_depth=shared_depth, shared_step=shared_step, shared_tilt=shared_tilt, shared_cycle=shared_cycle,
        widths=width_sampling, inplace_distill=inplace_distill, train_mlp=train_mlp, bottom_depth=bottom_depth, full_every=full_every,
        full_weight=full_weight, full_weight_end=full_weight_end, one_size=one_size, redraw_full=redraw_full, sub_batches=sub_batches, teacher=teacher, distill_loss=distill_loss, temperature=temperature,
        label_weight=label_weight if label_weight is not None else (ProgressiveConfig.label_weight if inplace_distill else 0.0),
    )
    cfg = None if resume is not None else TrainConfig(  # a bad setting is refused here, before torch is imported
        dataset=dataset, data_dir=str(data_dir) if data_dir else None, preset=preset, seed=seed, device=device,
        batch_size=batch_size, limit=limit, base_path=str(base) if base else None, base_epochs=base_epochs,
        bn_mode=bn_mode, permute=permute, channel_order=channel_order or RECIPE_CHANNEL_ORDER.get(recipe, "smooth"),
        inr=INRConfig(width_map=width_map or RECIPE_WIDTH_MAP.get(recipe, "resample")), epochs=epochs, lr=lr, mlp_lr=mlp_lr if mlp_lr is not None else RECIPE_MLP_LR.get(recipe, 2e-3), incremental=incremental, samples=samples, calibration_size=calibration_size, distill=distill, sandwich=sandwich,
        save_every=save_every, precision=precision, sync_bn=sync_bn, recipe=recipe, progressive=phase,
    )
    from metaforge.train.dist import process_group
    from metaforge.train.run import resume_run
    from metaforge.train.run import train as run_train

    with process_group(device) as place, (RichProgress() if place.main else nullcontext(Progress())) as progress:
        if cfg is None:
            manifold = resume_run(resume, progress, device=None if device == "auto" else device, out=out)
        else:
            manifold = run_train(cfg, out or Path("manifold.safetensors"), run_dir, progress)
    if place.main:
        print_table(manifold)
