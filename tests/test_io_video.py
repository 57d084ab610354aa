import numpy as np
import pytest

from charanim.errors import InputFileError, InvalidOptionError, UnsupportedFormatError
from charanim.io import probe_video, read_video, write_video
from charanim.io.video import sample_indices
from charanim.testing import moving_figure_frames


@pytest.fixture
def frames():
    return moving_figure_frames(10, (64, 48))


def test_mp4_round_trip_keeps_frames_fps_and_size(tmp_path, frames):
    path = write_video(tmp_path / "a.mp4", frames, 12.0)
    info = probe_video(path)
    assert (info.frames, info.width, info.height) == (10, 64, 48)
    assert info.fps == pytest.approx(12.0)
    video = read_video(path)
    assert video.frames.shape == frames.shape
    # H.264 at crf 17 is near-lossless on flat colours
    assert np.abs(video.frames.astype(int) - frames).mean() < 3.0


def test_ntsc_rate_is_kept_exactly(tmp_path, frames):
    info = probe_video(write_video(tmp_path / "ntsc.mp4", frames, 30000 / 1001))
    assert info.fps == pytest.approx(29.97, abs=1e-3)


def test_odd_sizes_are_padded_to_even_for_yuv420(tmp_path):
    odd = moving_figure_frames(3, (33, 21))
    info = probe_video(write_video(tmp_path / "odd.mp4", odd, 8))
    assert (info.width, info.height) == (34, 22)


@pytest.mark.parametrize("width", [16, 24, 48, 72])
def test_widths_that_trip_decord_still_read_correctly(tmp_path, width):
    clip = moving_figure_frames(4, (width, 40))
    video = read_video(write_video(tmp_path / "w.mp4", clip, 8))
    assert video.frames.shape == (4, 40, width, 3)
    assert np.abs(video.frames.astype(int) - clip).mean() < 4.0


def test_resampling_to_a_lower_fps_drops_frames_evenly(tmp_path, frames):
    path = write_video(tmp_path / "a.mp4", frames, 10.0)
    video = read_video(path, fps=5.0)
    assert video.fps == 5.0
    assert video.source_indices.tolist() == [0, 2, 4, 6, 8]


def test_sample_indices_upsampling_repeats_frames():
    assert sample_indices(3, 2.0, 4.0, None).tolist() == [0, 0, 1, 1, 2, 2]
    assert sample_indices(10, 10.0, None, 4).tolist() == [0, 1, 2, 3]


def test_max_side_downscales_and_reports_the_source_size(tmp_path, frames):
    video = read_video(write_video(tmp_path / "a.mp4", frames, 8), max_side=32)
    assert max(video.size) == 32
    assert video.source_size == (64, 48)


def test_gif_webm_and_frame_folders(tmp_path, frames):
    gif = read_video(write_video(tmp_path / "a.gif", frames, 10))
    assert gif.frames.shape == frames.shape and gif.fps == pytest.approx(10.0)
    webm = probe_video(write_video(tmp_path / "a.webm", frames, 10))
    assert (webm.frames, webm.width) == (10, 64)
    folder = tmp_path / "seq"
    folder.mkdir()
    from PIL import Image

    for i, frame in enumerate(frames):  # natural order: 2 before 10
        Image.fromarray(frame).save(folder / f"f{i}.png")
    sequence = read_video(folder, sequence_fps=5)
    assert np.array_equal(sequence.frames, frames)
    assert sequence.fps == 5


def test_missing_empty_corrupt_and_still_inputs(tmp_path):
    with pytest.raises(InputFileError, match="does not exist"):
        read_video(tmp_path / "none.mp4")
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(InputFileError, match="empty"):
        read_video(tmp_path / "empty.mp4")
    (tmp_path / "junk.mp4").write_bytes(b"\x00garbage" * 500)
    with pytest.raises(InputFileError, match="corrupt or not a video"):
        read_video(tmp_path / "junk.mp4")
    from PIL import Image

    Image.new("RGB", (8, 8)).save(tmp_path / "still.png")
    with pytest.raises(UnsupportedFormatError, match="still image"):
        read_video(tmp_path / "still.png")
    (tmp_path / "emptydir").mkdir()
    with pytest.raises(InputFileError, match="no image frames"):
        read_video(tmp_path / "emptydir")


def test_truncated_video_is_reported_not_crashed(tmp_path, frames):
    whole = write_video(tmp_path / "whole.mp4", frames, 8).read_bytes()
    (tmp_path / "cut.mp4").write_bytes(whole[: len(whole) // 3])
    with pytest.raises(InputFileError):
        read_video(tmp_path / "cut.mp4")


def test_write_is_atomic(tmp_path, frames):
    target = tmp_path / "out.mp4"
    target.write_bytes(b"previous")
    bad = frames.astype(np.float32)  # wrong dtype: refused before anything is written
    with pytest.raises(ValueError):
        write_video(target, bad, 8)
    with pytest.raises(UnsupportedFormatError):
        write_video(tmp_path / "out.avi", frames, 8)
    with pytest.raises(InvalidOptionError):
        write_video(target, frames, 0)
    assert target.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]


def test_interrupted_write_leaves_no_partial_file(tmp_path, frames, monkeypatch):
    import charanim.io.video as video_module

    def explode(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(video_module, "_pad_to_even", explode)
    with pytest.raises(KeyboardInterrupt):
        write_video(tmp_path / "out.mp4", frames, 8)
    assert list(tmp_path.iterdir()) == []
