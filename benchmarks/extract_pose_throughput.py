"""extract-pose throughput vs raw MediaPipe on the same frames, in one run.

A real photo of a person (matplotlib's sample data) panned over N frames at SIZE²;
``extract_pose`` (decode + estimate + keypoint bookkeeping, body only) is timed against
a bare ``mediapipe.solutions.pose.Pose`` loop over the already-decoded frames,
alternating runs. Run:

    python benchmarks/extract_pose_throughput.py [--frames 60] [--size 256] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import matplotlib.cbook
    from PIL import Image

    from charanim.io import read_video, write_video
    from charanim.pose.extract import ExtractOptions, extract_pose
    from charanim.pose.mediapipe_estimator import _import_mediapipe, _quiet_native

    work = Path(tempfile.mkdtemp(prefix="charanim-pose-bench-"))
    photo = np.asarray(
        Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).convert("RGB")
    )
    frames = []
    for i in range(args.frames):
        shift = i % 20
        crop = photo[shift : shift + 480, shift : shift + 480]
        frames.append(np.asarray(Image.fromarray(crop).resize((args.size, args.size))))
    clip = work / "clip.mp4"
    write_video(clip, np.stack(frames), 25.0)
    decoded = read_video(clip).frames
    mp = _import_mediapipe()

    def ours():
        extract_pose(clip, ExtractOptions(hands=False, face=False))

    def bare():
        with _quiet_native(), mp.solutions.pose.Pose(static_image_mode=False, model_complexity=1) as pose:
            for frame in decoded:
                pose.process(frame)

    ours(), bare()
    times = {"extract_pose": [], "mediapipe": []}
    for _ in range(args.repeats):
        for name, run in (("extract_pose", ours), ("mediapipe", bare)):
            started = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - started)
    ours_s, bare_s = statistics.median(times["extract_pose"]), statistics.median(times["mediapipe"])
    print(json.dumps({
        "frames": args.frames, "size": args.size,
        "extract_pose_fps": round(args.frames / ours_s, 1), "mediapipe_fps": round(args.frames / bare_s, 1),
        "throughput_ratio": round(bare_s / ours_s, 3),
        "note": "extract_pose includes decoding the video; ratio = extract-pose fps / raw mediapipe fps",
    }, indent=2))  # fmt: skip
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
