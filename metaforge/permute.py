"""Channel orders of the base network: reorder channels, function unchanged.

Every channel group (see :mod:`metaforge.layout`) is reordered as a whole. Two orders:

* smoothing (for the resampling width map): the slices of all tensors touching the group are
  concatenated into one [C, D] matrix, and the order is a short Hamiltonian path under L1
  distance (nearest-neighbour start, then 2-opt). A smooth channel axis is what lets a narrower
  network sample a coarser grid of the same function.
* importance (for the nested width map): channels by descending L1 norm of the filters that write
  them, so the first C channels are the ones L1 filter pruning (Li et al. 2017) would keep;
* usage (for the nested width map): channels by descending L1 norm of the weights that read them,
  as OFA sorts channels before elastic-width training. Why: BatchNorm after every conv rescales
  each channel, so the norm of the filter that writes it says little about its weight in the
  network, while the weights that read it do (the base pruned to 75% width and recalibrated:
  81-85% validation top-1 against 55-81% with the writers' norm, docs/METHOD.md).
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from metaforge.layout import Layer, is_fixed, layers
from metaforge.nets import ResNet
from metaforge.space import ArchConfig


def _out_tensors(layer: Layer, state: dict[str, torch.Tensor]) -> list[str]:
    """Names of tensors whose first axis is ``layer``'s output channel axis."""
    prefix = "fc" if layer.kind == "fc" else layer.path
    names = [layer.weight_name, *layer.vector_names(bn=False), *layer.vector_names(bn=True)]
    names += [f"{prefix}.bn.running_mean", f"{prefix}.bn.running_var"]
    return [n for n in dict.fromkeys(names) if n in state]


def _group_members(model: ResNet) -> dict[str, list[tuple[Layer, str]]]:
    members: dict[str, list[tuple[Layer, str]]] = {}
    for layer in layers(model.config):
        members.setdefault(layer.out_group, []).append((layer, "out"))
        members.setdefault(layer.in_group, []).append((layer, "in"))
    return {g: m for g, m in members.items() if not is_fixed(g)}


def _features(members: list[tuple[Layer, str]], state: dict[str, torch.Tensor]) -> np.ndarray:
    cols = []
    for layer, role in members:
        if role == "out":
            for name in _out_tensors(layer, state):
                if "running" not in name:
                    cols.append(state[name].reshape(state[name].shape[0], -1))
        else:
            w = state[layer.weight_name]
            cols.append(w.transpose(0, 1).reshape(w.shape[1], -1))
    return torch.cat(cols, dim=1).detach().double().cpu().numpy()


def shortest_path_order(features: np.ndarray) -> np.ndarray:
    """Order of rows along a short open path under L1 distance (greedy start, 2-opt polish)."""
    n = features.shape[0]
    if n <= 2:
        return np.arange(n)
    dist = np.abs(features[:, None, :] - features[None, :, :]).sum(-1)
    start = int(dist.sum(1).argmax())  # an outlier makes a good end of an open path
    path, left = [start], set(range(n)) - {start}
    while left:
        last = path[-1]
        nxt = min(left, key=lambda j: dist[last, j])
        path.append(nxt)
        left.remove(nxt)
    p = np.array(path)
    improved = True
    while improved:
        improved = False
        for i in range(1, n - 1):
            # reverse p[i:j+1]; edges (p[i-1], p[i]) and (p[j], p[j+1]) change
            j = np.arange(i + 1, n)
            before = dist[p[i - 1], p[i]] + np.where(j + 1 < n, dist[p[j], p[np.minimum(j + 1, n - 1)]], 0.0)
            after = dist[p[i - 1], p[j]] + np.where(j + 1 < n, dist[p[i], p[np.minimum(j + 1, n - 1)]], 0.0)
            gain = before - after
            k = int(gain.argmax())
            if gain[k] > 1e-12:
                p[i : j[k] + 1] = p[i : j[k] + 1][::-1].copy()
                improved = True
        # also allow reversing a prefix (the start of an open path is free)
        j = np.arange(1, n - 1)
        gain = dist[p[j], p[j + 1]] - dist[p[0], p[j + 1]]
        k = int(gain.argmax())
        if gain[k] > 1e-12:
            p[: j[k] + 1] = p[: j[k] + 1][::-1].copy()
            improved = True
    return p


def smoothing_permutations(model: ResNet) -> dict[str, torch.Tensor]:
    """One channel order per group of ``model`` that makes neighbouring channels similar."""
    state = model.state_dict()
    return {
        group: torch.as_tensor(shortest_path_order(_features(members, state)), dtype=torch.long)
        for group, members in _group_members(model).items()
    }


def channel_scores(model: ResNet, depths: tuple[int, ...] | None = None, by: str = "writers") -> dict[str, torch.Tensor]:
    """Per channel group, the summed L1 norm of every filter (in blocks up to ``depths``) that writes each
    channel (``by="writers"``), or of every weight that reads it (``by="readers"``).

    A residual stream is written by the stem (or a projection) and every block's second conv, and read by
    every block's first conv and the next stage's projection (or the classifier), so those count together;
    a block's inner channels by its first conv (writer) or its second conv (reader) alone.
    """
    state = model.state_dict()
    kept = ArchConfig(model.config.widths, depths or model.config.depths)
    scores: dict[str, torch.Tensor] = {}
    for layer in layers(kept):
        w = state[layer.weight_name]
        group = layer.out_group if by == "writers" else layer.in_group
        if is_fixed(group):
            continue
        l1 = (w if by == "writers" else w.transpose(0, 1)).abs().flatten(1).sum(1)
        scores[group] = scores.get(group, 0) + l1
    return scores


def importance_permutations(model: ResNet, by: str = "writers") -> dict[str, torch.Tensor]:
    """One channel order per group of ``model``: most important (largest L1 score ``by``) first."""
    return {group: torch.argsort(score, descending=True, stable=True).cpu()
            for group, score in channel_scores(model, by=by).items()}


def channel_permutations(model: ResNet, order: str) -> dict[str, torch.Tensor]:
    """The permutations of ``order`` ("smooth", "importance" or "usage") for ``model``."""
    if order == "smooth":
        return smoothing_permutations(model)
    return importance_permutations(model, by="readers" if order == "usage" else "writers")


@torch.no_grad()
def permute_channels(model: ResNet, perms: dict[str, torch.Tensor]) -> ResNet:
    """A copy of ``model`` with every group's channels reordered by ``perms``; same function."""
    out = copy.deepcopy(model)
    state = out.state_dict()
    for group, members in _group_members(model).items():
        if group not in perms:
            continue
        perm = perms[group].to(next(iter(state.values())).device)
        for layer, role in members:
            if role == "out":
                for name in _out_tensors(layer, state):
                    state[name].copy_(state[name][perm])
            else:
                w = state[layer.weight_name]
                w.copy_(w[:, perm])
    return out


def channel_variation(model: ResNet) -> float:
    """Mean L1 difference between neighbouring channels over all groups (lower is smoother)."""
    state = model.state_dict()
    total, count = 0.0, 0
    for members in _group_members(model).values():
        f = _features(members, state)
        total += float(np.abs(np.diff(f, axis=0)).sum())
        count += f.shape[0] - 1
    return total / max(count, 1)
