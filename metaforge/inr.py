"""The implicit neural representation: coordinates of a weight (and the wanted size) -> its value.

One query per (layer, output channel a, input channel b) returns the whole kxk kernel; one query
per (layer, output channel a) returns the per-channel vector (a bias, or BatchNorm's scale and
shift). A query's features are:
- the codes of its two channel axes, read by linear interpolation from a learnable grid per
  channel group at the cell-centred position (a + 0.5) / C: a narrower network samples a coarser
  grid of the same codes (a departure from NeuMeta, which uses coordinates alone);
- Fourier features of the two positions, with few bands (high bands alias on grids this small);
- the size: C_out / max, C_in / max and the stage's depth / max depth;
- a learnable embedding of the layer slot, and a flag for vector queries.
A shared residual MLP trunk maps features to a hidden vector; small per-slot heads map it to
values, added to a bilinear sample of a learnable per-layer weight grid (initialised with the
base network, so the full size is exact from the start and the MLP learns size-dependent
corrections). Fan-in scaling: a weight is output * scale / C_in, so a layer with half the input
channels gets twice the per-channel weight and keeps its output magnitude.

Coordinate noise (training, and K-sample averaging) jitters each channel's position within its
cell, so every feature is separable into an output-axis and an input-axis part: the first trunk
layer and the grid sampling are computed per axis and broadcast, never per query.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from metaforge.inr_config import INRConfig  # re-exported: its home is torch-free (train/config.py imports it)
from metaforge.layout import Layer, group_width, is_fixed, layers
from metaforge.space import ArchConfig, ArchSpace


@dataclass(frozen=True)
class Jitter:
    """Coordinate noise: each channel moves within its cell, to stratum ``stratum`` of ``strata``.

    Training uses one stratum (uniform noise in the cell, as NeuMeta); K-sample averaging at
    materialisation uses K strata, so K samples cover every channel's cell evenly.
    """

    gen: torch.Generator
    stratum: int = 0
    strata: int = 1


def _key(group: str) -> str:
    return group.replace(".", "_")


def interpolation_matrix(u: torch.Tensor, g: int) -> torch.Tensor:
    """[len(u), g] matrix of linear-interpolation weights at cell-centred positions u in [0, 1]."""
    m = torch.zeros(u.shape[0], g, device=u.device, dtype=u.dtype)
    if g == 1:
        return m + 1
    p = (u * g - 0.5).clamp(0, g - 1)
    i0 = p.floor().long().clamp(max=g - 2)
    t = p - i0
    rows = torch.arange(u.shape[0], device=u.device)
    m[rows, i0] = 1 - t
    m[rows, i0 + 1] = t
    return m


class WeightINR(nn.Module):
    """Generates every conv and linear tensor of any config in an :class:`ArchSpace`."""

    def __init__(self, space: ArchSpace, cfg: INRConfig, bn: bool) -> None:
        super().__init__()
        self.space, self.cfg, self.bn = space, cfg, bn
        self.slots = layers(space.full)
        self.slot_index = {layer.path: i for i, layer in enumerate(self.slots)}
        groups = {g for layer in self.slots for g in (layer.out_group, layer.in_group)}
        self.codes = nn.ParameterDict({_key(g): nn.Parameter(torch.randn(self._width(g), cfg.code_dim)) for g in sorted(groups)})
        self.slot_emb = nn.Parameter(0.1 * torch.randn(len(self.slots), cfg.slot_dim))
        axis_dim = cfg.code_dim + 1 + 2 * cfg.fourier_bands
        self.inp_out = nn.Linear(axis_dim, cfg.hidden, bias=False)
        self.inp_in = nn.Linear(axis_dim, cfg.hidden, bias=False)
        self.inp_ctx = nn.Linear(3 + cfg.slot_dim + 1, cfg.hidden)
        self.hidden = nn.ModuleList(nn.Linear(cfg.hidden, cfg.hidden) for _ in range(cfg.layers))
        self.gates = nn.Parameter(torch.full((cfg.layers,), 0.1))
        self.weight_heads = nn.ModuleList(nn.Linear(cfg.hidden, max(1, s.kernel**2)) for s in self.slots)
        self.vector_heads = nn.ModuleList(nn.Linear(cfg.hidden, self._vector_dim(s)) for s in self.slots)
        if cfg.weight_grid:
            # The grid carries the weights; the MLP learns size-dependent corrections from zero.
            dims = [(self._width(s.out_group), self._width(s.in_group), max(1, s.kernel**2)) for s in self.slots]
            self.weight_grids = nn.ParameterList(nn.Parameter(torch.zeros(d)) for d in dims)
            self.vector_grids = nn.ParameterList(nn.Parameter(torch.zeros(d[0], self._vector_dim(s))) for d, s in zip(dims, self.slots))
            for head in (*self.weight_heads, *self.vector_heads):
                nn.init.zeros_(head.weight)
                nn.init.zeros_(head.bias)
        n = len(self.slots)
        self.register_buffer("weight_scale", torch.ones(n))
        self.register_buffer("vector_offset", torch.zeros(n, 2))
        self.register_buffer("vector_scale", torch.ones(n, 2))
        self.register_buffer("freqs", (2.0 ** torch.arange(cfg.fourier_bands)) * math.pi)

    def grid_parameters(self) -> list[nn.Parameter]:
        """The full-resolution grids (the base network's weights); empty without a weight grid."""
        if not self.cfg.weight_grid:
            return []
        return [*self.weight_grids, *self.vector_grids]

    def _width(self, group: str) -> int:
        return group_width(group, self.space.full, self.space.in_channels, self.space.num_classes)

    def _vector_dim(self, layer: Layer) -> int:
        return 2 if self.bn and layer.kind != "fc" else 1

    # ---- features -------------------------------------------------------------------------
    def _fourier(self, x: torch.Tensor) -> torch.Tensor:
        ang = x.unsqueeze(-1) * self.freqs
        return torch.cat([x.unsqueeze(-1), torch.sin(ang), torch.cos(ang)], dim=-1)

    def _positions(self, group: str, width: int, jitter: Jitter | None) -> torch.Tensor:
        """Cell-centred positions of a group's channels, moved within the cell by ``jitter``."""
        pos = torch.arange(width, dtype=torch.float32) + 0.5
        if jitter is not None and not is_fixed(group):
            u = (jitter.stratum + torch.rand(width, generator=jitter.gen)) / jitter.strata
            pos = pos + u - 0.5
        axis = self._width(group) if self.cfg.width_map == "nested" else width
        return (pos / axis).to(self.freqs.device)

    def _axis(self, group: str, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(features [C, D], interpolation matrix [C, G]) of one channel axis."""
        grid = self.codes[_key(group)]
        interp = interpolation_matrix(u, grid.shape[0])
        return torch.cat([interp @ grid, self._fourier(u)], dim=1), interp

    def _trunk(self, h: torch.Tensor) -> torch.Tensor:
        h = nn.functional.silu(h)
        for gate, lin in zip(self.gates, self.hidden):
            h = h + gate * nn.functional.silu(lin(h))
        return h

    # ---- generation -----------------------------------------------------------------------
    def raw(self, config: ArchConfig, jitter: Jitter | None = None) -> list[tuple[Layer, torch.Tensor, torch.Tensor, int, int]]:
        """Outputs in normalised units, per layer: (layer, weights [Cout, Cin, T], vectors [Cout, P], Cout, Cin)."""
        sp = self.space
        pre, grids = [], []
        zero = torch.zeros(1, device=self.freqs.device)
        blank = self.inp_in(torch.cat([zero.expand(self.cfg.code_dim), self._fourier(zero)[0]]))  # a vector query's input axis
        for layer in layers(config):
            slot = self.slot_index[layer.path]
            c_out = group_width(layer.out_group, config, sp.in_channels, sp.num_classes)
            c_in = group_width(layer.in_group, config, sp.in_channels, sp.num_classes)
            f_out, r_out = self._axis(layer.out_group, self._positions(layer.out_group, c_out, jitter))
            f_in, r_in = self._axis(layer.in_group, self._positions(layer.in_group, c_in, jitter))
            stage_ctx = torch.tensor(
                [c_out / r_out.shape[1], c_in / r_in.shape[1], config.depths[layer.stage] / sp.max_depths[layer.stage], 0.0],
                device=f_out.device,
            )
            ctx = torch.stack([stage_ctx, stage_ctx + torch.tensor([0.0, 0.0, 0.0, 1.0], device=f_out.device)])
            ctx = self.inp_ctx(torch.cat([ctx[:, :3], self.slot_emb[slot].expand(2, -1), ctx[:, 3:]], dim=1))
            a, b = self.inp_out(f_out), self.inp_in(f_in)
            pre.append((a[:, None, :] + b[None, :, :] + ctx[0]).reshape(c_out * c_in, -1))
            pre.append(a + blank + ctx[1])
            grids.append((layer, slot, r_out, r_in, c_out, c_in))
        # split, not slicing: the backward of one split is one concatenation, while every
        # slice's backward would allocate a zero tensor the size of the whole batch
        parts = iter(torch.split(self._trunk(torch.cat(pre, dim=0)), [p.shape[0] for p in pre]))
        out = []
        for layer, slot, r_out, r_in, c_out, c_in in grids:
            hw, hv = next(parts), next(parts)
            w = self.weight_heads[slot](hw).reshape(c_out, c_in, -1)
            vec = self.vector_heads[slot](hv)
            if self.cfg.weight_grid:
                g = self.weight_grids[slot]
                w = w + torch.einsum("ag,ght,bh->abt", r_out, g, r_in)
                vec = vec + r_out @ self.vector_grids[slot]
            out.append((layer, w, vec, c_out, c_in))
        return out

    def generate(self, config: ArchConfig, jitter: Jitter | None = None) -> dict[str, torch.Tensor]:
        """The named tensors of ``config``'s network (conv weights, biases or BN scale/shift)."""
        params: dict[str, torch.Tensor] = {}
        for layer, w, v, c_out, c_in in self.raw(config, jitter):
            slot = self.slot_index[layer.path]
            shape = (c_out, c_in) if layer.kernel == 0 else (c_out, c_in, layer.kernel, layer.kernel)
            params[layer.weight_name] = (w * (self.weight_scale[slot] / c_in)).reshape(shape)
            for p, name in enumerate(layer.vector_names(self.bn)):
                params[name] = self.vector_offset[slot, p] + v[:, p] * self.vector_scale[slot, p]
        return params

    @torch.no_grad()
    def init_grids(self, state: dict[str, torch.Tensor]) -> None:
        """Load the full-size ground truth into the grids (exact reconstruction at full size)."""
        if not self.cfg.weight_grid:
            return
        for layer in self.slots:
            slot = self.slot_index[layer.path]
            w = state[layer.weight_name]
            self.weight_grids[slot].copy_((w * w.shape[1] / self.weight_scale[slot]).reshape(w.shape[0], w.shape[1], -1))
            for p, name in enumerate(layer.vector_names(self.bn)):
                self.vector_grids[slot][:, p] = (state[name] - self.vector_offset[slot, p]) / self.vector_scale[slot, p]

    @torch.no_grad()
    def fit_scales(self, state: dict[str, torch.Tensor]) -> None:
        """Set per-slot output scales from the ground truth so every head starts at unit scale."""
        for layer in self.slots:
            slot = self.slot_index[layer.path]
            w = state[layer.weight_name]
            self.weight_scale[slot] = (w * w.shape[1]).std().clamp_min(1e-6)
            for p, name in enumerate(layer.vector_names(self.bn)):
                self.vector_offset[slot, p] = state[name].mean()
                self.vector_scale[slot, p] = state[name].std().clamp_min(1e-3) if state[name].numel() > 1 else 1.0

    @torch.no_grad()
    def init_codes(self, state: dict[str, torch.Tensor]) -> None:
        """Start each group's codes at the principal components of its channels' slices."""
        slices: dict[str, list[torch.Tensor]] = {}
        for layer in self.slots:
            w = state[layer.weight_name]
            slices.setdefault(layer.out_group, []).append(w.reshape(w.shape[0], -1))
            slices.setdefault(layer.in_group, []).append(w.transpose(0, 1).reshape(w.shape[1], -1))
        for group, parts in slices.items():
            if parts[0].shape[0] < 2:
                continue
            x = torch.cat([p / p.std().clamp_min(1e-8) for p in parts], dim=1)
            x = x - x.mean(0, keepdim=True)
            grid = self.codes[_key(group)]
            e = min(grid.shape[1], x.shape[0], x.shape[1])
            u, s, _ = torch.linalg.svd(x, full_matrices=False)
            pcs = u[:, :e] * s[:e]
            pcs = pcs / pcs.std(0, keepdim=True).clamp_min(1e-8)
            grid.normal_(0.0, 0.1)
            grid[:, :e] = pcs

    def describe(self) -> dict:
        return {"bn": self.bn, **self.cfg.to_dict()}
