import numpy as np
import pytest
from PIL import Image

from charanim.errors import InputFileError, UnsupportedFormatError
from charanim.io import read_image


def test_rgba_is_composited_and_alpha_kept(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:2, :, 3] = 255  # top half opaque red, bottom transparent
    Image.fromarray(rgba).save(tmp_path / "a.png")
    image = read_image(tmp_path / "a.png", background=(0, 0, 255))
    assert image.rgb[0, 0].tolist() == [200, 0, 0]
    assert image.rgb[3, 0].tolist() == [0, 0, 255]
    assert image.alpha[:, 0].tolist() == [255, 255, 0, 0]


def test_grayscale_palette_and_16_bit(tmp_path):
    Image.fromarray(np.full((3, 3), 128, np.uint8)).save(tmp_path / "g.png")
    gray = read_image(tmp_path / "g.png")
    assert gray.rgb.shape == (3, 3, 3) and gray.rgb[0, 0].tolist() == [128, 128, 128] and gray.alpha is None

    palette = Image.new("P", (2, 2))
    palette.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    palette.putpixel((1, 1), 1)
    palette.info["transparency"] = 0
    palette.save(tmp_path / "p.png", transparency=0)
    pal = read_image(tmp_path / "p.png")
    assert pal.alpha is not None and pal.alpha[1, 1] == 255 and pal.alpha[0, 0] == 0
    assert pal.rgb[1, 1].tolist() == [255, 0, 0]

    deep = np.array([[0, 32768, 65535]], dtype=np.uint16)
    Image.fromarray(deep).save(tmp_path / "d.png")
    assert read_image(tmp_path / "d.png").rgb[0, :, 0].tolist() == [0, 128, 255]


def test_exif_orientation_is_applied(tmp_path):
    pixels = np.zeros((2, 4, 3), np.uint8)  # 4 wide, 2 high
    pixels[0, 0] = 255
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    image.save(tmp_path / "r.jpg", exif=exif, quality=100)
    loaded = read_image(tmp_path / "r.jpg")
    assert loaded.size == (2, 4)


def test_cmyk_jpeg(tmp_path):
    Image.new("CMYK", (4, 4), (0, 255, 255, 0)).save(tmp_path / "c.jpg")
    rgb = read_image(tmp_path / "c.jpg").rgb
    assert rgb[0, 0, 0] > 200 and rgb[0, 0, 1] < 60


def test_bad_files(tmp_path):
    with pytest.raises(InputFileError, match="does not exist"):
        read_image(tmp_path / "missing.png")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(InputFileError, match="empty"):
        read_image(tmp_path / "empty.png")
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(UnsupportedFormatError):
        read_image(tmp_path / "text.png")
    Image.new("RGB", (64, 64), (1, 2, 3)).save(tmp_path / "whole.png")
    data = (tmp_path / "whole.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputFileError, match="corrupt"):
        read_image(tmp_path / "cut.png")
    with pytest.raises(InputFileError, match="folder"):
        read_image(tmp_path)
