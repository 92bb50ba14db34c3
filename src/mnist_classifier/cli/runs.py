"""The commands that make runs and judge them: train, evaluate, calibrate, ensemble."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ..errors import ConfigError
from .common import DataDirOpt, RegisterOpt, TrackingOpt, TrainSamplesOpt, console, print_summary


def parse_units(text: str | None, name: str = "--hidden-units", example: str = "512,256") -> list[int] | None:
    if text is None:
        return None
    if name == "--hidden-units" and text.strip().lower() == "none":
        return []
    try:
        return [int(u) for u in text.split(",")]
    except ValueError:
        raise ConfigError(f"{name}: expected comma-separated sizes such as {example}, got {text!r}") from None


def train(
    model: Annotated[str | None, typer.Option(help="Model name: dnn or cnn.")] = None,
    preset: Annotated[
        str | None, typer.Option(help="Named settings of the model: cnn fast, default or best; dnn augmented.")
    ] = None,
    dataset: Annotated[str | None, typer.Option(help="mnist or fashion-mnist.")] = None,
    data_dir: DataDirOpt = None,
    epochs: Annotated[int | None, typer.Option(help="Maximum epochs.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Images per step.")] = None,
    learning_rate: Annotated[float | None, typer.Option(help="Peak learning rate.")] = None,
    optimizer: Annotated[str | None, typer.Option(help="adam, adamw, sgd or rmsprop.")] = None,
    schedule: Annotated[str | None, typer.Option(help="constant, or cosine with warm-up (one cycle).")] = None,
    warmup_fraction: Annotated[float | None, typer.Option(help="Share of the steps spent warming up.")] = None,
    validation_fraction: Annotated[float | None, typer.Option(help="Share of the training set held out.")] = None,
    patience: Annotated[
        int | None, typer.Option(help="Stop after this many epochs without improvement; 0 never.")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the split, initialisation and shuffling.")] = None,
    hidden_units: Annotated[
        str | None, typer.Option(help="Dense layer sizes, e.g. 512,512 (cnn: after the convolutions; none for none).")
    ] = None,
    filters: Annotated[str | None, typer.Option(help="cnn: channels of each stage, e.g. 32,64,128.")] = None,
    convs_per_stage: Annotated[int | None, typer.Option(help="cnn: convolutions per stage.")] = None,
    kernel_size: Annotated[int | None, typer.Option(help="cnn: kernel of the first convolution (3, 5, 7).")] = None,
    downsample: Annotated[str | None, typer.Option(help="cnn: halve each stage by stride or pool.")] = None,
    shift: Annotated[float | None, typer.Option(help="Augmentation: maximum random shift in pixels.")] = None,
    rotation: Annotated[float | None, typer.Option(help="Augmentation: maximum random rotation in degrees.")] = None,
    scale: Annotated[float | None, typer.Option(help="Augmentation: maximum random zoom, e.g. 0.1 for 10%.")] = None,
    elastic: Annotated[float | None, typer.Option(help="Augmentation: elastic distortion strength (alpha).")] = None,
    elastic_sigma: Annotated[float | None, typer.Option(help="Smoothness of the elastic distortion.")] = None,
    label_smoothing: Annotated[float | None, typer.Option(help="Label smoothing, e.g. 0.1.")] = None,
    outliers: Annotated[
        float | None,
        typer.Option(help="Non-digits per digit in each batch, taught to get no confident digit; 0 for none."),
    ] = None,
    printed_digits: Annotated[
        int | None,
        typer.Option(help="Printed digits added to the training digits, so that such digits are answered; 0 for none."),
    ] = None,
    photographed: Annotated[
        float | None,
        typer.Option(help="Share of training digits seen photographed and prepared, as in a photo; 0 for none."),
    ] = None,
    variants: Annotated[
        float | None,
        typer.Option(
            help="Share of training digits seen in other styles (low scans, thick pens, chalk...); 0 for none."
        ),
    ] = None,
    weight_decay: Annotated[float | None, typer.Option(help="Decoupled weight decay; 0 for none.")] = None,
    ema: Annotated[
        float | None,
        typer.Option(help="Momentum of a moving average of the weights, used to validate and save; 0 off."),
    ] = None,
    hard_epochs: Annotated[
        int | None,
        typer.Option(help="Train the last N epochs (never the first) on the hardest examples (--hard-fraction)."),
    ] = None,
    hard_fraction: Annotated[
        float | None,
        typer.Option(help="Share of the training digits and non-digits the hard epochs keep: those read least surely."),
    ] = None,
    jit_compile: Annotated[
        bool | None, typer.Option("--jit-compile/--no-jit-compile", help="Compile training steps with XLA.")
    ] = None,
    precision: Annotated[
        str | None, typer.Option(help="float32, bfloat16, or auto: bfloat16 where the CPU has bf16 units and it pays.")
    ] = None,
    threads: Annotated[int | None, typer.Option(help="CPU threads for TensorFlow (default: all cores).")] = None,
    ensemble: Annotated[int | None, typer.Option(help="Train this many members (seeds seed, seed+1, ...).")] = None,
    activation: Annotated[str | None, typer.Option(help="Hidden activation.")] = None,
    dropout: Annotated[float | None, typer.Option(help="Dropout rate after each hidden layer.")] = None,
    batch_norm: Annotated[
        bool | None, typer.Option("--batch-norm/--no-batch-norm", help="Batch normalisation.")
    ] = None,
    standardize: Annotated[
        bool | None, typer.Option("--standardize/--no-standardize", help="Standardise pixels.")
    ] = None,
    deskew: Annotated[
        bool | None,
        typer.Option("--deskew/--no-deskew", help="Straighten each digit inside the model before its first layer."),
    ] = None,
    train_samples: TrainSamplesOpt = None,
    config: Annotated[Path | None, typer.Option("--config", help="TOML or JSON settings; options override it.")] = None,
    out: Annotated[Path | None, typer.Option(help="Run directory (default runs/MODEL-DATASET-TIME).")] = None,
    show_config: Annotated[bool, typer.Option("--show-config", help="Print the resolved settings and exit.")] = False,
    resume: Annotated[
        Path | None,
        typer.Option("--resume", help="Continue an interrupted run folder from its last completed epoch."),
    ] = None,
    tracking: TrackingOpt = None,
    register: RegisterOpt = None,
) -> None:
    """Train a model, evaluate it on the test set and write its run directory with report.html."""
    from .. import api
    from ..config import resolve, to_dict

    overrides = dict(
        model=model,
        dataset=dataset,
        data_dir=str(data_dir) if data_dir else None,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        optimizer=optimizer,
        schedule=schedule,
        warmup_fraction=warmup_fraction,
        validation_fraction=validation_fraction,
        patience=patience,
        seed=seed,
        hidden_units=parse_units(hidden_units),
        activation=activation,
        dropout=dropout,
        batch_norm=batch_norm,
        standardize=standardize,
        deskew=deskew,
        train_samples=train_samples,
        filters=parse_units(filters, "--filters", "32,64,128"),
        convs_per_stage=convs_per_stage,
        kernel_size=kernel_size,
        downsample=downsample,
        shift=shift,
        rotation=rotation,
        scale=scale,
        elastic=elastic,
        elastic_sigma=elastic_sigma,
        label_smoothing=label_smoothing,
        outliers=outliers,
        printed_digits=printed_digits,
        photographed=photographed,
        variants=variants,
        weight_decay=weight_decay,
        ema=ema,
        hard_epochs=hard_epochs,
        hard_fraction=hard_fraction,
        jit_compile=jit_compile,
        precision=precision,
        threads=threads,
        ensemble=ensemble,
    )
    verbose = 1 if sys.stdout.isatty() else 2
    if resume is not None:
        if config or preset or out or show_config or any(v is not None for v in overrides.values()):
            raise ConfigError("--resume takes every setting from the run's config.json; give it alone")
        run = api.resume(resume, verbose)
    else:
        settings = resolve(config, preset, **overrides)
        if show_config:
            import tomli_w

            console.print(tomli_w.dumps({k: v for k, v in to_dict(settings).items() if v is not None}), end="")
            return
        run = api.train(settings, out=out, verbose=verbose, tracking=tracking, register=register)
    print_summary(run.metrics, run.path, run.path / "report.html")


def evaluate(
    run_dir: Annotated[
        Path | None,
        typer.Argument(
            help="A run directory written by train, or bundled:NAME (default: the bundled fast CNN), evaluated in a"
            " copy under runs/.",
            show_default=False,
        ),
    ] = None,
    split: Annotated[str, typer.Option(help="train, val or test.")] = "test",
    dataset: Annotated[str | None, typer.Option(help="Evaluate on another dataset of the same shape.")] = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Re-evaluate a saved run on a dataset split and rewrite its metrics and report (a bundled model's in a copy:
    it is read-only)."""
    from ..api import load_run
    from .models import chosen

    run = load_run(chosen(run_dir, "evaluating"))
    if run.bundled is not None:
        run = run.copy()
        console.print(f"the bundled model is read-only: evaluating a copy in {run.path}", highlight=False)
    metrics = run.evaluate(split, dataset, data_dir)
    console.print(f"{metrics['dataset']} {split} split:", highlight=False)
    print_summary(metrics, run.path, run.path / "report.html")


def calibrate(
    run_dir: Annotated[Path, typer.Argument(help="A run or ensemble folder (an ensemble's members first).")],
) -> None:
    """Fit a run's calibration and verdict thresholds (training does it itself; this is for runs trained before)."""
    from ..api import load_run

    fitted = load_run(run_dir).calibrate()
    figures = fitted["figures"]
    console.print(
        f"temperature {fitted['temperature']:.3f} · score {fitted['score']} · reject threshold"
        f" {fitted['reject_threshold']:.3f} · confidence threshold {fitted['confidence_threshold']:.2f}",
        highlight=False,
    )
    console.print(
        f"validation ECE {figures['validation_ece_before']:.2%} -> {figures['validation_ece_after']:.2%} · mean AUROC"
        f" vs validation non-digits: "
        + ", ".join(f"{name} {c['auroc_mean']:.3f}" for name, c in figures["candidates"].items()),
        highlight=False,
    )
    console.print(f"wrote {run_dir / 'calibration.json'}; `evaluate` puts the figures into the report", highlight=False)


def ensemble_command(
    run_dirs: Annotated[list[Path], typer.Argument(help="Two or more run directories of the same dataset.")],
    out: Annotated[
        Path | None, typer.Option(help="Folder for the ensemble's results (default runs/ensemble-TIME).")
    ] = None,
    tta: Annotated[bool, typer.Option("--tta", help="Also average over one-pixel shifts of each test image.")] = False,
) -> None:
    """Average the runs' probabilities, evaluate on the test set, and write metrics and report.html."""
    from ..api import ensemble

    run = ensemble(run_dirs, out, tta)
    metrics = run.metrics
    for member in metrics["members"]:
        console.print(f"member {Path(member['run']).name}: {member['accuracy']:.2%}", highlight=False)
    print_summary(metrics, run.path, run.path / "report.html")
