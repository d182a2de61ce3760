"""EffOWT assembly, transfer modes and parameter accounting."""

from effowt.models.effowt import EffOWT
from effowt.models.necks import SimpleFeaturePyramid
from effowt.models.params import count_parameters, parameter_report
from effowt.models.transfer import build_model

__all__ = ["EffOWT", "SimpleFeaturePyramid", "build_model", "count_parameters", "parameter_report"]
