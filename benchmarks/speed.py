"""Speed and cost of the manifold, as ratios measured in one run (issue 5).

    OMP_NUM_THREADS=1 python benchmarks/speed.py --manifold runs/fid/manifold.safetensors --work runs/speed

1. materialise one config with the default K: ms per call (goal <= 100 ms on 2 cores);
2. one training step of the manifold vs one step of the plain full-size network, both timed inside
   the library's own training (``metaforge.train.train``, a Progress stamps every step; goal <= 2x);
3. manifold checkpoint bytes vs the full network's fp32 weights (goal <= 1x), and what fp16 grids
   would weigh and cost in accuracy (measured by rounding the INR, not a format change);
4. ONNX Runtime latency (1 thread) of a materialised network vs a hand-built dense network of the
   same shape (goal <= 1.05x), and latency vs FLOPs across sizes;
5. ``fit`` wall time (cold and warm accuracy cache) and export time per format.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import time
from pathlib import Path

import torch

from metaforge.checkpoint import load_manifold
from metaforge.cost import count_cost
from metaforge.evaluate import accuracy
from metaforge.export import ModelSpec
from metaforge.io import atomic_write_text
from metaforge.model_io import save_model
from metaforge.nets import ResNet
from metaforge.progress import Progress
from metaforge.space import ArchConfig
from metaforge.train.config import TrainConfig
from metaforge.train.run import train
from ort_timing import interleaved_latency_ms
from speed_report import tables

SIZES = ((1.0, 0), (0.875, 0), (1.0, 1), (0.75, 0), (0.625, 0), (0.5, 0), (0.625, 1), (0.375, 0), (0.25, 2))
EXPORT_TARGETS = ("onnx-fp32", "tflite-fp32", "tflite-fp16", "tflite-int8", "tensorrt-fp16")


class StepClock(Progress):
    """Stamps every training step of every phase (the library calls ``advance`` once per step)."""

    def __init__(self) -> None:
        self.stamps: dict[str, list[tuple[float, float]]] = {}
        self.current = ""

    def phase(self, name: str, total: int, done: int = 0) -> None:
        self.current = name
        self.stamps[name] = [(time.perf_counter(), time.process_time())]

    def advance(self, steps: int = 1, **metrics: float) -> None:
        self.stamps[self.current].append((time.perf_counter(), time.process_time()))

    def intervals(self, name: str, kind: int, skip: int = 3) -> list[float]:
        """Seconds per step (kind 0: wall, 1: process CPU), without the first ``skip`` steps."""
        s = [v[kind] for v in self.stamps[name]]
        return [b - a for a, b in zip(s[1 + skip:-1], s[2 + skip:])]


def materialise_ms(m, configs: list[ArchConfig], repeats: int) -> list[dict]:
    rows = []
    for c in configs:
        m.materialize(c)  # warm-up
        wall, cpu = [], []
        for _ in range(repeats):
            t, u = time.perf_counter(), time.process_time()
            m.materialize(c)
            wall.append(1000 * (time.perf_counter() - t))
            cpu.append(1000 * (time.process_time() - u))
        rows.append({"config": str(c), "k": m.default_samples(c), "wall_ms_median": round(statistics.median(wall), 1),
                     "cpu_ms_median": round(statistics.median(cpu), 1), "wall_ms_min": round(min(wall), 1)})
        print(f"materialise {c}: {rows[-1]}", flush=True)
    return rows


def train_steps(dataset: str, data_dir: str | None, steps: int, batch: int, work: Path) -> dict:
    """Time ``steps`` base steps and ``steps`` manifold steps of one small library run."""
    clock = StepClock()
    cfg = TrainConfig(dataset=dataset, data_dir=data_dir, batch_size=batch, limit=steps * batch, base_epochs=1, epochs=1,
                      save_every=10 * steps, device="cpu")
    train(cfg, work / "steps.safetensors", work / "steps.run", clock)
    out: dict = {"batch": batch, "steps": steps}
    for kind, label in ((0, "wall"), (1, "cpu")):
        base, man = clock.intervals("base network", kind), clock.intervals("manifold", kind)
        # the manifold's step t trains the full size when t % full_every == 0 (intervals start at step 4)
        full = [v for i, v in enumerate(man, start=4) if i % cfg.full_every == 0]
        out[f"{label}_plain_ms"] = 1000 * statistics.fmean(base)
        out[f"{label}_manifold_ms"] = 1000 * statistics.fmean(man)
        out[f"{label}_manifold_full_size_ms"] = 1000 * statistics.fmean(full)
        out[f"{label}_ratio"] = out[f"{label}_manifold_ms"] / out[f"{label}_plain_ms"]
        out[f"{label}_ratio_full_size"] = out[f"{label}_manifold_full_size_ms"] / out[f"{label}_plain_ms"]
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in out.items()}


def checkpoint_bytes(path: Path, m, work: Path) -> dict:
    full = m.materialize(m.space.full)
    params = sum(p.numel() for p in full.parameters())
    saved = save_model(full, work / "full_network.safetensors", {"dataset": m.info.dataset})
    inr_params = sum(p.numel() for p in m.inr.parameters())
    grid = sum(v.numel() for k, v in m.inr.state_dict().items() if "grid" in k)
    calib = 0 if m.calibration is None else m.calibration.numel() * m.calibration.element_size()
    out = {"manifold_file_bytes": path.stat().st_size, "network_params": params, "network_fp32_bytes": 4 * params,
           "network_file_bytes": Path(saved).stat().st_size, "inr_params": inr_params, "weight_grid_params": grid,
           "calibration_bytes": calib}
    out["ratio_vs_fp32_weights"] = round(out["manifold_file_bytes"] / out["network_fp32_bytes"], 3)
    out["fp16_projected_bytes"] = out["manifold_file_bytes"] - 2 * inr_params
    out["fp16_projected_ratio"] = round(out["fp16_projected_bytes"] / out["network_fp32_bytes"], 3)
    return out


def fp16_accuracy(m, configs: list[ArchConfig], ds) -> list[dict]:
    """Test top-1 with the INR's tensors rounded to fp16 (what an fp16 manifold file would hold)."""
    state = {k: v.clone() for k, v in m.inr.state_dict().items()}
    rows = []
    for c in configs:
        fp32 = accuracy(m.materialize(c), ds.test, ds.norm)
        m.inr.load_state_dict({k: v.half().float() if v.is_floating_point() else v for k, v in state.items()})
        fp16 = accuracy(m.materialize(c), ds.test, ds.norm)
        m.inr.load_state_dict(state)
        rows.append({"config": str(c), "top1_fp32": round(fp32, 4), "top1_fp16_inr": round(fp16, 4)})
        print(f"fp16 INR {c}: {fp32:.4f} -> {fp16:.4f}", flush=True)
    return rows


def ort_rows(m, configs: list[ArchConfig], batches: tuple[int, ...], runs: int) -> list[dict]:
    sp = m.space
    shape = sp.input_shape
    full_macs = count_cost(ResNet(sp.full, sp.in_channels, sp.num_classes), shape).macs
    rows = []
    for c in configs:
        spec = ModelSpec(shape, m.info.normalization, m.info.classes, str(c))
        mat = m.materialize(c)
        torch.manual_seed(0)
        dense = ResNet(c, sp.in_channels, sp.num_classes, "none").eval()  # built by hand, random weights
        cost = count_cost(mat, shape)
        row = {"config": str(c), "flops_frac": round(cost.macs / full_macs, 4), "mflops": round(cost.mflops, 3)}
        for b in batches:
            lat = interleaved_latency_ms({"materialised": mat, "dense": dense}, spec, b, runs)
            for kind in ("wall", "cpu"):
                row[f"b{b}_{kind}_materialised_ms"] = round(lat["materialised"][kind], 4)
                row[f"b{b}_{kind}_dense_ms"] = round(lat["dense"][kind], 4)
                row[f"b{b}_{kind}_ratio"] = round(lat["materialised"][kind] / lat["dense"][kind], 3)
        rows.append(row)
        print("ORT", row, flush=True)
    for b in batches:
        for kind in ("wall", "cpu"):
            ref = rows[0][f"b{b}_{kind}_materialised_ms"]
            for r in rows:
                r[f"b{b}_{kind}_time_frac"] = round(r[f"b{b}_{kind}_materialised_ms"] / ref, 3)
    return rows


def fit_times(path: Path, work: Path) -> dict:
    from metaforge.fit import fit

    cold = work / "fit" / path.name
    shutil.rmtree(cold.parent, ignore_errors=True)
    cold.parent.mkdir(parents=True)
    shutil.copy(path, cold)  # a fresh copy: no accuracy cache beside it
    out = {}
    for run in ("cold", "warm"):
        t = time.perf_counter()
        res = fit(cold, "host-cpu")
        out[f"{run}_s"] = round(time.perf_counter() - t, 2)
        out[f"{run}_pick"] = str(res.pick.config)
        print(f"fit ({run} accuracy cache): {out[f'{run}_s']} s, pick {res.pick.config}", flush=True)
    return out


def export_times(path: Path, config: str, work: Path) -> list[dict]:
    from metaforge.checkpoint import load_manifold
    from metaforge.deploy.job import job_for
    from metaforge.export.pipeline import export_model
    from metaforge.targets import load_target

    rows = []
    for name in EXPORT_TARGETS:
        t = time.perf_counter()
        try:
            job = job_for(load_manifold(path), ArchConfig.parse(config), load_target(name), "config")
            res = export_model(job.model, job.spec, job.target, work / "export" / name, job.data)
            r = res.report.to_dict()
            rows.append({"target": name, "export_s": round(r["export_seconds"], 2), "total_s": round(time.perf_counter() - t, 2),
                         "passed": bool(r["passed"]), "complete": bool(r["complete"]), "bytes": r["artifact"]["size_bytes"]})
        except Exception as e:  # report, never hide: a benchmark row per target
            rows.append({"target": name, "error": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}",
                         "total_s": round(time.perf_counter() - t, 2)})
        print("export", rows[-1], flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--manifold", type=Path, required=True)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--steps", type=int, default=40, help="timed training steps per phase")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--runs", type=int, default=300, help="ORT runs per model and size")
    ap.add_argument("--repeats", type=int, default=10, help="materialise calls per config")
    ap.add_argument("--skip", nargs="*", default=[], choices=["train", "fp16", "fit", "export"])
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    m = load_manifold(args.manifold)
    tc = m.info.train_config
    configs = [m.space.scaled(f, tuple(max(lo, d - k) for d, lo in zip(m.space.max_depths, m.space.min_depths))) for f, k in SIZES]
    result: dict = {"manifold": str(args.manifold), "torch_threads": torch.get_num_threads()}
    t0 = time.perf_counter()
    result["materialise"] = materialise_ms(m, configs, args.repeats)
    result["checkpoint"] = checkpoint_bytes(args.manifold, m, args.work)
    print("checkpoint", result["checkpoint"], flush=True)
    result["ort"] = ort_rows(m, configs, (1, 32), args.runs)
    if "train" not in args.skip:
        result["train_step"] = train_steps(tc["dataset"], tc.get("data_dir"), args.steps, args.batch_size, args.work)
        print("train step", result["train_step"], flush=True)
    if "fp16" not in args.skip:
        ds = m.dataset()
        result["fp16"] = fp16_accuracy(m, [configs[0], configs[4], configs[7]], ds)
    if "fit" not in args.skip:
        result["fit"] = fit_times(args.manifold, args.work)
    if "export" not in args.skip:
        result["export"] = export_times(args.manifold, str(configs[3]), args.work)
    result["wall_s"] = round(time.perf_counter() - t0, 1)
    out = args.json or args.work / "speed.json"
    atomic_write_text(out, json.dumps(result, indent=1) + "\n")
    print(tables(result))
    print(f"wrote {out} ({result['wall_s']} s)")


if __name__ == "__main__":
    main()
