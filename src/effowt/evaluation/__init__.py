"""Evaluation: TAO-OW OWTA / D.Re / A.Acc through the official TrackEval code."""

from effowt.evaluation.owta import evaluate_owta, owta_report

__all__ = ["evaluate_owta", "owta_report"]
