"""The `predict` command: the digit (or number) in each image file, as lines of text or as JSON."""

from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from ..image_files import Reading


def predict(
    model: Annotated[Path, typer.Argument(help="A run directory, an ensemble folder, or a .keras file.")],
    images: Annotated[list[Path], typer.Argument(help="Image files or folders of images (searched recursively).")],
    top_k: Annotated[int, typer.Option("--top-k", help="How many of the most probable classes to show.")] = 3,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON array for machines.")] = False,
    save_preprocessed: Annotated[
        Path | None, typer.Option("--save-preprocessed", help="Write the 28x28 images fed to the model here.")
    ] = None,
    multi_digit: Annotated[
        bool, typer.Option("--multi-digit", help="Read a number: one digit per group of ink, left to right.")
    ] = False,
    deskew: Annotated[bool, typer.Option("--deskew", help="Straighten slanted digits before predicting.")] = False,
    prepare: Annotated[
        bool,
        typer.Option("--prepare/--no-prepare", help="MNIST-style preparation, or only resize the image to 28x28."),
    ] = True,
    reject: Annotated[
        bool,
        typer.Option("--reject/--no-reject", help="Verdicts (not a digit, not sure), or every reading a digit."),
    ] = True,
    reject_threshold: Annotated[
        str | None,
        typer.Option(
            "--reject-threshold",
            help="Not a digit below this typicality, 0..1 (share of validation digits as unusual; default: the run's).",
        ),
    ] = None,
    confidence_threshold: Annotated[
        str | None,
        typer.Option(
            "--confidence-threshold", help="Not sure below this calibrated confidence, 0..1 (default: the run's)."
        ),
    ] = None,
) -> None:
    """Read the digit (or, with --multi-digit, the number) in each image, with a verdict: digit, uncertain or
    not_a_digit; bad files are reported and skipped."""
    from ..inference import DefaultCalibrationWarning
    from ..predict_files import read_images
    from ..readings import reading_json

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DefaultCalibrationWarning)
        found = read_images(
            model,
            images,
            top_k=top_k,
            prepare=prepare,
            multi_digit=multi_digit,
            deskew=deskew,
            reject=reject,
            reject_threshold=reject_threshold,
            confidence_threshold=confidence_threshold,
            save_preprocessed=save_preprocessed,
        )
    for message in {str(w.message) for w in caught if issubclass(w.category, DefaultCalibrationWarning)}:
        typer.echo(f"note: {message}", err=True)
    for path, reason in found.missing:
        typer.echo(f"error: {path}: {reason}", err=True)
    failures = len(found.missing)
    written = 0
    for reading in found.readings:
        if reading.error:
            failures += 1
            typer.echo(f"error: {reading.source}: {reading.error}", err=True)
        if json_output:
            # One result per line as it is read, so a large folder streams: readable, and json's C encoder (which
            # indent= would turn off) writes it 5x faster.
            sys.stdout.write(
                ("[\n" if written == 0 else ",\n")
                + json.dumps(reading_json(found.class_names, reading, multi_digit, top_k))
            )
            written += 1
        elif not reading.error:
            sys.stdout.write(reading_line(found.class_names, reading, top_k, multi_digit) + "\n")
    if json_output:
        sys.stdout.write("\n]\n" if written else "[]\n")
    if failures:
        typer.echo(f"error: {failures} of {found.inputs} inputs could not be read", err=True)
        sys.exit(2)


SAID = {"digit": "", "uncertain": "not sure: ", "not_a_digit": "not a digit: "}


def reading_line(class_names: Sequence[str], reading: Reading, top_k: int, multi_digit: bool) -> str:
    """A file's reading as one line of text: the file, the verdict unless a plain digit, the digit (or number) and
    its confidence, then the top-k classes (or each digit of the number)."""
    from ..readings import ranked
    from ..verdicts import overall

    verdicts = reading.verdicts or ["digit"] * len(reading.indices)
    if multi_digit:
        labels = [class_names[i] for i in reading.indices]
        parts = " · ".join(
            f"{SAID[v]}{label} {p.max():.1%}"
            for label, p, v in zip(labels, reading.probabilities, verdicts, strict=True)
        )
        return (
            f"{reading.source}  {SAID[overall(verdicts)]}{''.join(labels)}  {reading.confidence:.1%}  digits: {parts}"
        )
    top = ranked(class_names, reading.probabilities[0], top_k)
    label, confidence = top[0]
    others = f"  top-{top_k}: " + " · ".join(f"{name} {p:.1%}" for name, p in top) if top_k > 1 else ""
    return f"{reading.source}  {SAID[verdicts[0]]}{label}  {confidence:.1%}{others}"
