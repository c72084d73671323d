"""Moved to `landsight.imagery.normalize`; these names stay importable here only for classify/train.py."""

from landsight.imagery.normalize import NORM_MODES as NORM_MODES
from landsight.imagery.normalize import InputStats as InputStats
from landsight.imagery.normalize import fit_normalization as fit_normalization
from landsight.imagery.normalize import normalize as normalize
