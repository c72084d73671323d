"""One exception hierarchy. Messages name the offending value and the fix; the CLI exits 2 on any of them.

A message names a setting by its Python parameter name in backticks, never by a CLI flag: "pass `bands` with 3 band
numbers of this image in the model's order", "`chip_size` 512 is larger than the image"; an on/off setting as
"pass `restart=True`" (or `background=False`). The CLI writes each backticked name that is an option of the command
that ran as its flag ("--bands", "--restart", "--ignore-unlabelled"; see landsight.cli.advice); other names stay. A
backticked command line (`landsight cover --zoom Z`) names a command and may carry its flags.
"""

import importlib
import types


class LandsightError(Exception):
    """Root of every error landsight raises on purpose."""


class RasterError(LandsightError, OSError):
    """An image or mask raster is missing, unreadable, corrupt or does not fit the task."""


class LabelError(LandsightError, ValueError):
    """Vector labels are missing, empty, in an unusable CRS or carry unknown classes."""


class ConfigError(LandsightError, ValueError):
    """A config file or option value is invalid."""


class CheckpointError(LandsightError, ValueError):
    """A model file is not a landsight model or does not fit the input."""


class ReportError(LandsightError, ValueError):
    """A JSON report is unreadable, of another kind, or of a newer schema than this landsight reads."""


class TrainingError(LandsightError, ArithmeticError):
    """Training diverged: a loss or the weights became NaN or infinite."""


class OutputExistsError(LandsightError, FileExistsError):
    """An output exists and replacing it was not asked for (`overwrite`)."""


class OutputError(LandsightError, OSError):
    """An output cannot be written: full disk, read-only or forbidden folder, file-size limit, failed write."""


class UnsafePathError(LandsightError, ValueError):
    """A file name derived from input data would land outside its output folder."""


class MissingExtraError(LandsightError, ImportError):
    """An optional dependency group is not installed."""


def import_extra(module: str, install: str) -> types.ModuleType:
    """Import an optional dependency, or raise MissingExtraError saying `install` (how to get it)."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(install) from exc
