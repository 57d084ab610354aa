import json

import numpy as np
import pytest
import torch
from charanim_audio_face import audio_features as audio_feats
from charanim_audio_face import face_features as face_feats
from charanim_audio_face.conditioner import FEATURE_DIM
from typer.testing import CliRunner

from charanim.cli.app import app
from charanim.conditioning import Driving, OutputSpec, Reference
from charanim.errors import ConditionerInputError, InputFileError
from charanim.io.audio import add_audio, read_audio, write_wav
from charanim.io.image import read_image
from charanim.io.video import read_video
from charanim.pose.keypoints import KeypointSequence, KeypointsHeader, Person
from charanim.testing import ConditionerContract, write_moving_figure_video, write_reference_image

RATE = audio_feats.SAMPLE_RATE


def speech_like(seconds: float, envelope) -> np.ndarray:
    """A voiced tone (harmonics of 140 Hz) whose loudness follows ``envelope(t)``."""
    t = np.arange(int(seconds * RATE)) / RATE
    tone = sum(np.sin(2 * np.pi * 140 * k * t) / k for k in range(1, 6))
    return (0.3 * envelope(t) * tone / np.abs(tone).max()).astype(np.float32)


def talking_video(tmp_path, frames=8, fps=8.0, seconds=None):
    video = write_moving_figure_video(tmp_path / "silent.mp4", frames=frames, size=(64, 48), fps=fps)
    wav = write_wav(
        tmp_path / "speech.wav",
        speech_like(seconds or frames / fps, lambda t: 0.5 + 0.5 * np.sin(6 * t)),
        RATE,
    )
    return add_audio(video, wav, tmp_path / "talking.mp4"), wav


class TestAudioFaceConditioner(ConditionerContract):
    conditioner_name = "audio-face"

    def make_inputs(self, tmp_path):
        video, _ = talking_video(tmp_path)
        image = write_reference_image(tmp_path / "ref.png", size=(48, 64))
        return Driving(video=read_video(video, fps=self.spec.fps)), Reference(read_image(image))


# ---------------------------------------------------------------------------- audio


def test_audio_reads_back_from_wav_and_from_a_video_track(tmp_path):
    video, wav = talking_video(tmp_path, frames=16)
    from_wav, from_video = read_audio(wav), read_audio(video)
    assert from_wav.duration == pytest.approx(2.0, abs=0.01)
    assert from_video.duration == pytest.approx(2.0, abs=0.1)  # AAC frames round the length
    n = min(len(from_wav.samples), len(from_video.samples)) - 4000
    corr = np.corrcoef(from_wav.samples[2000:n], from_video.samples[2000:n])[0, 1]
    assert corr > 0.9  # the same sound after an AAC round trip


def test_audio_errors_are_clear(tmp_path):
    silent_video = write_moving_figure_video(tmp_path / "v.mp4", frames=4, size=(32, 32), fps=8.0)
    with pytest.raises(ConditionerInputError, match="has no audio track"):
        read_audio(silent_video)
    with pytest.raises(InputFileError, match="does not exist"):
        read_audio(tmp_path / "none.wav")
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(InputFileError, match="is empty"):
        read_audio(tmp_path / "empty.wav")
    (tmp_path / "junk.wav").write_bytes(b"not audio at all")
    with pytest.raises(InputFileError):
        read_audio(tmp_path / "junk.wav")


def test_loudness_follows_the_audio_and_the_length_policy(tmp_path):
    fps, frames = 8.0, 24
    envelope = lambda t: np.clip(np.sin(np.pi * t / 1.5), 0, 1)  # noqa: E731 - loud, quiet, loud...
    samples = speech_like(frames / fps, envelope)
    features = audio_feats.audio_features(samples, frames, fps)
    truth = envelope((np.arange(frames) + 0.5) / fps)
    loudness = features[:, audio_feats.BANDS]
    assert np.corrcoef(loudness, truth)[0, 1] > 0.9
    assert features[:, -1].min() == 1.0
    # 1 s of audio for a 3 s clip: padded with silence, flagged absent after 1 s
    short = audio_feats.audio_features(np.pad(samples[:RATE], (0, 2 * RATE)), frames, fps, available=1.0)
    assert short[:8, -1].min() == 1 and short[8:, -1].max() == 0
    assert short[10:, audio_feats.BANDS].max() == 0.0


# ---------------------------------------------------------------------------- face


def _face(mouth_open: float, scale: float = 1.0, shift=(0.0, 0.0), width: float = 1.0) -> np.ndarray:
    """Contour points of a frontal face with the given mouth opening (in eye distances)."""
    points = np.zeros((len(face_feats.CONTOURS), 3), np.float32)
    points[:, 2] = 1
    where = {
        "eye_right_outer": (-0.5, 0), "eye_left_outer": (0.5, 0), "eye_right_top": (-0.3, -0.05),
        "eye_right_bottom": (-0.3, 0.05), "eye_left_top": (0.3, -0.05), "eye_left_bottom": (0.3, 0.05),
        "brow_right": (-0.3, -0.3), "brow_left": (0.3, -0.3), "forehead": (0, -0.8), "chin": (0, 1.2),
        "cheek_right": (-0.8, 0.4), "cheek_left": (0.8, 0.4), "mouth_right": (-0.3 * width, 0.8),
        "mouth_left": (0.3 * width, 0.8), "lip_top": (0, 0.8 - mouth_open / 2), "lip_bottom": (0, 0.8 + mouth_open / 2),
    }  # fmt: skip
    for name, (x, y) in where.items():
        points[face_feats.CONTOURS.index(face_feats.MESH[name]), :2] = (
            100 + shift[0] + 40 * scale * x, 100 + shift[1] + 40 * scale * y,
        )  # fmt: skip
    return points


def test_face_features_are_identity_free_motion():
    opening = [0.0, 0.1, 0.3, 0.1, 0.0, 0.2]
    big_far = face_feats.face_features([_face(m, scale=2.0, shift=(30, -10)) for m in opening])
    small = face_feats.face_features([_face(m) for m in opening])
    wide_mouth = face_feats.face_features([_face(m, width=1.5) for m in opening])
    np.testing.assert_allclose(big_far, small, atol=1e-5)  # size and place drop out
    np.testing.assert_allclose(wide_mouth[:, 0], small[:, 0], atol=1e-5)  # resting shape drops out
    assert np.corrcoef(small[:, 0], opening)[0, 1] > 0.99
    assert small.shape == (6, face_feats.DIM) and small[:, -1].min() == 1
    hidden = face_feats.face_features([_face(0.1), None, _face(0.3)])
    assert hidden[1].tolist() == [0.0] * face_feats.DIM


def test_face_features_come_from_keypoint_files(tmp_path):
    from charanim.plugins import get_plugins

    fps, opening = 8.0, [0.0, 0.2, 0.4, 0.2, 0.0, 0.2, 0.4, 0.2]
    header = KeypointsHeader(200, 200, fps, body_format="coco17", face_format="mediapipe-contours")
    body = np.zeros((17, 3), np.float32)
    sequence = KeypointSequence(header, [[Person(body, None, _face(m), "coco17")] for m in opening])
    conditioner = get_plugins().conditioners.get("audio-face")()
    spec = OutputSpec(32, 32, 8, fps)
    condition = conditioner.prepare(Driving(keypoints=sequence), Reference(None), spec)
    assert condition.features.shape == (8, FEATURE_DIM)
    assert np.corrcoef(condition.features[:, 0].numpy(), opening)[0, 1] > 0.99
    assert condition.meta == {"face_frames": 8, "audio_seconds": 0.0}


def test_silent_audio_is_refused(tmp_path):
    from charanim.plugins import get_plugins

    silent = write_wav(tmp_path / "silent.wav", np.zeros(RATE, np.float32), RATE)
    conditioner = get_plugins().conditioners.get("audio-face")()
    with pytest.raises(ConditionerInputError, match="is silent"):
        conditioner.prepare(Driving(audio=silent), Reference(None), OutputSpec(32, 32, 8, 8.0))


# ---------------------------------------------------------------------------- animate


@pytest.fixture(scope="module")
def audio_model(tmp_path_factory):
    from charanim_audio_face.conditioner import AudioFaceConditioner

    from charanim.testing import make_tiny_model

    return make_tiny_model(
        tmp_path_factory.mktemp("m") / "m", adapter_conditioners={"audio-face": AudioFaceConditioner}
    )


def test_audio_alone_makes_a_talking_animation_that_follows_the_audio(tmp_path, audio_model):
    runner = CliRunner()
    ref = write_reference_image(tmp_path / "ref.png", size=(48, 64))
    results = {}
    for name, envelope in (
        ("loud", lambda t: np.ones_like(t)),
        ("pulsing", lambda t: (np.sin(8 * t) > 0).astype(float)),
    ):
        wav = write_wav(tmp_path / f"{name}.wav", speech_like(2.0, envelope), RATE)
        out = tmp_path / f"{name}.mp4"
        result = runner.invoke(app, [
            "animate", str(ref), "-o", str(out), "--model", str(audio_model), "--conditioner", "audio-face",
            "--audio", str(wav), "--steps", "2", "--json",
        ])  # fmt: skip
        assert result.exit_code == 0, result.output
        summary = json.loads(result.output)
        assert summary["frames"] == 16 and summary["conditioners"] == ["audio-face"]
        results[name] = read_video(out).frames
    assert np.abs(results["loud"].astype(int) - results["pulsing"].astype(int)).mean() > 0.5


def test_combined_with_rgb_and_clear_errors(tmp_path, audio_model):
    from charanim.testing import make_tiny_model

    tiny_model = make_tiny_model(tmp_path / "plain")
    runner = CliRunner()
    video, wav = talking_video(tmp_path, frames=8)
    ref = write_reference_image(tmp_path / "ref.png", size=(48, 64))
    base = ["animate", str(ref), str(video), "-o", str(tmp_path / "o.mp4"), "--steps", "2"]
    combined = runner.invoke(
        app, [*base, "--model", str(audio_model), "--conditioner", "rgb+audio-face", "--json"]
    )
    assert combined.exit_code == 0, combined.output
    assert json.loads(combined.output)["conditioners"] == ["rgb", "audio-face"]
    guided = runner.invoke(
        app,
        [
            *base,
            "--model",
            str(audio_model),
            "--conditioner",
            "rgb+audio-face",
            "--conditioner-guidance",
            "audio-face=2",
        ],
    )
    assert guided.exit_code == 0, guided.output
    for args, message in (
        (
            [
                "--model",
                str(audio_model),
                "--conditioner",
                "rgb+audio-face",
                "--conditioner-guidance",
                "audio-face",
            ],
            "NAME=SCALE",
        ),
        (
            ["--model", str(tiny_model), "--conditioner", "rgb+audio-face"],
            "no trained weights for conditioner 'audio-face'",
        ),
        (["--model", str(audio_model), "--conditioner", "rgb+voice"], "voice"),
    ):
        result = runner.invoke(app, [*base, *args])
        assert result.exit_code != 0 and message in result.output, result.output
    no_input = runner.invoke(
        app, ["animate", str(ref), "-o", str(tmp_path / "o.mp4"), "--model", str(audio_model)]
    )
    assert no_input.exit_code != 0 and "Give a driving video, or --audio" in no_input.output


def test_augment_keeps_absent_streams_zero():
    from charanim.conditioning import Condition, InjectionSite
    from charanim.plugins import get_plugins

    conditioner = get_plugins().conditioners.get("audio-face")()
    features = torch.zeros(6, FEATURE_DIM)
    features[:, face_feats.DIM :] = 0.5  # speech present, no face
    features[:, -1] = 1
    out = conditioner.augment(
        Condition("audio-face", InjectionSite.TOKENS, features=features), torch.Generator().manual_seed(0)
    )
    assert out.features[:, : face_feats.DIM].abs().max() == 0
    assert not torch.equal(out.features[:, face_feats.DIM : -1], features[:, face_feats.DIM : -1])
