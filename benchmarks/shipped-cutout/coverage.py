"""How many hand-marked boxes a tracking run's boxes cover, on real footage.

    python benchmarks/shipped-cutout/coverage.py MARKS.json OUT.json LABEL=MOT.txt [LABEL=MOT.txt ...]

MARKS.json: ``{"frames": {"<1-based frame>": [[x1, y1, x2, y2], ...]}, ...}``, boxes marked
by hand (kept out of the repository: the check is that someone looked). MOT.txt: an
``effowt track`` run's ``mot/<stem>.txt`` on the same clip. For every marked box the best
IoU with any box of the run in that frame; OUT.json records per run the share of marked
boxes covered at IoU >= 0.5 and >= 0.3 and the boxes the run reported in those frames.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from torchvision.ops import box_iou

from effowt.data.detections import read_mot_detections
from effowt.fileio import atomic_write_text


def frame_boxes(mot: Path) -> dict[int, torch.Tensor]:
    """A run's MOT file (``frame, id, left, top, width, height, score, ...``) as xyxy boxes
    per 1-based frame, read by the project's MOTChallenge reader."""
    names = sorted(p.stem for p in mot.parent.glob("*.txt"))
    video = read_mot_detections(mot.parent, names)[names.index(mot.stem)]
    return {index + 1: torch.from_numpy(boxes) for index, (boxes, _, _) in video.items()}


def coverage(marks: dict[str, list[list[float]]], predicted: dict[int, torch.Tensor]) -> dict[str, float | int]:
    best = []
    reported = 0
    for frame, marked in marks.items():
        boxes = predicted.get(int(frame), torch.zeros(0, 4))
        reported += len(boxes)
        ious = box_iou(torch.tensor(marked, dtype=torch.float32), boxes) if len(boxes) else torch.zeros(len(marked), 1)
        best += ious.max(dim=1).values.tolist()
    return {"marked": len(best), "covered_iou50": sum(b >= 0.5 for b in best) / len(best),
            "covered_iou30": sum(b >= 0.3 for b in best) / len(best), "reported_boxes": reported,
            "best_iou_mean": sum(best) / len(best)}


def main(marks_file: str, out_file: str, *runs: str) -> None:
    marks = json.loads(Path(marks_file).read_text())
    report = {"frames": sorted(marks["frames"], key=int), "source": marks.get("source"), "runs": {}}
    for item in runs:
        label, _, mot = item.partition("=")
        report["runs"][label] = coverage(marks["frames"], frame_boxes(Path(mot)))
        print(label, report["runs"][label])
    atomic_write_text(Path(out_file), json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:])
