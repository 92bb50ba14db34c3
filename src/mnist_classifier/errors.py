"""The project's exceptions: each carries one line that tells the user what is wrong and what to do."""


class MnistClassifierError(Exception):
    """Base of every error the CLI reports as one line with exit code 2."""


class DataError(MnistClassifierError):
    """A dataset file is missing, corrupt or does not match its checksum."""


class ConfigError(MnistClassifierError):
    """An option or config file value is invalid."""


class SettingError(ConfigError):
    """A setting's value is invalid: says `NAME must ...` from Python and `--NAME must ...` on the command line."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"{name} {problem}")
        self.name, self.problem = name, problem

    def for_command_line(self) -> str:
        return f"--{self.name.replace('_', '-')} {self.problem}"


class RunError(MnistClassifierError):
    """A run directory or model file is missing or unreadable."""


class ImageError(MnistClassifierError):
    """A user's image cannot be read or holds no digit."""


class TuningError(MnistClassifierError):
    """A study's storage cannot be reached, or a study cannot be continued with the given settings."""


class NoDigitError(ImageError):
    """The image was read but holds no ink that could be a digit (blank, too faint, specks): a reading of "not a
    digit" with this reason, not a failure."""


class NotAnImageError(ImageError):
    """The bytes are not in any image format Pillow reads."""


class ImageTooLargeError(ImageError):
    """The image (or upload) is over a size limit, e.g. a decompression bomb."""


class ExportError(MnistClassifierError):
    """An exported model cannot be written or does not give the original's predictions."""


class WriteError(MnistClassifierError):
    """A file cannot be written: the disk is full, the folder read-only or not ours."""


def first_line(error: BaseException) -> str:
    """The first line of a dependency's error (at most 200 characters), to quote inside one of ours."""
    return (str(error).splitlines() or [type(error).__name__])[0][:200]


class TrackingError(MnistClassifierError):
    """An MLflow tracking server asked for cannot be reached or used (said before training starts)."""
