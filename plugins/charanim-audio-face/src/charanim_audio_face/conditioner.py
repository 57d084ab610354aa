"""The audio-face conditioner: what skeletons miss on a face, as tokens.

Two streams, one feature vector per output frame, injected as tokens through a
zero-initialised adapter (so a model trained without it is unchanged until trained):

- **face motion** from the driving video's face landmarks (``--pose`` keypoints with a
  face, or the pose estimator on the driving video): identity-free expression and head
  pose (:mod:`charanim_audio_face.face_features`);
- **speech** from ``--audio`` (a WAV, MP3... or a video's audio track), or else the
  driving video's own audio track: log-mel bands and loudness per frame
  (:mod:`charanim_audio_face.audio_features`).

Either may be missing (its part is zeros with its presence flag at 0); both missing is
an error. Length policy: the audio starts with the video; shorter audio is padded with
silence (flagged as absent), longer audio is cut at the video's end. A silent ``--audio``
file is refused (it would drive nothing).
"""

from __future__ import annotations

import numpy as np
import torch

from charanim.conditioning import Condition, Conditioner, Driving, InjectionSite, OutputSpec, Reference
from charanim.errors import CharanimError, ConditionerInputError
from charanim.io.audio import Audio
from charanim_audio_face import audio_features as audio_feats
from charanim_audio_face import face_features as face_feats

FEATURE_DIM = face_feats.DIM + audio_feats.DIM


class AudioFaceConditioner(Conditioner):
    name = "audio-face"
    kind = "audio"
    site = InjectionSite.TOKENS
    needs = frozenset()  # a driving video (face), audio, or both
    feature_dim = FEATURE_DIM
    drives = frozenset({"face"})  # the mouth the voice opens: a refiner leaves it alone
    description = "face motion (identity-free landmark features) and speech (log-mel), as tokens"

    def __init__(self, estimator: str | None = None, noise: float = 0.02, max_gain: float = 0.2):
        self.estimator_name, self.noise, self.max_gain = estimator, noise, max_gain

    def prepare(self, driving: Driving, reference: Reference, spec: OutputSpec) -> Condition:
        face, face_frames = self._face(driving, spec)
        speech, seconds = self._speech(driving, spec)
        if face_frames == 0 and seconds == 0:
            raise ConditionerInputError(
                "The audio-face conditioner found no face in the driving video and no audio; "
                "give --audio FILE or a driving video that shows a face."
            )
        features = torch.from_numpy(np.concatenate([face, speech], axis=1))
        meta = {"face_frames": face_frames, "audio_seconds": round(seconds, 3)}
        return Condition(self.name, self.site, features=features, meta=meta)

    # ------------------------------------------------------------------ streams

    def _face(self, driving: Driving, spec: OutputSpec) -> tuple[np.ndarray, int]:
        from charanim.pose.estimate import estimate_sequence, get_estimator, keypoints_from

        sequence = keypoints_from(driving.keypoints)
        if sequence is None and driving.video is not None:
            estimator = get_estimator(self.estimator_name) if self.estimator_name else get_estimator()
            video = driving.video
            sequence = estimate_sequence(
                estimator, video.frames[: spec.frames], video.fps, video.source_size, ""
            )
        if sequence is None or sequence.header.face_format != "mediapipe-contours":
            return np.zeros((spec.frames, face_feats.DIM), np.float32), 0
        times = np.arange(spec.frames) / spec.fps
        index = np.minimum(np.floor(times * sequence.header.fps + 1e-6).astype(int), len(sequence.frames) - 1)
        faces = [next((p.face for p in sequence.frames[i] if p.face is not None), None) for i in index]
        features = face_feats.face_features(faces)
        return features, int(features[:, -1].sum())

    def _speech(self, driving: Driving, spec: OutputSpec) -> tuple[np.ndarray, float]:
        from charanim.io.audio import fit_length, read_audio

        empty = np.zeros((spec.frames, audio_feats.DIM), np.float32)
        if isinstance(driving.audio, Audio):  # in memory (training, Python API): silence is data too
            audio = _resampled(driving.audio, audio_feats.SAMPLE_RATE)
        elif driving.audio is not None:
            audio = read_audio(driving.audio, audio_feats.SAMPLE_RATE)
            if audio.silent:
                raise ConditionerInputError(
                    f"The audio in '{driving.audio}' is silent; it would drive nothing."
                )
        elif driving.video is not None and driving.video.path is not None and driving.video.path.is_file():
            try:  # the driving video's own sound, when it has some
                audio = read_audio(driving.video.path, audio_feats.SAMPLE_RATE)
            except CharanimError:
                return empty, 0.0
            if audio.silent:
                return empty, 0.0
        else:
            return empty, 0.0
        duration = spec.frames / spec.fps
        samples = fit_length(audio, duration)
        available = min(audio.duration, duration)
        return audio_feats.audio_features(samples, spec.frames, spec.fps, available), available

    # ------------------------------------------------------------------ augment

    def augment(self, condition: Condition, generator: torch.Generator) -> Condition:
        """Scale the face motion by U(1 - g, 1 + g), shift the loudness of the speech by
        up to ±5 % of its range, and add a little noise, where each stream is present."""
        features = condition.features.clone()
        face, speech = features[:, : face_feats.DIM - 1], features[:, face_feats.DIM : -1]
        face_seen = features[:, face_feats.DIM - 1 : face_feats.DIM] > 0
        speech_seen = features[:, -1:] > 0
        gain = 1 + (2 * torch.rand((), generator=generator) - 1) * self.max_gain
        offset = (2 * torch.rand((), generator=generator) - 1) * 0.05
        face_noise = self.noise * torch.randn(face.shape, generator=generator)
        speech_noise = self.noise * torch.randn(speech.shape, generator=generator)
        face.copy_(torch.where(face_seen, face * gain + face_noise, face))
        speech.copy_(torch.where(speech_seen, (speech + offset + speech_noise).clamp(0, 1), speech))
        return condition.replace(features=features)


def _resampled(audio: Audio, rate: int) -> Audio:
    """Linear resampling (in-memory audio comes at the world's 16 kHz; others are rare)."""
    if audio.sample_rate == rate:
        return audio
    count = int(round(len(audio.samples) * rate / audio.sample_rate))
    times = np.arange(count) / rate
    source = np.arange(len(audio.samples)) / audio.sample_rate
    return Audio(np.interp(times, source, audio.samples).astype(np.float32), rate)
