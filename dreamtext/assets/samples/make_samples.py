"""Rebuild the demo's sample photographs and ``samples.json`` (run once; the outputs are shipped).

Sources (all freely licensed, bundled with scikit-image, so this works offline):

- ``coffee.png`` — CC0, photographer Rachel Michetti (courtesy of Pikolo Espresso Bar);
- ``rocket.jpg`` — SpaceX launch photo of DSCOVR, released into the public domain by SpaceX;
- ``brick.png`` — CC0 texture from CC0Textures (Bricks25);
- ``text.png`` — public domain (Wikipedia, File:Corner.png): real handwritten text.

Words are painted into the first three photographs the way paint or print sits
on a surface: the glyphs are warped to a perspective quad, softened by a
sub-pixel blur, and their colour is modulated by the surface's own shading, so
the lighting and grain of the photo show through. The quad of each painted
word is recorded exactly; the real handwriting in ``text.png`` gets a
hand-measured quad. Usage: ``python dreamtext/assets/samples/make_samples.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

HERE = Path(__file__).parent
FONTS = Path("/usr/share/fonts/truetype")


def skimage_image(name: str) -> np.ndarray:
    import skimage

    img = Image.open(Path(skimage.__file__).parent / "data" / name).convert("RGB")
    return np.asarray(img)


def paint_word(image: np.ndarray, word: str, quad: np.ndarray, color, font_path: Path,
               opacity: float = 0.92) -> np.ndarray:
    """Paint ``word`` into ``quad`` (TL, TR, BR, BL) with the surface's shading showing through."""
    font = ImageFont.truetype(str(font_path), 120)
    left, top, right, bottom = font.getbbox(word)
    pad = 10
    canvas = Image.new("L", (right - left + 2 * pad, bottom - top + 2 * pad), 0)
    ImageDraw.Draw(canvas).text((pad - left, pad - top), word, fill=255, font=font)
    canvas = canvas.filter(ImageFilter.GaussianBlur(1.2))
    src = np.array([[0, 0], [canvas.width, 0], [canvas.width, canvas.height], [0, canvas.height]], np.float32)
    h, w = image.shape[:2]
    matrix = cv2.getPerspectiveTransform(src, quad.astype(np.float32))
    alpha = cv2.warpPerspective(np.asarray(canvas), matrix, (w, h), flags=cv2.INTER_AREA).astype(np.float32) / 255
    alpha *= opacity
    img = image.astype(np.float32)
    # Shading of the surface (low-passed luminance relative to its mean) modulates the paint.
    lum = cv2.GaussianBlur(img.mean(-1), (0, 0), 3)
    shade = np.clip(lum / max(1.0, float(lum[alpha > 0.1].mean() if (alpha > 0.1).any() else lum.mean())), 0.6, 1.3)
    paint = np.asarray(color, np.float32)[None, None] * shade[..., None]
    out = img * (1 - alpha[..., None]) + paint * alpha[..., None]
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def save_jpeg(name: str, image: np.ndarray) -> int:
    path = HERE / name
    Image.fromarray(image).save(path, quality=88, optimize=True)
    return path.stat().st_size


def resized(image: np.ndarray, width: int) -> np.ndarray:
    h, w = image.shape[:2]
    return np.asarray(Image.fromarray(image).resize((width, round(h * width / w)), Image.LANCZOS))


def main() -> None:
    samples = []

    coffee = resized(skimage_image("coffee.png"), 480)  # 480×320
    q = np.array([[28, 262], [178, 248], [181, 284], [31, 298]], np.float32)
    coffee = paint_word(coffee, "ESPRESSO", q, (235, 222, 196), FONTS / "dejavu/DejaVuSans-Bold.ttf")
    samples.append({"image": "coffee.jpg", "regions": [{"quad": q.tolist(), "text": "LATTE", "was": "ESPRESSO"}],
                    "licence": "CC0 (Rachel Michetti), via scikit-image"})

    rocket = resized(skimage_image("rocket.jpg"), 480)  # 480×320
    q1 = np.array([[30, 40], [150, 40], [150, 72], [30, 72]], np.float32)
    rocket = paint_word(rocket, "LAUNCH", q1, (250, 250, 245), FONTS / "liberation2/LiberationSans-Bold.ttf", 0.85)
    q2 = np.array([[352, 44], [452, 52], [450, 80], [350, 72]], np.float32)
    rocket = paint_word(rocket, "Pad40", q2, (255, 200, 90), FONTS / "dejavu/DejaVuSerif-Bold.ttf", 0.85)
    samples.append({"image": "rocket.jpg",
                    "regions": [{"quad": q1.tolist(), "text": "ORBIT", "was": "LAUNCH"},
                                {"quad": q2.tolist(), "text": "Sky12", "was": "Pad40"}],
                    "licence": "public domain (SpaceX), via scikit-image"})

    brick = skimage_image("brick.png")[64:448, 64:448].astype(np.float32)  # 384×384 gray
    tint = np.array([1.0, 0.62, 0.48], np.float32)
    brick = np.clip(brick * tint[None, None] * 1.1 + 10, 0, 255).astype(np.uint8)
    q = np.array([[70, 140], [300, 118], [306, 190], [74, 220]], np.float32)
    brick = paint_word(brick, "OPEN", q, (245, 245, 240), FONTS / "roboto/unhinted/RobotoCondensed-Bold.ttf"
                       if (FONTS / "roboto/unhinted/RobotoCondensed-Bold.ttf").exists()
                       else FONTS / "dejavu/DejaVuSansCondensed-Bold.ttf")
    samples.append({"image": "brick.jpg", "regions": [{"quad": q.tolist(), "text": "NOW OPEN", "was": "OPEN"}],
                    "licence": "CC0 (CC0Textures Bricks25), via scikit-image"})

    text = skimage_image("text.png")  # 448×172, real handwriting
    samples.append({"image": "handwriting.jpg",
                    "regions": [{"quad": [[112, 116], [275, 138], [272, 166], [108, 146]], "text": "x+1",
                                 "was": "-1+t n (handwritten)"}],
                    "licence": "public domain (Wikipedia File:Corner.png), via scikit-image"})

    sizes = {}
    for name, img in (("coffee.jpg", coffee), ("rocket.jpg", rocket), ("brick.jpg", brick),
                      ("handwriting.jpg", text)):
        sizes[name] = save_jpeg(name, img)
    (HERE / "samples.json").write_text(json.dumps(samples, indent=1) + "\n")
    print(sizes)


if __name__ == "__main__":
    main()
