"""The `mnist-classifier` command: parse options, call the Python API, print what it returns.

Heavy modules (Keras, TensorFlow) are imported inside the commands that run, never at import, so `--help` of
every command answers at once.
"""

from __future__ import annotations

import functools
import json
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from .config import Interval, Rule, check_value
from .errors import ConfigError, MnistClassifierError, SettingError
from .utils import import_tensorflow_quietly

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .image_files import Reading

app = typer.Typer(help="Train, evaluate, tune and serve networks that read handwritten digits.", no_args_is_help=True)
data_app = typer.Typer(help="Inspect and verify the datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")
console = Console(soft_wrap=True)
ABOVE_ZERO = Interval(0, None, "neither")


def quiet_tensorflow(command: Callable[..., None]) -> Callable[..., None]:
    """A command that starts TensorFlow starts it first, with its C++ start-up lines kept off stderr; its `--help`
    returns before the command runs, so it never starts TensorFlow."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> None:
        import_tensorflow_quietly()
        command(*args, **kwargs)

    return run


def within(*rules: Rule) -> Callable[[typer.CallbackParam, Any], Any]:
    """A Typer callback that checks an option against declared rules (config.Interval, config.Options): a value
    outside them is one line, `--NAME must ...`, and exit code 2."""

    def check(param: typer.CallbackParam, value: Any) -> Any:
        check_value(param.name or "", value, *rules)
        return value

    return check


DatasetOpt = Annotated[str, typer.Option("--dataset", help="mnist, fashion-mnist, or a name for --data-dir.")]
DataDirOpt = Annotated[Path | None, typer.Option("--data-dir", help="A folder holding the four IDX files.")]
TrainSamplesOpt = Annotated[
    int | None, typer.Option("--train-samples", help="Train on only this many images (quick experiments).")
]


def parse_units(text: str | None, name: str = "--hidden-units", example: str = "512,256") -> list[int] | None:
    if text is None:
        return None
    if name == "--hidden-units" and text.strip().lower() == "none":
        return []
    try:
        return [int(u) for u in text.split(",")]
    except ValueError:
        raise ConfigError(f"{name}: expected comma-separated sizes such as {example}, got {text!r}") from None


@app.command()
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
    weight_decay: Annotated[float | None, typer.Option(help="Decoupled weight decay; 0 for none.")] = None,
    jit_compile: Annotated[
        bool | None, typer.Option("--jit-compile/--no-jit-compile", help="Compile training steps with XLA.")
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
) -> None:
    """Train a model, evaluate it on the test set and write its run directory with report.html."""
    from . import api
    from .config import resolve, to_dict

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
        weight_decay=weight_decay,
        jit_compile=jit_compile,
        threads=threads,
        ensemble=ensemble,
    )
    verbose = 1 if sys.stdout.isatty() else 2
    if resume is not None:
        if config or preset or out or show_config or any(v is not None for v in overrides.values()):
            raise ConfigError("--resume takes every setting from the run's config.json; give it alone")
        import_tensorflow_quietly()
        run = api.resume(resume, verbose)
    else:
        settings = resolve(config, preset, **overrides)
        if show_config:
            import tomli_w

            console.print(tomli_w.dumps({k: v for k, v in to_dict(settings).items() if v is not None}), end="")
            return
        import_tensorflow_quietly()
        run = api.train(settings, out=out, verbose=verbose)
    print_summary(run.metrics, run.path, run.path / "report.html")


def print_summary(metrics: dict[str, Any], run_dir: Path, report: Path) -> None:
    console.print(
        f"{metrics.get('split', 'test')} accuracy [bold]{metrics['accuracy']:.2%}[/]"
        f" ({metrics['errors']} errors of {metrics['n']:,})"
        f" · loss {metrics['loss']:.4f}"
        + (f" · trained in {metrics['train_seconds']:.1f} s" if "train_seconds" in metrics else "")
    )
    if "val_accuracy" in metrics:
        console.print(f"validation accuracy {metrics['val_accuracy']:.2%} (the members' shared split)")
    console.print(f"run directory: {run_dir}", highlight=False)
    console.print(f"report: {report}", highlight=False)


@app.command()
@quiet_tensorflow
def evaluate(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by train.")],
    split: Annotated[str, typer.Option(help="train, val or test.")] = "test",
    dataset: Annotated[str | None, typer.Option(help="Evaluate on another dataset of the same shape.")] = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Re-evaluate a saved run on a dataset split and rewrite its metrics and report."""
    from .api import load_run

    metrics = load_run(run_dir).evaluate(split, dataset, data_dir)
    console.print(f"{metrics['dataset']} {split} split:", highlight=False)
    print_summary(metrics, run_dir, run_dir / "report.html")


@app.command()
@quiet_tensorflow
def calibrate(
    run_dir: Annotated[Path, typer.Argument(help="A run or ensemble folder (an ensemble's members first).")],
) -> None:
    """Fit a run's calibration and verdict thresholds (training does it itself; this is for runs trained before)."""
    from .api import load_run

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


@app.command()
@quiet_tensorflow
def tune(
    model: Annotated[str | None, typer.Option(help="Model name: dnn (default: --config's, else dnn).")] = None,
    space: Annotated[
        Path | None, typer.Option(help="Search space TOML (default: the model's shipped space for the sampler).")
    ] = None,
    sampler: Annotated[str, typer.Option(help="grid, random or tpe.")] = "tpe",
    pruner: Annotated[str, typer.Option(help="median, hyperband or none (per-epoch validation accuracy).")] = "median",
    trials: Annotated[
        int | None, typer.Option(help="Trials in the study, earlier runs and other workers included.")
    ] = None,
    timeout: Annotated[float | None, typer.Option(help="Start no trial after this many seconds.")] = None,
    study: Annotated[str | None, typer.Option(help="Study name (default MODEL-DATASET-SAMPLER).")] = None,
    storage: Annotated[
        str | None, typer.Option(help="sqlite:///FILE or postgresql://USER@HOST/DB (default OUT/study.db).")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Output folder (default runs/tune-STUDY).")] = None,
    final_train: Annotated[
        bool, typer.Option("--final-train/--no-final-train", help="Retrain the best and test it at the end.")
    ] = True,
    dataset: Annotated[str | None, typer.Option(help="mnist or fashion-mnist.")] = None,
    data_dir: DataDirOpt = None,
    epochs: Annotated[int | None, typer.Option(help="Epochs of each trial, unless the space varies them.")] = None,
    train_samples: TrainSamplesOpt = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the split, the training and the samplers.")] = None,
    threads: Annotated[
        int | None, typer.Option(help="CPU threads of this worker (default: all cores); workers may differ.")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="Settings the space leaves fixed (TOML/JSON).")
    ] = None,
) -> None:
    """Search hyperparameters with Optuna; re-running the same command continues the study, and commands started
    at once (on one or many machines, with the same --storage and --study) share it."""
    from . import api
    from .config import resolve

    base = resolve(
        config,
        model=model,
        dataset=dataset,
        data_dir=str(data_dir) if data_dir else None,
        epochs=epochs,
        train_samples=train_samples,
        seed=seed,
        threads=threads,
    )
    result = api.tune(
        space,
        sampler=sampler,
        trials=trials,
        pruner=pruner,
        timeout=timeout,
        study=study,
        storage=storage,
        out=out,
        final_train=final_train,
        config=base,
        progress=lambda line: console.print(line, highlight=False),
    )
    table = Table(title=f"study {result.study}: {', '.join(f'{n} {k}' for k, n in result.counts.items() if n)}")
    for column in result.columns[:-2]:
        table.add_column(column.replace("_", " "), justify="left" if column in ("state",) else "right")
    for row in result.rows[:20]:
        table.add_row(*(str(row[c]) for c in result.columns[:-2]))
    console.print(table)
    if result.best is not None and result.best_config is not None:
        console.print(
            f"best: trial {result.best.number}, validation accuracy [bold]{result.best.value:.2%}[/]"
            f" · config {result.best_config}",
            highlight=False,
        )
    if result.final_metrics is not None:
        console.print(
            f"final run: test accuracy [bold]{result.final_metrics['accuracy']:.2%}[/] · {result.final_dir}",
            highlight=False,
        )
    if result.report is not None:
        console.print(f"leaderboard: {result.out / 'leaderboard.csv'} · report: {result.report}", highlight=False)


@app.command("ensemble")
@quiet_tensorflow
def ensemble_command(
    run_dirs: Annotated[list[Path], typer.Argument(help="Two or more run directories of the same dataset.")],
    out: Annotated[
        Path | None, typer.Option(help="Folder for the ensemble's results (default runs/ensemble-TIME).")
    ] = None,
    tta: Annotated[bool, typer.Option("--tta", help="Also average over one-pixel shifts of each test image.")] = False,
) -> None:
    """Average the runs' probabilities, evaluate on the test set, and write metrics and report.html."""
    from .api import ensemble

    run = ensemble(run_dirs, out, tta)
    metrics = run.metrics
    for member in metrics["members"]:
        console.print(f"member {Path(member['run']).name}: {member['accuracy']:.2%}", highlight=False)
    print_summary(metrics, run.path, run.path / "report.html")


@data_app.command()
def info(
    dataset: DatasetOpt = "mnist",
    data_dir: DataDirOpt = None,
    validation_fraction: Annotated[float, typer.Option(help="Share of training images held out.")] = 0.1,
    seed: Annotated[int, typer.Option(help="Seed of the validation split.")] = 42,
) -> None:
    """Images per class in the train, validation and test splits."""
    from .api import class_counts

    data, counts = class_counts(dataset, data_dir, validation_fraction, seed)
    table = Table(title=f"{data.name}: {data.x_train.shape[1]}x{data.x_train.shape[2]} images, checksums verified")
    table.add_column("class")
    for name in counts:
        table.add_column(name, justify="right")
    for i, cls in enumerate(data.class_names):
        table.add_row(cls, *(f"{split[i]:,}" for split in counts.values()))
    table.add_row("[bold]total", *(f"[bold]{split.sum():,}" for split in counts.values()))
    console.print(table)
    console.print(f"source: {data.source}", highlight=False)


@data_app.command()
def verify(dataset: DatasetOpt = "mnist", data_dir: DataDirOpt = None) -> None:
    """Re-check every file from scratch: SHA-256 of the content, IDX structure, counts."""
    from .data import verify_files

    for path, digest, shape in verify_files(dataset, data_dir):
        console.print(f"ok  {path.name}  {shape}  sha256 {digest}", highlight=False)
    console.print(f"{dataset}: all four files verified")


@data_app.command()
def show(
    dataset: DatasetOpt = "mnist",
    data_dir: DataDirOpt = None,
    out: Annotated[Path, typer.Option(help="PNG file to write.")] = Path("samples.png"),
    per_class: Annotated[int, typer.Option(help="Samples per class.")] = 10,
    split: Annotated[str, typer.Option(help="train or test.")] = "train",
) -> None:
    """Write a PNG grid of sample images, one row per class."""
    from .api import sample_images

    console.print(f"wrote {sample_images(out, dataset, data_dir, per_class, split)}", highlight=False)


@app.command()
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
    from .inference import DefaultCalibrationWarning
    from .predict_files import read_images
    from .readings import reading_json

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
    results: list[dict[str, Any]] = []
    failures = len(found.missing)
    for reading in found.readings:
        if reading.error:
            failures += 1
            typer.echo(f"error: {reading.source}: {reading.error}", err=True)
        if json_output:
            results.append(reading_json(found.class_names, reading, multi_digit, top_k))
        elif not reading.error:
            sys.stdout.write(reading_line(found.class_names, reading, top_k, multi_digit) + "\n")
    if json_output:
        # One result per line: readable, and json's C encoder (which indent= would turn off) writes it 5x faster.
        sys.stdout.write("[\n" + ",\n".join(json.dumps(r) for r in results) + "\n]\n" if results else "[]\n")
    if failures:
        typer.echo(f"error: {failures} of {found.inputs} inputs could not be read", err=True)
        sys.exit(2)


SAID = {"digit": "", "uncertain": "not sure: ", "not_a_digit": "not a digit: "}


def reading_line(class_names: Sequence[str], reading: Reading, top_k: int, multi_digit: bool) -> str:
    """A file's reading as one line of text: the file, the verdict unless a plain digit, the digit (or number) and
    its confidence, then the top-k classes (or each digit of the number)."""
    from .readings import ranked
    from .verdicts import overall

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


@app.command()
@quiet_tensorflow
def serve(
    model: Annotated[Path, typer.Argument(help="A run directory, an ensemble folder, or a .keras file.")],
    host: Annotated[str, typer.Option(help="Address to listen on; 0.0.0.0 exposes it to the network.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.", callback=within(Interval(0, 65535)))] = 8000,
    max_upload_mb: Annotated[
        float,
        typer.Option("--max-upload-mb", help="Largest request body accepted.", callback=within(ABOVE_ZERO)),
    ] = 5.0,
    max_decode_mb: Annotated[
        float,
        typer.Option(
            "--max-decode-mb",
            callback=within(ABOVE_ZERO),
            help="Most memory one image may take once decoded, judged from its header before decoding (width x"
            " height x 1 byte for grey, 1-bit and palette, 2 for 16-bit, 4 for colour); larger ones get 413."
            " JPEGs decode reduced, so large photos fit.",
        ),
    ] = 64.0,
    access_log: Annotated[bool, typer.Option("--access-log", help="Log every request.")] = False,
) -> None:
    """Serve the model over HTTP: POST /predict, GET /model, GET /health, docs at /docs, a drawing page at /."""
    import uvicorn

    from .inference import load_predictor
    from .server import create_app
    from .utils import set_threads

    set_threads(1)  # one thread per op: for a server's small batches this halves the CPU per call
    application = create_app(load_predictor(model), int(max_upload_mb * 2**20), int(max_decode_mb * 2**20))
    console.print(f"serving {model} on http://{host}:{port}/ (docs at /docs); Ctrl+C stops", highlight=False)
    uvicorn.run(application, host=host, port=port, access_log=access_log, log_level="warning")


@app.command()
@quiet_tensorflow
def export(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by train.")],
    format: Annotated[str, typer.Option("--format", help="keras, savedmodel, onnx or tflite.")],
    out: Annotated[Path, typer.Option(help="File or folder to write (must not exist).")],
) -> None:
    """Export a run's model, then check the export gives the original's predictions on the whole test set."""
    from .api import load_run

    check = load_run(run_dir).export(format, out)
    console.print(f"wrote {check.path} ({check.format})", highlight=False)
    console.print(
        f"check on the {check.dataset} test set: {check.agree:,} of {check.n:,} predictions equal the original's,"
        f" largest probability difference {check.max_difference:.1e}",
        highlight=False,
    )


def command_words() -> list[list[str]]:
    """Every command, as the words that name it on the command line (`data info` is two): what a check of every
    command's `--help` walks."""
    words: list[list[str]] = []
    for name, command in typer.main.get_command(app).commands.items():  # type: ignore[attr-defined]
        subcommands = getattr(command, "commands", {})
        words += [[name, sub] for sub in subcommands] if subcommands else [[name]]
    return words


def main() -> None:
    """Entry point: a user's mistake becomes one line on stderr and exit code 2."""
    try:
        app()
    except MnistClassifierError as e:
        typer.echo(f"error: {e.for_command_line() if isinstance(e, SettingError) else e}", err=True)
        sys.exit(2)
