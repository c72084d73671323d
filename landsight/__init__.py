"""landsight: satellite and aerial imagery to land-use maps."""

__version__ = "0.1.0"

from landsight.errors import (
    CheckpointError,
    ConfigError,
    LabelError,
    LandsightError,
    OutputExistsError,
    RasterError,
)

__all__ = [
    "CheckpointError",
    "ConfigError",
    "LabelError",
    "LandsightError",
    "OutputExistsError",
    "RasterError",
    "__version__",
]
