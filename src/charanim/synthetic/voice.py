"""A voice for the world's talking characters: sound whose loudness follows the mouth.

Speech-like enough to train lip sync on: a voiced source (harmonics of a pitch that
drifts a little, as intonation does) shaped by the mouth's opening, which sets both
the loudness and the brightness (an open mouth lets the higher harmonics through, as
an open vocal tract does), with a breath of noise. The mouth channel (0 closed .. 1
open, one value per frame) is interpolated to the audio rate, so sound and picture
stay in step at any fps.
"""

from __future__ import annotations

import numpy as np

SAMPLE_RATE = 16000
#: mouth opening at which the voice starts (the world's closed mouth rests at 0.05)
THRESHOLD = 0.08


def voice(mouth: np.ndarray, fps: float, seed: int, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """``mouth`` ``[F]`` -> ``int16 [F / fps * sample_rate]``."""
    rng = np.random.default_rng(seed)
    frames = len(mouth)
    count = int(round(frames / fps * sample_rate))
    t = np.arange(count) / sample_rate
    opening = np.interp(t, (np.arange(frames) + 0.5) / fps, np.asarray(mouth, np.float64))
    level = np.clip((opening - THRESHOLD) / (1 - THRESHOLD), 0, 1)
    pitch = rng.uniform(95, 260) * (
        1 + 0.06 * np.sin(2 * np.pi * rng.uniform(0.5, 1.5) * t + rng.uniform(0, 6))
    )
    phase = 2 * np.pi * np.cumsum(pitch) / sample_rate
    bright = 0.35 + 0.6 * level  # how slowly the harmonics fall off
    source = sum(np.sin(k * phase) * bright**k for k in range(1, 12))
    source /= np.abs(source).max() + 1e-9
    noise = rng.normal(0, 0.05, count)
    signal = level * (0.8 * source + noise)
    return np.round(np.clip(signal * 0.5, -1, 1) * 32767).astype(np.int16)


def to_float(samples: np.ndarray) -> np.ndarray:
    return samples.astype(np.float32) / 32767.0
