"""The output's sound: --audio, or the driving video's own track, muxed into the video."""

from pathlib import Path

import numpy as np
import pytest

from charanim.api import animate, load_pipeline
from charanim.errors import CharanimError
from charanim.io.audio import Audio, add_audio, read_audio, write_wav
from charanim.io.video import read_video, write_video

RATE = 16000


def _tone(seconds: float, hz: float = 440.0) -> Audio:
    t = np.arange(int(seconds * RATE)) / RATE
    return Audio((0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32), RATE)


def _frames(count: int = 16) -> np.ndarray:
    frames = np.zeros((count, 32, 32, 3), np.uint8)
    frames[:, 8:24, 8:24] = np.linspace(0, 255, count, dtype=np.uint8)[:, None, None, None]
    return frames


@pytest.mark.parametrize("suffix", [".mp4", ".webm", ".mkv"])
def test_a_video_written_with_sound_carries_it_cut_to_its_length(tmp_path, suffix):
    out = tmp_path / f"clip{suffix}"
    write_video(out, _frames(16), 8.0, audio=_tone(5.0))  # 2 s of picture, 5 s of sound
    sound = read_audio(out, RATE)
    assert 1.8 < sound.duration < 2.2
    assert 0.3 < np.abs(sound.samples).max() < 0.6  # the tone, not silence
    assert read_video(out).frames.shape[0] == 16
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]  # no picture or WAV left over


def test_a_gif_refuses_sound_and_is_not_written(tmp_path):
    with pytest.raises(CharanimError, match="no sound track"):
        write_video(tmp_path / "clip.gif", _frames(), 8.0, audio=_tone(1.0))
    assert not list(tmp_path.iterdir())


@pytest.fixture(scope="module")
def driving_with_music(media, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("music")
    tone = write_wav(root / "tone.wav", _tone(3.0, 330.0).samples, RATE)
    return add_audio(media["drive"], tone, root / "drive-with-music.mp4")


def test_animate_keeps_the_driving_video_s_sound_unless_told_off(
    tiny_model, media, driving_with_music, tmp_path
):
    pipeline = load_pipeline(tiny_model, "rgb", device="cpu")
    out = tmp_path / "out.mp4"
    summary = animate(media["reference"], driving_with_music, out, pipeline=pipeline, steps=1, fps=8.0)
    assert summary["sound"] == str(driving_with_music)
    assert abs(read_audio(out).duration - summary["frames"] / 8.0) < 0.2

    silent = tmp_path / "silent.mp4"
    summary = animate(media["reference"], driving_with_music, silent, pipeline=pipeline, steps=1, sound="off")
    assert summary["sound"] is None
    with pytest.raises(CharanimError, match="no audio track"):
        read_audio(silent)
    # a driving video without sound gives a silent output
    assert (
        animate(media["reference"], media["drive"], tmp_path / "x.mp4", pipeline=pipeline, steps=1)["sound"]
        is None
    )


def test_animate_refuses_to_write_over_its_own_input(tiny_model, media, driving_with_music, tmp_path):
    pipeline = load_pipeline(tiny_model, "rgb", device="cpu")
    before = driving_with_music.read_bytes()
    with pytest.raises(CharanimError, match="is one of the inputs"):
        animate(media["reference"], driving_with_music, driving_with_music, pipeline=pipeline, steps=1)
    assert driving_with_music.read_bytes() == before
    with pytest.raises(CharanimError, match="Unknown --sound"):
        animate(media["reference"], driving_with_music, tmp_path / "o.mp4", pipeline=pipeline, sound="loud")


def test_a_gif_output_says_it_drops_the_asked_for_sound(tiny_model, media, tmp_path):
    from charanim.errors import CharanimWarning

    pipeline = load_pipeline(tiny_model, "rgb", device="cpu")
    tone = write_wav(tmp_path / "tone.wav", _tone(2.0).samples, RATE)
    with pytest.warns(CharanimWarning, match="a GIF has no sound track"):
        summary = animate(
            media["reference"], media["drive"], tmp_path / "o.gif", pipeline=pipeline, steps=1, audio=tone
        )
    assert summary["sound"] is None and (tmp_path / "o.gif").is_file()


def test_a_sound_that_cannot_be_read_fails_before_the_work(tiny_model, media, tmp_path, monkeypatch):
    pipeline = load_pipeline(tiny_model, "rgb", device="cpu")
    ran = []
    monkeypatch.setattr(type(pipeline), "__call__", lambda *a, **k: ran.append(1))
    out = tmp_path / "o.mp4"
    with pytest.raises(CharanimError, match="does not exist"):
        animate(media["reference"], media["drive"], out, pipeline=pipeline, audio=tmp_path / "nope.wav")
    with pytest.raises(CharanimError, match="has no audio track"):
        animate(media["reference"], media["drive"], out, pipeline=pipeline, audio=media["drive"])
    assert not ran and not out.exists()
