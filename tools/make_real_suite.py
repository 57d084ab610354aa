"""Build the bench's ``real`` suite from Debian game/art packages (run once; the output is
committed in src/charanim/assets/bench/real with its licences).

    apt-get download supertux-data renpy-demo tuxpaint-stamps-default
    for d in *.deb; do dpkg-deb -x "$d" debs; done
    python tools/make_real_suite.py debs src/charanim/assets/bench/real

References are drawn characters with transparency (Ren'Py's demo cast, Tux Paint's
animal stamps); driving clips are SuperTux sprite animations composited on a plain
backdrop. Real, shippable, and no ground truth: the suite is scored by the metrics that
need none (identity, temporal stability) and looked at in the report's strips.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

SUPERTUX = "usr/share/games/supertux2/images/creatures"
REFERENCES = {  # name: (file, licence)
    "eileen": ("usr/share/games/renpy/demo/game/images/eileen happy.png", "Expat (Ren'Py demo, renpy-demo 8.0.3)"),
    "lucy": ("usr/share/games/renpy/demo/game/images/lucy happy.png", "Expat (Ren'Py demo, renpy-demo 8.0.3)"),
    "pig": ("usr/share/tuxpaint/stamps/animals/mammals/pig.png", "GPL-2 (Tux Paint stamps, tuxpaint-stamps-default 2022.06.04)"),
    "duck": ("usr/share/tuxpaint/stamps/animals/birds/duck.png", "GPL-2 (Tux Paint stamps, tuxpaint-stamps-default 2022.06.04)"),
}  # fmt: skip
CLIPS = {  # name: (frame files, licence)
    "tux-walk": ([f"{SUPERTUX}/tux/big/walk-{i}.png" for i in range(8)], "GPL-3+ (SuperTux, supertux-data 0.6.3)"),
    "nolok-walk": ([f"{SUPERTUX}/nolok/walk-{i}.png" for i in range(4)] * 2, "GPL-3+ (SuperTux, supertux-data 0.6.3)"),
    "snowball-walk": ([f"{SUPERTUX}/snowball/snowball-{i}.png" for i in range(8)], "GPL-3+ (SuperTux, supertux-data 0.6.3)"),
    "yeti-walk": ([f"{SUPERTUX}/yeti/y{i}.png" for i in range(1, 8)], "GPL-3+ (SuperTux, supertux-data 0.6.3)"),
}  # fmt: skip
CASES = [  # (driving, reference, group): one-to-one pairs and one clip on many characters
    ("tux-walk", "eileen", "one-to-many"), ("tux-walk", "pig", "one-to-many"), ("tux-walk", "duck", "one-to-many"),
    ("nolok-walk", "lucy", "drawn people"), ("yeti-walk", "pig", "animals"), ("snowball-walk", "duck", "animals"),
]  # fmt: skip
REFERENCE_SIZE = 128
CLIP_SIZE = 96
BACKDROP = (214, 222, 230)


def _fit_rgba(image: Image.Image, size: int, fill: float) -> Image.Image:
    """Scale so the longer side is ``fill * size``, centred at the bottom of a transparent square."""
    scale = fill * size / max(image.size)
    image = image.resize(
        (max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.LANCZOS
    )
    canvas = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    canvas.alpha_composite(image, ((size - image.width) // 2, size - image.height - size // 16))
    return canvas


def build(source: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    notes = [
        "# Licences of the real bench suite\n",
        "Derived (downscaled, composited) from Debian packages by tools/make_real_suite.py.\n",
    ]
    for name, (file, licence) in REFERENCES.items():
        _fit_rgba(Image.open(source / file).convert("RGBA"), REFERENCE_SIZE, 0.9).save(out / f"{name}.png")
        notes.append(f"- `{name}.png`: `{file}`, {licence}")
    for name, (files, licence) in CLIPS.items():
        frames = [Image.open(source / f).convert("RGBA") for f in files]
        tallest = max(max(f.size) for f in frames)
        composed = []
        for frame in frames:
            fitted = _fit_rgba(frame, CLIP_SIZE, 0.8 * max(frame.size) / tallest)
            backdrop = Image.new("RGBA", fitted.size, (*BACKDROP, 255))
            backdrop.alpha_composite(fitted)
            composed.append(backdrop.convert("RGB"))
        composed[0].save(out / f"{name}.gif", save_all=True, append_images=composed[1:], duration=125, loop=0)
        notes.append(f"- `{name}.gif`: `{files[0]}`…, {licence}")
    cases = [
        {
            "id": f"{clip}-on-{ref}",
            "reference": f"{ref}.png",
            "driving": f"{clip}.gif",
            "group": group,
            "fps": 8,
        }
        for clip, ref, group in CASES
    ]
    (out / "suite.yaml").write_text(
        "# The real suite: drawn characters driven by sprite animations (no ground truth).\n"
        + yaml.safe_dump({"cases": cases}, sort_keys=False)
    )
    (out / "LICENSES.md").write_text("\n".join(notes) + "\n")
    print(f"{len(cases)} cases in {out}")
    assert np.all([p.stat().st_size < 200_000 for p in out.iterdir()])


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    build(Path(sys.argv[1]), Path(sys.argv[2]))
