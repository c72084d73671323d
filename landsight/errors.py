"""One exception hierarchy. Messages name the offending value and the fix; the CLI exits 2 on any of them."""

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
    """An output exists and --overwrite was not given."""


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
