"""The default pose estimator: MediaPipe Holistic, whose models ship inside the
``mediapipe==0.10.14`` wheel (later releases ship none), so it runs offline.

Body: the 33 pose landmarks mapped to COCO-17, confidence = MediaPipe's visibility.
Hands: 21 points each (the person's own left, then right). Face: the mesh points on the
face oval, eyes, eyebrows and lips (a subset of the 468, listed in the header as
``mediapipe-contours``). Video mode tracks between frames; images are processed
independently. Only ``model_complexity=1`` is bundled (0 and 2 would download).
"""

from __future__ import annotations

import warnings

import numpy as np

from charanim.errors import CharanimError
from charanim.pose.estimate import PoseEstimator
from charanim.pose.keypoints import Person
from charanim.quiet import native_stderr_silenced, quiet_mediapipe_logs

#: MediaPipe pose landmark index of each COCO-17 keypoint
COCO_FROM_MEDIAPIPE = [0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28]
INSTALL_HINT = "pip install 'charanim[pose]' (mediapipe 0.10.14, whose wheel carries the models)"


def _import_mediapipe():
    quiet_mediapipe_logs()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import mediapipe as mp
    except ImportError:
        raise CharanimError(f"The mediapipe pose estimator is not installed: {INSTALL_HINT}.") from None
    return mp


def face_subset(mp) -> list[int]:
    connections = mp.solutions.face_mesh_connections
    groups = (
        "FACEMESH_FACE_OVAL",
        "FACEMESH_LEFT_EYE",
        "FACEMESH_RIGHT_EYE",
        "FACEMESH_LEFT_EYEBROW",
        "FACEMESH_RIGHT_EYEBROW",
        "FACEMESH_LIPS",
    )
    return sorted({i for name in groups for edge in getattr(connections, name) for i in edge})


class MediaPipeEstimator(PoseEstimator):
    name = "mediapipe"
    body_format = "coco17"
    face_format = "mediapipe-contours"
    description = "MediaPipe Holistic (body, hands, face), offline from the mediapipe 0.10.14 wheel"
    max_side = 512

    def __init__(self, hands: bool = True, face: bool = True):
        self.mp = _import_mediapipe()
        self.hands, self.face = hands, face
        self._face_index = face_subset(self.mp)

    @property
    def version(self) -> str:
        return self.mp.__version__

    def estimate(self, frames: np.ndarray, video: bool = True) -> list[list[Person]]:
        holistic = self.hands or self.face
        solution = self.mp.solutions.holistic.Holistic if holistic else self.mp.solutions.pose.Pose
        height, width = frames.shape[1:3]
        scale = np.array([width, height], np.float32)
        people = []
        with native_stderr_silenced(), solution(static_image_mode=not video, model_complexity=1) as model:
            for frame in frames:
                result = model.process(np.ascontiguousarray(frame))
                people.append(
                    [] if result.pose_landmarks is None else [self._person(result, scale, holistic)]
                )
        return people

    def _person(self, result, scale: np.ndarray, holistic: bool) -> Person:
        landmarks = result.pose_landmarks.landmark
        body = np.array(
            [[landmarks[i].x, landmarks[i].y, landmarks[i].visibility] for i in COCO_FROM_MEDIAPIPE],
            np.float32,
        )
        body[:, :2] *= scale
        hands = face = None
        if holistic and self.hands:
            hands = np.zeros((2, 21, 3), np.float32)
            for side, found in enumerate((result.left_hand_landmarks, result.right_hand_landmarks)):
                if found is not None:
                    hands[side] = [[p.x * scale[0], p.y * scale[1], 1.0] for p in found.landmark]
        if holistic and self.face and result.face_landmarks is not None:
            mesh = result.face_landmarks.landmark
            face = np.array(
                [[mesh[i].x * scale[0], mesh[i].y * scale[1], 1.0] for i in self._face_index], np.float32
            )
        return Person(body, hands, face)
