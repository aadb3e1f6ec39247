"""A small re-ID backbone for a Raspberry Pi: ~0.4 M parameters, 3x64x64 in (default), 128-d L2-normalised out.

Depthwise-separable residual blocks (MobileNet-style) keep the multiply-adds low on the Pi; global
average + max pooling keeps both overall colour and small markings. Mean/std normalisation and the
final L2 normalisation live inside the graph, so the ONNX export expects plain RGB in [0, 1].
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


class _ConvBN(nn.Sequential):
    def __init__(self, cin: int, cout: int, k: int = 3, s: int = 1, groups: int = 1, act: bool = True) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
        ]
        if act:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class _Block(nn.Module):
    """Inverted residual: 1x1 expand, 3x3 depthwise (stride s), 1x1 project."""

    def __init__(self, cin: int, cout: int, s: int, expand: int = 3) -> None:
        super().__init__()
        mid = cin * expand
        self.body = nn.Sequential(
            _ConvBN(cin, mid, 1),
            _ConvBN(mid, mid, 3, s, groups=mid),
            _ConvBN(mid, cout, 1, act=False),
        )
        self.skip = s == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y if self.skip else y


class ReidNet(nn.Module):
    """RGB [0, 1] (B, 3, H, W) -> (B, dim) unit vectors."""

    def __init__(self, dim: int = 128, width: int = 32) -> None:
        super().__init__()
        w = width
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1))
        self.stem = _ConvBN(3, w, 3, 2)  # /2
        self.features = nn.Sequential(
            _Block(w, w, 1),
            _Block(w, w * 2, 2),  # /4
            _Block(w * 2, w * 2, 1),
            _Block(w * 2, w * 3, 2),  # /8
            _Block(w * 3, w * 3, 1),
            _Block(w * 3, w * 4, 2),  # /16
            _Block(w * 4, w * 4, 1),
            _ConvBN(w * 4, w * 8, 1),
        )
        self.head = nn.Linear(w * 8 * 2, dim, bias=False)
        self.head_bn = nn.BatchNorm1d(dim)
        self.dim = dim
        self.width = width

    def features_of(self, x: torch.Tensor) -> torch.Tensor:
        mean, std = self.get_buffer("mean"), self.get_buffer("std")
        x = (x - mean) / std
        x = self.features(self.stem(x))
        pooled = torch.cat([F.adaptive_avg_pool2d(x, 1), F.adaptive_max_pool2d(x, 1)], 1).flatten(1)
        return self.head_bn(self.head(pooled))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.features_of(x), dim=1)

    def spec(self) -> dict[str, Any]:
        return {"arch": "ReidNet", "dim": self.dim, "width": self.width}


def build_reid_model(arch: str = "ReidNet", **kwargs: Any) -> ReidNet:
    archs = {"ReidNet": ReidNet}
    if arch not in archs:
        raise ValueError(f"unknown re-ID architecture {arch!r}; valid: {sorted(archs)}")
    return archs[arch](**kwargs)


class ArcFace(nn.Module):
    """Additive angular margin head over the training identities (used only in training)."""

    def __init__(self, dim: int, n_classes: int, s: float = 30.0, m: float = 0.3) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_classes, dim) * 0.01)
        self.s, self.m = s, m

    def forward(self, emb: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        cos = F.linear(F.normalize(emb, dim=1), F.normalize(self.weight, dim=1)).clamp(-1 + 1e-7, 1 - 1e-7)
        theta = torch.acos(cos)
        target = torch.cos(theta + self.m)
        onehot = F.one_hot(labels, cos.shape[1]).to(cos.dtype)
        logits = self.s * (onehot * target + (1 - onehot) * cos)
        return F.cross_entropy(logits, labels)


def batch_hard_triplet(emb: torch.Tensor, labels: torch.Tensor, margin: float = 0.3) -> torch.Tensor:
    """Batch-hard triplet loss on cosine distance of unit vectors (hardest positive/negative per anchor)."""
    dist = 1.0 - emb @ emb.t()
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=emb.device)
    pos = dist.masked_fill(~same | eye, float("-inf")).max(1).values
    neg = dist.masked_fill(same, float("inf")).min(1).values
    valid = torch.isfinite(pos) & torch.isfinite(neg)
    if not bool(valid.any()):
        return emb.sum() * 0.0
    return F.relu(pos[valid] - neg[valid] + margin).mean()
