"""Reads shared/golden cases (README there): manifest.json + raw little-endian float32 files."""

from __future__ import annotations

import json
import os
from typing import Dict, List

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
_CANDIDATES = [
    os.environ.get("ATTNKIT_GOLDEN", ""),
    os.path.join(HERE, "..", "..", "..", "shared", "golden"),  # a checkout with shared/ inside
    os.path.join(HERE, "..", "..", "..", "..", "shared", "golden"),  # a worktree beside shared/
]


def golden_dir() -> str:
    for path in _CANDIDATES:
        if path and os.path.isfile(os.path.join(path, "index.json")):
            return os.path.abspath(path)
    raise FileNotFoundError("golden vectors not found: set ATTNKIT_GOLDEN to the shared/golden folder")


def case_names(variants: List[str]) -> List[str]:
    with open(os.path.join(golden_dir(), "index.json")) as f:
        return [c["name"] for c in json.load(f) if c["variant"] in variants]


class Case:
    def __init__(self, name: str):
        self.dir = os.path.join(golden_dir(), name)
        with open(os.path.join(self.dir, "manifest.json")) as f:
            self.manifest = json.load(f)
        self.config = self.manifest["config"]
        self.atol = self.manifest["tolerance"]["atol"]
        self.rtol = self.manifest["tolerance"]["rtol"]

    def _load(self, section: str, key: str) -> torch.Tensor:
        info = self.manifest[section][key]
        data = np.fromfile(os.path.join(self.dir, info["file"]), dtype="<f4")
        return torch.from_numpy(data.astype(np.float32)).reshape(info["shape"])

    def input(self, key: str) -> torch.Tensor:
        return self._load("inputs", key)

    def weight(self, key: str) -> torch.Tensor:
        return self._load("weights", key)

    def expected(self, key: str) -> torch.Tensor:
        return self._load("expected", key)

    def has(self, section: str, key: str) -> bool:
        return key in self.manifest.get(section, {})

    def check(self, key: str, actual: torch.Tensor) -> None:
        """The manifest's rule: |a − e| ≤ atol + rtol·|e| everywhere, infinities equal."""
        expected = self.expected(key)
        actual = actual.detach().float().cpu()
        assert tuple(actual.shape) == tuple(expected.shape), f"{key}: shape {tuple(actual.shape)} != {tuple(expected.shape)}"
        inf = torch.isinf(expected)
        assert torch.equal(torch.isinf(actual), inf), f"{key}: infinities differ"
        assert torch.equal(actual[inf], expected[inf]), f"{key}: infinities differ in sign"
        a, e = actual[~inf], expected[~inf]
        err = (a - e).abs()
        bound = self.atol + self.rtol * e.abs()
        worst = float((err - bound).max()) if err.numel() else -1.0
        assert worst <= 0, f"{key}: max |a-e| = {float(err.max()):.3e} exceeds the tolerance"


def all_weights(case: Case) -> Dict[str, torch.Tensor]:
    return {k: case.weight(k) for k in case.manifest.get("weights", {})}
