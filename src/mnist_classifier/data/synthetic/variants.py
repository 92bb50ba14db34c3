"""MNIST digits in the styles users bring (low scans, thick pens, chalk...), rendered as a file and prepared.

Each kind changes one thing from a plain rendering (the digit enlarged to photo size, dark ink on slightly noisy
paper), with a random strength within its range, and the image is then prepared as `predict` prepares a file.
Training shows them to the model as digits, calibration keeps them as digits, and benchmarks/variants.py measures
the verdicts on them, each from its own digits and seed.
"""

from __future__ import annotations

import hashlib
import io
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image
from scipy import ndimage

from ...errors import ConfigError, ImageError
from ...preprocess import prepare
from .cache import POOL_VERSION, cached, load, note, store
from .fonts import HELD_OUT_FONTS, matplotlib_fonts
from .parallel import Draw, drawn_sets
from .photographed import photograph_part
from .printed import font_digits

DRAWING = 2  # bump when what a kind draws changes: it keys the cache, beside POOL_VERSION
LOW_SIDES = (8, 10, 12, 16)
UPSCALES = {"nearest": Image.Resampling.NEAREST, "bilinear": Image.Resampling.BILINEAR}
Maker = Callable[[np.ndarray, np.random.Generator, np.random.Generator], Image.Image]


@dataclass(frozen=True)
class Page:
    """How a rendering's ink becomes a file: tones 0..255, the paper's noise, a blur, faint rules and a format."""

    paper: float
    ink: float
    noise: float
    blur: float
    rules: tuple[int, int] = (0, 0)  # spacing of horizontal and vertical rules in pixels; 0: none
    rules_from: tuple[int, int] = (0, 0)  # the first rule's row and column
    rule_strength: float = 0.0  # a rule's darkness as a share of the ink's
    jpeg: int = 0  # JPEG quality; 0: kept lossless


def base(rng: np.random.Generator) -> tuple[int, int, Page]:
    """The plain rendering's draws: the digit's field size (28 MNIST pixels to this many), the canvas's margin, and
    the page (paper 200-245, ink 10-60, noise and blur as a phone photo has them)."""
    size = int(rng.integers(64, 100))
    margin = int(rng.integers(6, 24))
    page = Page(
        paper=float(rng.uniform(200, 245)),
        ink=float(rng.uniform(10, 60)),
        noise=3.0,
        blur=float(rng.uniform(0.3, 1.0)),
    )
    return size, margin, page


def enlarge(digit: np.ndarray, size: int, method: Image.Resampling = Image.Resampling.BICUBIC) -> np.ndarray:
    """A 28x28 uint8 digit as ink strength 0..1 on a size x size field."""
    resized = Image.fromarray(digit).resize((size, size), method)
    return np.asarray(resized, np.float32) / 255


def on_canvas(field: np.ndarray, side: int, rng: np.random.Generator) -> np.ndarray:
    """The field pasted somewhere on a blank side x side canvas."""
    canvas = np.zeros((side, side), np.float32)
    top, left = (int(rng.integers(side - n + 1)) for n in field.shape)
    canvas[top : top + field.shape[0], left : left + field.shape[1]] = field
    return canvas


def render(ink: np.ndarray, page: Page, rng: np.random.Generator) -> Image.Image:
    """Ink strength 0..1 -> the grey file a scan or photo of it would be."""
    ink = np.clip(ink, 0, 1)
    if page.blur > 0:
        ink = ndimage.gaussian_filter(ink, page.blur)
    tone = page.paper + (page.ink - page.paper) * ink
    if any(page.rules):
        rules = np.zeros_like(ink)
        (across, down), (row, column) = page.rules, page.rules_from
        if across:
            rules[row::across, :] = 1.0
        if down:
            rules[:, column::down] = 1.0
        rules = ndimage.gaussian_filter(rules, 0.6) * 1.6
        tone += (page.ink - page.paper) * page.rule_strength * np.clip(rules, 0, 1) * (1 - ink)
    if page.noise > 0:
        tone += rng.normal(0, page.noise, tone.shape)
    image = Image.fromarray(np.clip(np.round(tone), 0, 255).astype(np.uint8), "L")
    if page.jpeg:
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=page.jpeg)
        image = Image.open(io.BytesIO(buffer.getvalue()))
        image.load()
    return image


def disk(radius: int) -> np.ndarray:
    r = np.arange(-radius, radius + 1)
    return r[:, None] ** 2 + r[None, :] ** 2 <= radius**2 + radius * 0.5


def low(side: int, method: str) -> Maker:
    """A small digit scanned at low resolution: box-filtered down to side x side, scaled up to 80-120 px."""

    def make(digit: np.ndarray, rng: np.random.Generator, extra: np.random.Generator) -> Image.Image:
        _, _, page = base(rng)
        tiny = Image.fromarray(digit).resize((side, side), Image.Resampling.BOX)
        size = int(extra.integers(80, 121))
        ink = np.asarray(tiny.resize((size, size), UPSCALES[method]), np.float32) / 255
        return render(ink, replace(page, blur=0.0), rng)

    return make


def plain(digit: np.ndarray, rng: np.random.Generator, extra: np.random.Generator) -> Image.Image:
    size, margin, page = base(rng)
    return render(on_canvas(enlarge(digit, size), size + margin, rng), page, rng)


def styled(
    ink_change: Callable[[np.ndarray, np.random.Generator], np.ndarray] | None = None,
    page_change: Callable[[Page, np.random.Generator], Page] | None = None,
) -> Maker:
    """A kind that is the plain rendering with its ink or its page changed (strength drawn from `extra`)."""

    def make(digit: np.ndarray, rng: np.random.Generator, extra: np.random.Generator) -> Image.Image:
        size, margin, page = base(rng)
        field = enlarge(digit, size)
        if ink_change:
            field = ink_change(field, extra)
        ink = on_canvas(field, size + margin, rng)
        return render(ink, page_change(page, extra) if page_change else page, rng)

    return make


def thick(field: np.ndarray, extra: np.random.Generator) -> np.ndarray:
    """A broad pen: the strokes grown by 3-5 px on each side (MNIST's are about 7 px wide at this size)."""
    return ndimage.grey_dilation(field, footprint=disk(int(extra.integers(3, 6))))


def thin(field: np.ndarray, extra: np.random.Generator) -> np.ndarray:
    """A fine pen: the strokes worn down by 1-2 px on each side, what is left at full strength."""
    return np.clip(ndimage.grey_erosion(field, footprint=disk(int(extra.integers(1, 3)))) * 1.5, 0, 1)


def blurred(page: Page, extra: np.random.Generator) -> Page:
    return replace(page, blur=float(extra.uniform(2.0, 3.5)))


def low_contrast(page: Page, extra: np.random.Generator) -> Page:
    paper = float(extra.uniform(120, 180))
    return replace(page, paper=paper, ink=paper - float(extra.uniform(35, 60)))


def jpeg(page: Page, extra: np.random.Generator) -> Page:
    return replace(page, jpeg=int(extra.integers(10, 26)))


def chalk(page: Page, extra: np.random.Generator) -> Page:
    return replace(page, paper=float(extra.uniform(25, 70)), ink=float(extra.uniform(190, 240)), noise=5.0)


def clean(page: Page, extra: np.random.Generator) -> Page:
    return replace(page, paper=255.0, ink=0.0, noise=0.0, blur=0.0)


def lined(page: Page, extra: np.random.Generator) -> Page:
    """Ruled paper: faint lines 28-44 px apart, a digit's height or a little less."""
    spacing = int(extra.integers(28, 45))
    start = (int(extra.integers(spacing)), 0)
    return replace(page, rules=(spacing, 0), rules_from=start, rule_strength=float(extra.uniform(0.15, 0.28)))


def squared(page: Page, extra: np.random.Generator) -> Page:
    """Squared paper: a faint grid 16-25 px wide, so that a digit spans two or three squares."""
    spacing = int(extra.integers(16, 26))
    start = (int(extra.integers(spacing)), int(extra.integers(spacing)))
    return replace(page, rules=(spacing, spacing), rules_from=start, rule_strength=float(extra.uniform(0.15, 0.28)))


def rotated(digit: np.ndarray, rng: np.random.Generator, extra: np.random.Generator) -> Image.Image:
    """Turned by 12-20 degrees either way."""
    size, margin, page = base(rng)
    angle = float(extra.uniform(12, 20)) * (1 if extra.random() < 0.5 else -1)
    field = Image.fromarray(enlarge(digit, size), "F").rotate(angle, Image.Resampling.BILINEAR, expand=True)
    ink = np.asarray(field, np.float32)
    return render(on_canvas(ink, max(ink.shape) + margin, rng), page, rng)


def small(digit: np.ndarray, rng: np.random.Generator, extra: np.random.Generator) -> Image.Image:
    """Small and off-centre: a digit about 30 px tall somewhere on a page 260-340 px wide."""
    _, _, page = base(rng)
    field = enlarge(digit, int(extra.integers(36, 50)))
    return render(on_canvas(field, int(extra.integers(260, 341)), rng), replace(page, blur=0.5), rng)


MAKERS: dict[str, Maker] = {
    "plain": plain,
    **{f"low-{side}-{method}": low(side, method) for side in LOW_SIDES for method in UPSCALES},
    "blurred": styled(page_change=blurred),
    "thick-pen": styled(ink_change=thick),
    "thin-pen": styled(ink_change=thin),
    "low-contrast": styled(page_change=low_contrast),
    "jpeg": styled(page_change=jpeg),
    "rotated": rotated,
    "small-off-centre": small,
    "lined-paper": styled(page_change=lined),
    "squared-paper": styled(page_change=squared),
    "chalk": styled(page_change=chalk),
    "clean-scan": styled(page_change=clean),
}
PHOTOGRAPHED = "photographed"
VARIANTS: tuple[str, ...] = (*MAKERS, PHOTOGRAPHED)


def rendered(digits: np.ndarray, kind: str, seed: int) -> list[Image.Image]:
    """The files of one kind before preparation (to look at them): what `variant` prepares."""
    make = maker(kind)
    return [make(digit, *generators(kind, seed, i)) for i, digit in enumerate(digits)]


def maker(kind: str) -> Maker:
    if kind not in MAKERS:
        known = ", ".join(VARIANTS)
        raise ConfigError(f"unknown digit variant {kind!r}; choose one of: {known}")
    return MAKERS[kind]


def generators(kind: str, seed: int, index: int) -> tuple[np.random.Generator, np.random.Generator]:
    """One image's generators: the plain rendering's (the same for every kind, so that kinds differ only in their
    one change) and the kind's own, for its strength."""
    return np.random.default_rng([seed, index]), np.random.default_rng([seed, index, zlib.crc32(kind.encode())])


def draw(digits: np.ndarray, kind: str, seed: int) -> np.ndarray:
    """Prepared images of one kind; zeros where the preparation found no digit. Drawn across the cores."""
    return drawn_sets([Draw(draw_part, len(digits), (kind, seed), digits)])[0]


def draw_part(digits: np.ndarray, start: int, kind: str, seed: int) -> np.ndarray:
    """`draw` of digits start, start + 1, ... of a set."""
    if kind == PHOTOGRAPHED:
        out = photograph_part(digits, start, seed)
        out[np.all(out == digits, axis=(1, 2))] = 0  # photograph keeps a digit it could not prepare as it was
        return out
    make = maker(kind)
    out = np.zeros((len(digits), 28, 28), np.uint8)
    for i, digit in enumerate(digits):
        try:
            out[i] = prepare(make(digit, *generators(kind, seed, start + i)))[0]
        except ImageError:
            continue
    return out


def check(digits: np.ndarray, kind: str) -> None:
    if kind != PHOTOGRAPHED:
        maker(kind)
    if digits.ndim != 3 or digits.shape[1:] != (28, 28) or digits.dtype != np.uint8:
        raise ConfigError(f"digits must be (N, 28, 28) uint8 MNIST-style images, got {digits.shape} {digits.dtype}")


def variant(digits: np.ndarray, kind: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Digits (N, 28, 28) uint8 MNIST-style -> (prepared (N, 28, 28) uint8, found (N,) bool): `kind`'s rendering of
    each, prepared as `predict` prepares a file. `found` is False where the preparation found no digit (its image is
    zeros). Deterministic for (digits, kind, seed); drawn once and then cached."""
    return variants(digits, seed, [kind])[kind]


def variants(
    digits: np.ndarray, seed: int, kinds: Sequence[str] = VARIANTS
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """`variant` of each kind, in the order given; the kinds not in the cache yet drawn together, across the cores."""
    for kind in kinds:
        check(digits, kind)
    key = hashlib.blake2b(digits.tobytes(), digest_size=8).hexdigest()
    names = {kind: f"variant-v{POOL_VERSION}.{DRAWING}-{kind}-{key}-{seed}" for kind in kinds}
    images = {kind: found for kind, name in names.items() if (found := load(name, len(digits))) is not None}
    missing = [kind for kind in names if kind not in images]
    for kind in missing:
        note(names[kind], len(digits))
    for kind, new in zip(
        missing, drawn_sets([Draw(draw_part, len(digits), (k, seed), digits) for k in missing]), strict=True
    ):
        store(names[kind], new)
        images[kind] = new
    return {kind: (images[kind], np.any(images[kind], axis=(1, 2))) for kind in kinds}


def held_out_printed(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`count` digits printed in HELD_OUT_FONTS (a hand no training or calibration set draws in), prepared, with
    their labels (0, 1, ..., 9, 0, ...); none where Matplotlib lacks those fonts."""
    fonts = matplotlib_fonts(HELD_OUT_FONTS)
    if not fonts:
        return np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.int64)
    images = cached(
        f"printed-held-out-v{POOL_VERSION}-{count}-{seed}", count, lambda: font_digits(fonts, count, seed)[0]
    )
    return images, np.arange(count) % 10
