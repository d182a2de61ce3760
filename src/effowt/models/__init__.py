"""EffOWT assembly, its input transform, transfer modes and parameter accounting."""

from effowt.models.effowt import EffOWT
from effowt.models.necks import SimpleFeaturePyramid
from effowt.models.params import count_parameters, parameter_report
from effowt.models.transfer import build_model
from effowt.models.transform import ImageTransform

__all__ = ["EffOWT", "ImageTransform", "SimpleFeaturePyramid", "build_model", "count_parameters", "parameter_report"]
