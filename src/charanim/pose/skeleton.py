"""Kinematic trees over the keypoint formats, and rescaling bones along them.

Keypoint formats list bones for drawing; rescaling needs a tree rooted at the body's
centre. Trees may use virtual joints (the pelvis of COCO-17 is the middle of the
hips) that exist only while transforming. A missing point (confidence 0) stays
missing; its children move with the nearest present ancestor.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from charanim.pose.formats import AP10K, BIRD, BLOB6, COCO17, OPENPOSE18, BodyFormat


@dataclass(frozen=True)
class Tree:
    """``virtual``: name -> keypoints averaged to make it; ``edges``: (parent, child) in
    topological order (parents before children), by name."""

    format: BodyFormat
    root: str
    virtual: dict[str, tuple[str, ...]]
    edges: tuple[tuple[str, str], ...]

    @property
    def names(self) -> list[str]:
        return list(self.format.keypoints) + list(self.virtual)

    @cached_property
    def edge_index(self) -> tuple[list[int], list[int]]:
        """Parents' and children's places in :meth:`extend`'s output, edge by edge."""
        names = self.names
        return [names.index(p) for p, _ in self.edges], [names.index(c) for _, c in self.edges]

    @cached_property
    def edge_levels(self) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """The edges grouped by their parent's depth from the root, shallowest first:
        (parents, children, edge numbers) per level. Every parent of a level is a child of
        an earlier one (or the root), so a level can be processed at once."""
        parents, children = self.edge_index
        depth = {self.names.index(self.root): 0}
        levels: dict[int, list[int]] = {}
        for edge, (parent, child) in enumerate(zip(parents, children, strict=True)):
            level = depth.setdefault(parent, 0)
            depth[child] = level + 1
            levels.setdefault(level, []).append(edge)
        return [
            (np.array([parents[e] for e in edges]), np.array([children[e] for e in edges]), np.array(edges))
            for _, edges in sorted(levels.items())
        ]


def _lr(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    out = []
    for parent, child in pairs:
        for side in ("left", "right"):
            out.append((parent.format(s=side), child.format(s=side)))
    return out


_HUMAN = [("pelvis", "{s}_hip"), ("{s}_hip", "{s}_knee"), ("{s}_knee", "{s}_ankle"), ("neck", "{s}_shoulder"),
          ("{s}_shoulder", "{s}_elbow"), ("{s}_elbow", "{s}_wrist"), ("nose", "{s}_eye"), ("{s}_eye", "{s}_ear")]  # fmt: skip

TREES: dict[str, Tree] = {
    "coco17": Tree(
        COCO17,
        "pelvis",
        {"pelvis": ("left_hip", "right_hip"), "neck": ("left_shoulder", "right_shoulder")},
        tuple([("pelvis", "neck"), ("neck", "nose")] + _lr(_HUMAN)),
    ),
    "openpose18": Tree(
        OPENPOSE18,
        "pelvis",
        {"pelvis": ("left_hip", "right_hip")},
        tuple([("pelvis", "neck"), ("neck", "nose")] + _lr(_HUMAN)),
    ),
    "ap10k": Tree(  # rooted mid-body: a reference facing the other way keeps its place
        AP10K,
        "body",
        {"body": ("neck", "root_of_tail")},
        tuple(
            [("body", "neck"), ("body", "root_of_tail"), ("neck", "nose")]
            + _lr(
                [
                    ("neck", "{s}_shoulder"),
                    ("{s}_shoulder", "{s}_elbow"),
                    ("{s}_elbow", "{s}_front_paw"),
                    ("root_of_tail", "{s}_hip"),
                    ("{s}_hip", "{s}_knee"),
                    ("{s}_knee", "{s}_back_paw"),
                    ("nose", "{s}_eye"),
                ]
            )
        ),
    ),  # fmt: skip
    "bird": Tree(
        BIRD,
        "body",
        {},
        tuple(
            [("body", "neck"), ("neck", "head"), ("head", "beak"), ("head", "eye"), ("body", "tail")]
            + _lr(
                [
                    ("neck", "{s}_wing_root"),
                    ("{s}_wing_root", "{s}_wing_elbow"),
                    ("{s}_wing_elbow", "{s}_wing_tip"),
                    ("body", "{s}_knee"),
                    ("{s}_knee", "{s}_foot"),
                ]
            )
        ),
    ),  # fmt: skip
    "blob6": Tree(
        BLOB6,
        "center",
        {},
        tuple(
            [("center", "left_eye"), ("center", "right_eye"), ("center", "mouth")]
            + [
                (p, c)
                for i in range(1, 7)
                for p, c in (("center", f"limb{i}_joint"), (f"limb{i}_joint", f"limb{i}_tip"))
            ]
        ),
    ),  # fmt: skip
}


def extend(tree: Tree, points: np.ndarray) -> np.ndarray:
    """``[..., K, 3]`` -> ``[..., K + V, 3]`` with the virtual joints appended (present if
    any of their components is; the mean of the present ones)."""
    extras = []
    for components in tree.virtual.values():
        index = [tree.format.index(name) for name in components]
        part = points[..., index, :]
        present = (part[..., 2] > 0).astype(np.float32)
        count = np.maximum(present.sum(-1, keepdims=True), 1)
        xy = (part[..., :2] * present[..., None]).sum(-2) / count
        confidence = part[..., 2].max(-1, keepdims=True)
        extras.append(np.concatenate([xy, confidence], -1)[..., None, :])
    return np.concatenate([points, *extras], axis=-2) if extras else points.copy()


def bone_lengths(tree: Tree, points: np.ndarray) -> np.ndarray:
    """``[..., E]`` lengths of the tree's edges (NaN where an end is missing)."""
    parents, children = tree.edge_index
    full = extend(tree, points)
    a, b = full[..., parents, :], full[..., children, :]
    length = np.linalg.norm(b[..., :2] - a[..., :2], axis=-1)
    return np.where((a[..., 2] > 0) & (b[..., 2] > 0), length, np.nan)


def rescale_bones(tree: Tree, points: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """Scale every edge vector of the tree by ``scales[e]`` (shape ``[E]`` or ``[..., E]``),
    from the root outwards: a joint moves by its parent's displacement plus the change
    of its own bone. ``points`` is ``[..., K, 3]``; confidences are kept."""
    full = extend(tree, points)
    moved = full.copy()
    scales = np.broadcast_to(np.asarray(scales, np.float64), (*points.shape[:-2], len(tree.edges)))
    for p, c, edges in tree.edge_levels:  # a level's parents have all moved already
        both = (full[..., p, 2] > 0) & (full[..., c, 2] > 0)
        shift = moved[..., p, :2] - full[..., p, :2]
        stretch = (scales[..., edges, None] - 1.0) * (full[..., c, :2] - full[..., p, :2])
        moved[..., c, :2] = full[..., c, :2] + shift + np.where(both[..., None], stretch, 0.0)
    return moved[..., : len(tree.format), :].astype(points.dtype)
