"""Identity-free face motion from face landmarks (MediaPipe's ``mediapipe-contours``).

Per frame: mouth opening and width, each eye's opening, each brow's height, and the
head's roll, yaw and pitch (from where the eyes sit between the cheeks and between
forehead and chin). Distances are divided by the distance between the outer eye
corners, so the size of the face and its distance to the camera drop out; then each
feature's median over the clip is subtracted, so what remains is how this face moves,
not what it looks like at rest (its identity).
"""

from __future__ import annotations

import numpy as np

#: MediaPipe face-mesh indices used (all on the contours charanim stores)
MESH = {
    "lip_top": 13, "lip_bottom": 14, "mouth_right": 61, "mouth_left": 291,
    "eye_left_top": 386, "eye_left_bottom": 374, "eye_right_top": 159, "eye_right_bottom": 145,
    "eye_right_outer": 33, "eye_left_outer": 263, "brow_right": 105, "brow_left": 334,
    "forehead": 10, "chin": 152, "cheek_right": 234, "cheek_left": 454,
}  # fmt: skip
#: the sorted mesh indices of the ``mediapipe-contours`` face format (face oval, eyes,
#: eyebrows, lips), in the order the points are stored
CONTOURS = (
    0, 7, 10, 13, 14, 17, 21, 33, 37, 39, 40, 46, 52, 53, 54, 55, 58, 61, 63, 65, 66, 67, 70, 78, 80, 81,
    82, 84, 87, 88, 91, 93, 95, 103, 105, 107, 109, 127, 132, 133, 136, 144, 145, 146, 148, 149, 150, 152,
    153, 154, 155, 157, 158, 159, 160, 161, 162, 163, 172, 173, 176, 178, 181, 185, 191, 234, 246, 249,
    251, 263, 267, 269, 270, 276, 282, 283, 284, 285, 288, 291, 293, 295, 296, 297, 300, 308, 310, 311,
    312, 314, 317, 318, 321, 323, 324, 332, 334, 336, 338, 356, 361, 362, 365, 373, 374, 375, 377, 378,
    379, 380, 381, 382, 384, 385, 386, 387, 388, 389, 390, 397, 398, 400, 402, 405, 409, 415, 454, 466,
)  # fmt: skip
NAMES = (
    "mouth_open",
    "mouth_width",
    "eye_left",
    "eye_right",
    "brow_left",
    "brow_right",
    "roll",
    "yaw",
    "pitch",
)
#: the feature vector: the values above, then 1 where a face was seen (0: all zeros)
DIM = len(NAMES) + 1


def face_features(faces: list[np.ndarray | None]) -> np.ndarray:
    """``faces[i]`` ``[128, 3]`` contour points of frame ``i`` or None -> ``float32 [F, DIM]``."""
    index = {name: CONTOURS.index(mesh) for name, mesh in MESH.items()}
    raw = np.zeros((len(faces), len(NAMES)), np.float32)
    seen = np.zeros(len(faces), bool)
    for i, face in enumerate(faces):
        if face is None or len(face) != len(CONTOURS) or (face[:, 2] <= 0).any():
            continue
        p = {name: face[j, :2].astype(np.float64) for name, j in index.items()}
        scale = np.linalg.norm(p["eye_left_outer"] - p["eye_right_outer"])
        if scale < 1e-6:
            continue
        eyes = (p["eye_left_outer"] + p["eye_right_outer"]) / 2
        across = p["eye_left_outer"] - p["eye_right_outer"]
        left, right = np.linalg.norm(p["cheek_left"] - eyes), np.linalg.norm(p["cheek_right"] - eyes)
        up, down = np.linalg.norm(p["forehead"] - eyes), np.linalg.norm(p["chin"] - eyes)
        raw[i] = (
            np.linalg.norm(p["lip_top"] - p["lip_bottom"]) / scale,
            np.linalg.norm(p["mouth_left"] - p["mouth_right"]) / scale,
            np.linalg.norm(p["eye_left_top"] - p["eye_left_bottom"]) / scale,
            np.linalg.norm(p["eye_right_top"] - p["eye_right_bottom"]) / scale,
            np.linalg.norm(p["brow_left"] - p["eye_left_top"]) / scale,
            np.linalg.norm(p["brow_right"] - p["eye_right_top"]) / scale,
            np.arctan2(across[1], across[0]),
            (left - right) / max(left + right, 1e-6),
            (up - down) / max(up + down, 1e-6),
        )
        seen[i] = True
    if seen.any():  # what is left is motion: the clip's own resting face is taken out
        raw[seen] -= np.median(raw[seen], axis=0)
        raw[~seen] = 0.0
    return np.concatenate([raw, seen[:, None].astype(np.float32)], axis=1)
