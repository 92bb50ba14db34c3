"""The documentation's generated parts: the checked-in CLI reference matches the Typer app it documents."""

from pathlib import Path

from typer.cli import app as typer_cli
from typer.testing import CliRunner

CLI_REFERENCE = Path(__file__).parent.parent / "docs" / "cli.md"
REGENERATE = ".venv/bin/typer mnist_classifier.cli utils docs --name mnist-classifier --output docs/cli.md"


def test_cli_reference_matches_the_code(tmp_path: Path) -> None:
    fresh = tmp_path / "cli.md"
    result = CliRunner().invoke(typer_cli, [*REGENERATE.split()[1:-1], str(fresh)])
    assert result.exit_code == 0, result.output
    assert fresh.read_text() == CLI_REFERENCE.read_text(), f"docs/cli.md is out of date with the CLI; run: {REGENERATE}"
