"""The implicit neural representation: coordinates of a weight (and the wanted size) -> its value.

One query per (layer, output channel a, input channel b) returns the whole kxk kernel; one query
per (layer, output channel a) returns the per-channel vector (a bias, or BatchNorm's scale and
shift). A query's features are:
- the codes of its two channel axes, read by linear interpolation from a learnable grid per
  channel group at the cell-centred position (a + 0.5) / C: a narrower network samples a coarser
  grid of the same codes (a measured departure from NeuMeta, which uses coordinates alone);
- Fourier features of the two positions, with few bands (high bands alias on grids this small);
- the size: C_out / max, C_in / max and the stage's depth / max depth;
- a learnable embedding of the layer slot, and a flag for vector queries.
A shared residual MLP trunk maps features to a hidden vector; small per-slot heads map it to
values. Fan-in scaling: a weight is head output * scale / C_in, so a layer with half the input
channels gets twice the per-channel weight and keeps its output magnitude.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from metaforge.layout import Layer, group_width, is_fixed, layers
from metaforge.space import ArchConfig, ArchSpace


@dataclass(frozen=True)
class INRConfig:
    hidden: int = 64
    layers: int = 2
    fourier_bands: int = 3
    code_dim: int = 8
    slot_dim: int = 8
    weight_grid: bool = True  # a learnable full-resolution grid per layer, sampled bilinearly

    def to_dict(self) -> dict:
        return asdict(self)


def _key(group: str) -> str:
    return group.replace(".", "_")


def _axis(u: torch.Tensor, g: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Neighbouring grid indices and weight for cell-centred positions u in [0, 1] on g cells."""
    if g == 1:
        zero = torch.zeros_like(u, dtype=torch.long)
        return zero, zero, torch.zeros_like(u)
    p = (u * g - 0.5).clamp(0, g - 1)
    i0 = p.floor().long().clamp(max=g - 2)
    return i0, i0 + 1, p - i0


def _interp(grid: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Linear interpolation of a [G, E] grid at positions u."""
    i0, i1, t = _axis(u, grid.shape[0])
    t = t.unsqueeze(-1)
    return grid[i0] * (1 - t) + grid[i1] * t


def _bilinear(grid: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Bilinear interpolation of a [G1, G2, T] grid at positions (u, v)."""
    a0, a1, s = _axis(u, grid.shape[0])
    b0, b1, t = _axis(v, grid.shape[1])
    s, t = s.unsqueeze(-1), t.unsqueeze(-1)
    top = grid[a0, b0] * (1 - t) + grid[a0, b1] * t
    bottom = grid[a1, b0] * (1 - t) + grid[a1, b1] * t
    return top * (1 - s) + bottom * s


class WeightINR(nn.Module):
    """Generates every conv and linear tensor of any config in an :class:`ArchSpace`."""

    def __init__(self, space: ArchSpace, cfg: INRConfig, bn: bool) -> None:
        super().__init__()
        self.space, self.cfg, self.bn = space, cfg, bn
        full = space.full
        self.slots = layers(full, space.in_channels)
        self.slot_index = {layer.path: i for i, layer in enumerate(self.slots)}
        groups = {g for layer in self.slots for g in (layer.out_group, layer.in_group)}
        self.codes = nn.ParameterDict(
            {
                _key(g): nn.Parameter(torch.randn(group_width(g, full, space.in_channels, space.num_classes), cfg.code_dim))
                for g in sorted(groups)
            }
        )
        self.slot_emb = nn.Parameter(0.1 * torch.randn(len(self.slots), cfg.slot_dim))
        in_dim = 2 * cfg.code_dim + 2 * (1 + 2 * cfg.fourier_bands) + 3 + cfg.slot_dim + 1
        self.inp = nn.Linear(in_dim, cfg.hidden)
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

    def _width(self, group: str) -> int:
        return group_width(group, self.space.full, self.space.in_channels, self.space.num_classes)

    def _vector_dim(self, layer: Layer) -> int:
        return 2 if self.bn and layer.kind != "fc" else 1

    # ---- features -------------------------------------------------------------------------
    def _fourier(self, x: torch.Tensor) -> torch.Tensor:
        ang = x.unsqueeze(-1) * self.freqs
        return torch.cat([x.unsqueeze(-1), torch.sin(ang), torch.cos(ang)], dim=-1)

    def _positions(self, group: str, width: int, shape: tuple[int, ...], axis: int, gen) -> torch.Tensor:
        idx = torch.arange(width, device=self.freqs.device, dtype=torch.float32)
        view = [1] * len(shape)
        view[axis] = width
        pos = idx.view(view).expand(shape) + 0.5
        if gen is not None and not is_fixed(group):
            pos = pos + torch.rand(shape, generator=gen, device="cpu").to(pos.device) - 0.5
        return pos / width

    def _features(self, layer: Layer, config: ArchConfig, gen) -> tuple[torch.Tensor, ...]:
        sp = self.space
        c_out = group_width(layer.out_group, config, sp.in_channels, sp.num_classes)
        c_in = group_width(layer.in_group, config, sp.in_channels, sp.num_classes)
        g_out = self.codes[_key(layer.out_group)].shape[0]
        g_in = self.codes[_key(layer.in_group)].shape[0]
        slot = self.slot_index[layer.path]
        ctx = torch.tensor(
            [c_out / g_out, c_in / g_in, config.depths[layer.stage] / sp.max_depths[layer.stage]],
            device=self.freqs.device,
        )
        # weight queries: every (a, b) pair
        u = self._positions(layer.out_group, c_out, (c_out, c_in), 0, gen).reshape(-1)
        v = self._positions(layer.in_group, c_in, (c_out, c_in), 1, gen).reshape(-1)
        q = u.shape[0]
        wf = torch.cat(
            [
                _interp(self.codes[_key(layer.out_group)], u),
                _interp(self.codes[_key(layer.in_group)], v),
                self._fourier(u).flatten(1),
                self._fourier(v).flatten(1),
                ctx.expand(q, 3),
                self.slot_emb[slot].expand(q, -1),
                torch.zeros(q, 1, device=u.device),
            ],
            dim=1,
        )
        # vector queries: one per output channel, input side zeroed
        uv = self._positions(layer.out_group, c_out, (c_out,), 0, gen)
        zeros = torch.zeros_like(uv)
        vf = torch.cat(
            [
                _interp(self.codes[_key(layer.out_group)], uv),
                torch.zeros(c_out, self.cfg.code_dim, device=uv.device),
                self._fourier(uv).flatten(1),
                self._fourier(zeros).flatten(1),
                ctx.expand(c_out, 3),
                self.slot_emb[slot].expand(c_out, -1),
                torch.ones(c_out, 1, device=uv.device),
            ],
            dim=1,
        )
        return wf, vf, u, v, uv, c_out, c_in

    def _trunk(self, f: torch.Tensor) -> torch.Tensor:
        h = nn.functional.silu(self.inp(f))
        for gate, lin in zip(self.gates, self.hidden):
            h = h + gate * nn.functional.silu(lin(h))
        return h

    # ---- generation -----------------------------------------------------------------------
    def raw(self, config: ArchConfig, gen: torch.Generator | None = None) -> list[tuple[Layer, torch.Tensor, torch.Tensor, int, int]]:
        """Outputs in normalised units, per layer: (layer, weights [Cout*Cin, T], vectors [Cout, P], Cout, Cin)."""
        feats = [(layer, *self._features(layer, config, gen)) for layer in layers(config, self.space.in_channels)]
        h = self._trunk(torch.cat([t for f in feats for t in f[1:3]], dim=0))
        out, start = [], 0
        for layer, wf, vf, u, v, uv, c_out, c_in in feats:
            slot = self.slot_index[layer.path]
            hw = h[start : start + wf.shape[0]]
            start += wf.shape[0]
            hv = h[start : start + vf.shape[0]]
            start += vf.shape[0]
            w, vec = self.weight_heads[slot](hw), self.vector_heads[slot](hv)
            if self.cfg.weight_grid:
                w = w + _bilinear(self.weight_grids[slot], u, v)
                vec = vec + _interp(self.vector_grids[slot], uv)
            out.append((layer, w, vec, c_out, c_in))
        return out

    def generate(self, config: ArchConfig, gen: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """The named tensors of ``config``'s network (conv weights, biases or BN scale/shift)."""
        params: dict[str, torch.Tensor] = {}
        for layer, w, v, c_out, c_in in self.raw(config, gen):
            slot = self.slot_index[layer.path]
            shape = (c_out, c_in) if layer.kernel == 0 else (c_out, c_in, layer.kernel, layer.kernel)
            params[layer.weight_name] = (w * (self.weight_scale[slot] / c_in)).reshape(shape)
            names = layer.vector_names(self.bn)
            for p, name in enumerate(names):
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
