"""Pixel scaling, and a user's image -> 28x28 arrays prepared the way MNIST's digits were.

MNIST's digits are light ink on black, cropped to the ink, scaled to fit a 20x20 box keeping
their aspect ratio, and placed in a 28x28 field with their centre of mass at the centre. A photo
or scan is brought to that form: polarity from the image itself, a background estimated locally
(uneven lighting, paper texture), the ink thresholded against it, stroke width kept within MNIST's
range, then the same crop, scale and centring.
"""

from __future__ import annotations

import io
import threading
import warnings
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, ImageOps
from scipy import ndimage

from .errors import ImageError, ImageTooLargeError, NoDigitError, NotAnImageError

SIZE = 28
BOX = 20
CENTRE = 14.0  # MNIST's mean centre of mass, in pixel indices
MAX_DECODE_BYTES = 64 * 2**20  # decoded pixels of one image, in bytes (a 16-megapixel RGB photo)
BAND_PIXELS = 1_000_000  # large images are converted and reduced this many pixels at a time
WORK_SIDE = 512  # larger images are reduced to this before the ink is found
STROKE_RANGE = (2.0, 4.5)  # MNIST's stroke widths at the 20x20 scale, 5th to 95th percentile
STROKE_TARGET = (2.4, 3.6)
MIN_CONTRAST = 0.08
SIGNATURES = ((b"\x89PNG", "PNG"), (b"\xff\xd8", "JPEG"), (b"GIF8", "GIF"), (b"BM", "BMP"), (b"RIFF", "WebP"))
MERGE_OVERLAP = 0.3  # ink components sharing this share of the narrower's width are one digit
# Pillow warns of images between its pixel limit and twice it, which open_image judges by their cost instead. The
# warning filters are the process's (catch_warnings is not thread-safe), so threads opening images take turns.
QUIET_PILLOW = threading.Lock()


def scale(images: np.ndarray) -> np.ndarray:
    """uint8 pixels 0..255 to float32 0..1."""
    return images.astype(np.float32) / np.float32(255)


def decoded_bytes(mode: str, size: tuple[int, int]) -> int:
    """The memory Pillow allocates to hold an image of this mode and size: 1 byte a pixel for 1-bit, grey and
    palette images, 2 for 16-bit grey, 4 for everything else (RGB is stored padded to 4 bytes)."""
    per_pixel = 1 if mode in ("1", "L", "P") else 2 if mode.startswith("I;16") else 4
    return size[0] * size[1] * per_pixel


def open_image(source: bytes | Path, max_bytes: int = MAX_DECODE_BYTES, *, load: bool = True) -> Image.Image:
    """Decode an image, refusing what Pillow cannot read and anything whose decoded pixels would take more than
    `max_bytes`, judged from the header before decoding. JPEGs are reduced while decoding (to at least WORK_SIDE),
    so a large photo still fits. With `load=False`, only the header is read and checked."""
    if isinstance(source, bytes) and not source:
        raise ImageError("empty file; send an image such as a PNG or JPEG")
    try:
        with QUIET_PILLOW, warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
        width, height = image.size
        if width < 1 or height < 1:
            raise ImageError(f"image is {width}x{height} pixels; it holds nothing to read")
        image.draft("L", (WORK_SIDE, WORK_SIDE))  # JPEG only: decodes grey at 1/2, 1/4 or 1/8 scale
        cost = decoded_bytes(image.mode, image.size)
        if cost > max_bytes:
            raise ImageTooLargeError(
                f"image is {width}x{height} {image.mode}: too many pixels to read (decoding takes"
                f" {cost / 2**20:,.0f} MiB, limit {max_bytes / 2**20:,.0f} MiB); scale it down"
            )
        if load:
            image.load()
    except ImageError:
        raise
    except Image.DecompressionBombError:
        raise ImageTooLargeError("image declares too many pixels to read (a decompression bomb); refused") from None
    except Image.UnidentifiedImageError:
        head = source[:12] if isinstance(source, bytes) else source.read_bytes()[:12]
        known = next((name for magic, name in SIGNATURES if head.startswith(magic)), None)
        if known:
            raise ImageError(f"corrupt {known} image: Pillow cannot read its header (is it 0x0?)") from None
        raise NotAnImageError("not an image format Pillow reads; send a PNG, JPEG, GIF, BMP, TIFF or WebP") from None
    except FileNotFoundError:
        raise ImageError("no such file") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise ImageError(
            f"corrupt or truncated image ({str(e).splitlines()[0] if str(e) else type(e).__name__})"
        ) from None
    return image


def working_copy(image: Image.Image) -> Image.Image:
    """The image upright (EXIF orientation) in one of three modes (RGBA if it has transparency, F for 16- and 32-bit
    values, L otherwise), reduced by a whole factor so its longer side is under 2 * WORK_SIDE. It is converted and
    reduced a band of rows at a time, so a large image costs little beyond its decoded pixels."""
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        mode = "RGBA"
    elif image.mode in ("I", "F") or image.mode.startswith("I;"):
        mode = "F"
    else:
        mode = "L"
    factor = max(1, max(image.size) // WORK_SIDE)
    width, height = image.size
    work = Image.new(mode, (-(-width // factor), -(-height // factor)))
    rows = factor * max(1, BAND_PIXELS // (width * factor))
    for top in range(0, height, rows):
        band = image.crop((0, top, width, min(top + rows, height)))
        band = band.getchannel("L") if band.mode == "LAB" and mode == "L" else band.convert(mode)
        work.paste(band.reduce(factor) if factor > 1 else band, (0, top // factor))
    orientation = image.getexif().get(ExifTags.Base.Orientation)
    if orientation:
        work.getexif()[ExifTags.Base.Orientation] = orientation
        ImageOps.exif_transpose(work, in_place=True)
    return work


def grey(image: Image.Image) -> np.ndarray:
    """Luminance in [0, 1] (1 is white), with transparency flattened onto a background that contrasts
    with the opaque pixels, reduced so its longer side is at most WORK_SIDE."""
    image = working_copy(image)
    if image.mode == "F":
        values = np.asarray(image, np.float32)
        low, high = float(values.min()), float(values.max())
        image = Image.fromarray(((values - low) / max(high - low, 1e-6)).astype(np.float32), "F")
    elif image.mode == "RGBA":
        rgba = np.asarray(image, np.float32) / 255
        alpha = rgba[..., 3]
        luma = rgba[..., :3] @ np.array([0.299, 0.587, 0.114], np.float32)
        if alpha.min() < 1:
            opaque = alpha > 0.5
            ink_is_dark = not opaque.any() or float(luma[opaque].mean()) < 0.5
            backdrop = 1.0 if ink_is_dark else 0.0
            luma = luma * alpha + backdrop * (1 - alpha)
        image = Image.fromarray(luma.astype(np.float32), "F")
    if max(image.size) > WORK_SIDE:
        factor = WORK_SIDE / max(image.size)
        size = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
        image = image.resize(size, Image.Resampling.BOX)
    values = np.asarray(image, np.float32)
    return values / 255 if image.mode == "L" else values


def dark_ink(values: np.ndarray) -> bool:
    """True when the ink is darker than the paper: the border's median is the paper, and the
    ink is whichever extreme lies farther from it."""
    edge = max(1, min(values.shape) // 50)
    border = np.concatenate(
        [values[:edge].ravel(), values[-edge:].ravel(), values[:, :edge].ravel(), values[:, -edge:].ravel()]
    )
    paper = float(np.median(border))
    smooth = ndimage.gaussian_filter(values, 1.0) if min(values.shape) > 8 else values
    return paper - float(smooth.min()) > float(smooth.max()) - paper


def ink_map(values: np.ndarray) -> tuple[np.ndarray, float]:
    """Ink strength (bright ink, background near 0) and the threshold between ink and paper noise.

    The background is a grey opening wider than any stroke, so slow changes of lighting or
    paper tone are subtracted while strokes stay."""
    ink = 1 - values if dark_ink(values) else values
    window = max(3, max(ink.shape) // 4)
    background = ndimage.maximum_filter(ndimage.minimum_filter(ink, window), window)
    background = ndimage.uniform_filter(background, window)
    ink = np.clip(ink - background, 0, None)
    residual = ink[ink < np.percentile(ink, 50) * 4 + 1e-3] if ink.size > 64 else ink
    noise = float(1.4826 * np.median(np.abs(residual - np.median(residual)))) if residual.size else 0.0
    peak = float((ndimage.gaussian_filter(ink, 1.0) if min(ink.shape) > 8 else ink).max())
    if peak < max(MIN_CONTRAST, 6 * noise):
        raise NoDigitError("no digit found: the image is blank or its ink has too little contrast")
    return ink, max(0.35 * peak, 3 * noise)


def components(mask: np.ndarray) -> tuple[np.ndarray, list[tuple[slice, slice]]]:
    """8-connected ink components (labels and bounding boxes) without specks: a component is kept when its
    area is at least a fifth of the largest's, or a small part (at least 3%) near those."""
    labels, count = ndimage.label(mask, np.ones((3, 3), bool))
    if count == 0:
        raise NoDigitError("no digit found: the image is blank or its ink has too little contrast")
    areas = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    boxes = ndimage.find_objects(labels)
    big = [i for i in range(count) if areas[i] >= 0.2 * areas.max()]
    top, bottom = min(boxes[i][0].start for i in big), max(boxes[i][0].stop for i in big)
    left, right = min(boxes[i][1].start for i in big), max(boxes[i][1].stop for i in big)
    margin = 0.25 * max(bottom - top, right - left)

    def near(box: tuple[slice, slice]) -> bool:
        return (
            box[0].stop > top - margin
            and box[0].start < bottom + margin
            and box[1].stop > left - margin
            and box[1].start < right + margin
        )

    if areas.max() < 4:
        raise NoDigitError("no digit found: only specks of ink")
    keep = [i for i in range(count) if i in big or (areas[i] >= max(4, 0.03 * areas.max()) and near(boxes[i]))]
    remap = np.zeros(count + 1, np.int32)
    remap[[i + 1 for i in keep]] = np.arange(1, len(keep) + 1)
    return remap[labels], [boxes[i] for i in keep]


def stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width in pixels: twice the area over the boundary length."""
    boundary = mask & ~ndimage.binary_erosion(mask, border_value=0)
    return 2 * float(mask.sum()) / max(float(boundary.sum()), 1.0)


def fit_box(ink: np.ndarray, mask: np.ndarray, threshold: float, deskewing: bool) -> np.ndarray:
    """One digit's ink (a crop around `mask`) -> a 28x28 uint8 image, MNIST-style."""
    rows, cols = np.nonzero(mask)
    height, width = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
    factor = BOX / max(height, width)
    width20 = stroke_width(mask) * factor
    pad = int(np.ceil(max(STROKE_TARGET) / factor)) + 2
    window = (slice(max(rows.min() - 2, 0), rows.max() + 3), slice(max(cols.min() - 2, 0), cols.max() + 3))
    crop_mask = np.pad(mask[window], pad)
    near = ndimage.binary_dilation(crop_mask, iterations=2)
    strong = float(np.percentile(ink[mask], 90))
    floor = threshold / 2
    value = np.clip((np.pad(ink[window], pad) - floor) / max(strong - floor, 1e-6), 0, 1) * near
    if width20 < STROKE_RANGE[0]:
        radius = (STROKE_TARGET[0] - width20) / factor / 2
        distance = ndimage.distance_transform_edt(~crop_mask)
        value = np.maximum(value, np.clip(radius + 0.5 - distance, 0, 1))
    elif width20 > STROKE_RANGE[1]:
        radius = (width20 - STROKE_TARGET[1]) / factor / 2
        depth = ndimage.distance_transform_edt(crop_mask)
        value = np.minimum(value, np.clip(depth - radius, 0, 1))
    filled = np.nonzero(value > 0.05)
    if filled[0].size == 0:
        raise NoDigitError("no digit found: the ink is too faint")
    value = value[filled[0].min() : filled[0].max() + 1, filled[1].min() : filled[1].max() + 1]
    factor = BOX / max(value.shape)
    size = (max(1, round(value.shape[1] * factor)), max(1, round(value.shape[0] * factor)))
    method = Image.Resampling.BOX if factor < 1 else Image.Resampling.BILINEAR
    small = np.asarray(Image.fromarray(value.astype(np.float32), "F").resize(size, method), np.float32)
    small = np.clip(small / max(float(small.max()), 1e-6), 0, 1)
    return place(small, deskewing)


def place(small: np.ndarray, deskewing: bool = False) -> np.ndarray:
    """Put a digit of at most 20x20 in a 28x28 field with its centre of mass at MNIST's centre."""
    com = ndimage.center_of_mass(small)
    field = np.zeros((SIZE, SIZE), np.float32)
    top = int(np.clip(round(CENTRE - com[0]), 0, SIZE - small.shape[0]))
    left = int(np.clip(round(CENTRE - com[1]), 0, SIZE - small.shape[1]))
    field[top : top + small.shape[0], left : left + small.shape[1]] = small
    if deskewing:
        field = deskew(field)
    return np.round(field * 255).astype(np.uint8)


def deskew(field: np.ndarray) -> np.ndarray:
    """Shear a 28x28 digit so its principal axis is vertical (from its second moments), keeping its centre of mass."""
    total = float(field.sum())
    if total <= 0:
        return field
    rows, cols = np.mgrid[: field.shape[0], : field.shape[1]]
    mean_r, mean_c = float((rows * field).sum() / total), float((cols * field).sum() / total)
    var_r = float(((rows - mean_r) ** 2 * field).sum() / total)
    cov = float(((rows - mean_r) * (cols - mean_c) * field).sum() / total)
    if var_r < 1e-6:
        return field
    skew = cov / var_r
    matrix = np.array([[1.0, 0.0], [skew, 1.0]])
    offset = np.array([mean_r, mean_c]) - matrix @ np.array([mean_r, mean_c])
    return np.clip(ndimage.affine_transform(field, matrix, offset=offset, order=1), 0, 1)


def mnist_style(image: Image.Image) -> np.ndarray | None:
    """The pixels of an image that already is an MNIST digit (28x28, light ink on a black border, or the same
    inverted: dark ink on a white border), light on black, else None: the preparation would only redraw it. (Most of a
    server's requests are read here: integer sums over the pixels' bytes took a 28x28 PNG from 82 to 52 µs, decoding
    included, against means over an array view of the image.)"""
    if image.size != (SIZE, SIZE) or image.mode not in ("L", "P", "RGB"):
        return None
    grey = image if image.mode == "L" else image.convert("L")
    pixels = np.frombuffer(grey.tobytes(), np.uint8).reshape(SIZE, SIZE)
    edge = 4 * SIZE - 4  # pixels on the border
    border = int(pixels.sum(dtype=np.int32)) - int(pixels[1:-1, 1:-1].sum(dtype=np.int32))
    if border > 239 * edge:
        pixels, border = 255 - pixels, 255 * edge - border
    dark = 2 * np.count_nonzero(pixels < 16) > pixels.size
    return pixels if dark and border < 16 * edge and pixels.max() > 64 else None


def prepare(image: Image.Image, multi_digit: bool = False, deskewing: bool = False) -> list[np.ndarray]:
    """An image -> its digits as 28x28 uint8 arrays, left to right (one unless `multi_digit`)."""
    if not multi_digit and not deskewing and (ready := mnist_style(image)) is not None:
        return [ready]
    ink, threshold = ink_map(grey(image))
    labels, boxes = components(ink > threshold)
    if not multi_digit:
        return [fit_box(ink, labels > 0, threshold, deskewing)]
    return [fit_box(ink, np.isin(labels, group), threshold, deskewing) for group in digit_groups(boxes)]


def digit_groups(boxes: list[tuple[slice, slice]]) -> list[list[int]]:
    """Component labels grouped into digits, left to right: components overlapping horizontally are merged."""
    order = sorted(range(len(boxes)), key=lambda i: boxes[i][1].start)
    groups: list[list[int]] = []
    spans: list[list[int]] = []
    for i in order:
        start, stop = boxes[i][1].start, boxes[i][1].stop
        if spans:
            last = spans[-1]
            overlap = min(stop, last[1]) - max(start, last[0])
            if overlap >= MERGE_OVERLAP * min(stop - start, last[1] - last[0]):
                groups[-1].append(i + 1)
                last[1] = max(last[1], stop)
                continue
        groups.append([i + 1])
        spans.append([start, stop])
    return groups


def as_is(image: Image.Image) -> np.ndarray:
    """No MNIST-style preparation: the whole image in grey, resized to 28x28 (a baseline)."""
    pixels = np.round(grey(image) * 255).astype(np.uint8)
    return np.asarray(Image.fromarray(pixels, "L").resize((SIZE, SIZE), Image.Resampling.BOX))


def load_digits(
    source: bytes | Path,
    prepared: bool = True,
    multi_digit: bool = False,
    deskewing: bool = False,
    max_bytes: int = MAX_DECODE_BYTES,
) -> list[np.ndarray]:
    """Read an image (bytes or a file) and return the 28x28 uint8 arrays to feed a model; `max_bytes` bounds
    the memory its decoded pixels may take (see open_image)."""
    image = open_image(source, max_bytes)
    return prepare(image, multi_digit, deskewing) if prepared else [as_is(image)]
