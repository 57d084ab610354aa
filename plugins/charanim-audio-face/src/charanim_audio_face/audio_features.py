"""Speech features per output frame: log-mel bands and loudness.

A log-mel spectrogram (32 bands up to 8 kHz, 25 ms windows every 10 ms, computed with
``transformers.audio_utils``) is averaged over each output frame's time span, so one
vector belongs to one frame at any fps. Levels are in dB scaled to about [0, 1]
(-80 dB -> 0, 0 dB -> 1).
"""

from __future__ import annotations

import numpy as np

SAMPLE_RATE = 16000
BANDS = 32
#: the feature vector: the mel bands, the loudness (RMS in the same dB scale), and 1 where
#: there is audio (0 past its end and without any)
DIM = BANDS + 2
WINDOW, HOP = 400, 160  # 25 ms, 10 ms at 16 kHz
FLOOR_DB = -80.0


def _mel_filters() -> np.ndarray:
    from transformers.audio_utils import mel_filter_bank

    return mel_filter_bank(
        num_frequency_bins=WINDOW // 2 + 1, num_mel_filters=BANDS, min_frequency=50.0,
        max_frequency=SAMPLE_RATE / 2, sampling_rate=SAMPLE_RATE, norm="slaney", mel_scale="slaney",
    )  # fmt: skip


def audio_features(
    samples: np.ndarray, frames: int, fps: float, available: float | None = None
) -> np.ndarray:
    """``samples`` (mono, 16 kHz, already fitted to ``frames / fps`` seconds) ->
    ``float32 [frames, DIM]``. ``available`` is how many seconds of it are real audio
    (the rest is padding); default: all of it."""
    from transformers.audio_utils import spectrogram, window_function

    samples = np.asarray(samples, np.float32)
    if len(samples) < WINDOW:
        samples = np.pad(samples, (0, WINDOW - len(samples)))
    power = spectrogram(
        samples,
        window_function(WINDOW, "hann"),
        frame_length=WINDOW,
        hop_length=HOP,
        power=2.0,
        mel_filters=_mel_filters(),
        center=True,
    )  # fmt: skip  -> [BANDS, T]
    mel_db = 10 * np.log10(np.maximum(power, 1e-10))
    centres = np.arange(mel_db.shape[1]) * HOP  # center=True: window t is centred on sample t * HOP
    energy = np.array([np.mean(samples[max(0, c - WINDOW // 2) : c + WINDOW // 2] ** 2) for c in centres])
    energy_db = 10 * np.log10(np.maximum(energy, 1e-10))
    times = centres / SAMPLE_RATE
    out = np.zeros((frames, DIM), np.float32)
    real = (frames / fps) if available is None else available
    for i in range(frames):
        span = (times >= i / fps) & (times < (i + 1) / fps)
        if not span.any():
            span = np.abs(times - (i + 0.5) / fps) == np.abs(times - (i + 0.5) / fps).min()
        out[i, :BANDS] = _scaled(mel_db[:, span].mean(1))
        out[i, BANDS] = _scaled(energy_db[span].mean())
        out[i, BANDS + 1] = float(i / fps < real)
    return out


def _scaled(db):
    return np.clip((np.asarray(db) - FLOOR_DB) / -FLOOR_DB, 0.0, 1.0)
