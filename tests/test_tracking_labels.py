"""Open-vocabulary track labels: one label per track from scores averaged over its
life, the CLI's --texts / --vocab, label accuracy in `effowt eval`, clear errors."""

import json

import numpy as np
import pytest
import torch

from effowt.cli import main
from effowt.evaluation.label_accuracy import label_accuracy
from effowt.tracking.association import Track
from effowt.tracking.labels import TrackLabeler, parse_texts, read_vocabulary

RED, BLUE = (255, 0, 0), (0, 0, 255)


class ColourVLM(torch.nn.Module):
    """encode_image: the crop's mean (R, B); encode_text: token 0 = 'red' -> (1, 0), else (0, 1)."""

    def __init__(self):
        super().__init__()
        self.visual = type("V", (), {"image_mean": (0.0, 0.0, 0.0), "image_std": (1.0, 1.0, 1.0)})()

    def encode_image(self, x):
        return torch.stack([x[:, 0].mean((1, 2)), x[:, 2].mean((1, 2))], dim=1)

    def encode_text(self, tokens):
        return torch.stack([tokens == 0, tokens != 0], dim=1).float()


def tokenizer(texts):
    return torch.tensor([0 if "red" in t else 1 for t in texts])


def frame_with(colour):
    frame = np.zeros((64, 64, 3), np.uint8)
    frame[16:48, 16:48] = colour
    return frame


def test_one_label_per_track_from_scores_averaged_over_its_life():
    labeler = TrackLabeler(ColourVLM(), tokenizer, ["a red thing", "a blue thing"])
    box = np.float32([16, 16, 48, 48])
    seen = []
    for colour in (RED, RED, BLUE):
        track = Track(7, box, 0.9)
        labeler.update(frame_with(colour), [track])
        seen.append(track.label)
    assert seen == ["a red thing"] * 3  # the blue frame does not outvote two red ones
    index, score = labeler.final_labels()[7]
    assert index == 0 and 0 < score < 1
    labeler.reset()
    assert labeler.final_labels() == {}


def test_vocabulary_inputs(tmp_path):
    assert parse_texts(" a red car;a dog ; ") == ["a red car", "a dog"]
    (tmp_path / "v.txt").write_text("a red car\n\n  a dog \n")
    assert read_vocabulary(tmp_path / "v.txt") == ["a red car", "a dog"]


def test_label_accuracy_counts_matched_boxes_per_subset():
    gt = {"categories": [{"id": 4, "name": "red star", "caption": "a red star"},   # TAO-OW known
                         {"id": 2, "name": "blue ring", "caption": "a blue ring"}],  # unknown
          "annotations": [{"image_id": 1, "bbox": [0, 0, 10, 10], "category_id": 4},
                          {"image_id": 1, "bbox": [20, 20, 10, 10], "category_id": 2},
                          {"image_id": 2, "bbox": [0, 0, 10, 10], "category_id": 2}]}
    pred = [{"image_id": 1, "bbox": [0, 0, 10, 10], "label": "a red star"},
            {"image_id": 1, "bbox": [21, 21, 10, 10], "label": "a red star"},
            {"image_id": 2, "bbox": [0, 0, 10, 10], "label": "blue ring"},
            {"image_id": 2, "bbox": [40, 40, 5, 5], "label": "a blue ring"}]  # unmatched: not counted
    assert label_accuracy(gt, pred) == {"known": 1.0, "unknown": 0.5}
    assert label_accuracy(gt, [{k: v for k, v in p.items() if k != "label"} for p in pred]) is None


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from effowt.data.miniowt import generate_miniowt

    root = tmp_path_factory.mktemp("labels")
    paths = generate_miniowt(root / "miniowt", seed=5, size=96, train_images=0, pretrain_images=0,
                             val_videos=1, frames=3, progress=False)
    gt = json.loads(paths.val_json.read_text())
    (root / "captions.txt").write_text("\n".join(c["caption"] for c in gt["categories"]) + "\n")
    return {"val_json": paths.val_json, "captions": root / "captions.txt", "gt": gt}


def test_track_with_vocab_labels_every_record_then_eval(world, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["track", "--weights", "effowt-mini", "--source", str(world["val_json"]),
                 "--vocab", str(world["captions"]),
                 "--out", str(out), "--render"]) == 0
    results = json.loads((out / "results.json").read_text())
    captions = {c["caption"] for c in world["gt"]["categories"]}
    assert results and all(r["label"] in captions for r in results)
    per_track = {}
    for r in results:
        per_track.setdefault(r["track_id"], set()).add((r["label"], r["label_score"]))
    assert all(len(v) == 1 for v in per_track.values())  # one label per track
    index = {c: i + 1 for i, c in enumerate(world["captions"].read_text().split("\n")[:-1])}
    mot = next((out / "mot").glob("*.txt")).read_text().splitlines()
    by_track = {r["track_id"]: r["label"] for r in results}
    assert [int(line.split(",")[7]) for line in mot] == [index[by_track[int(line.split(",")[1])]] for line in mot]
    assert main(["eval", "--gt", str(world["val_json"]), "--pred", str(out / "results.json"),
                 "--out", str(out)]) == 0
    assert set(json.loads((out / "metrics.json").read_text())["label_accuracy"]) == {"known", "unknown"}
    assert "label accuracy" in capsys.readouterr().out


def test_vocabulary_errors_are_one_line(world, tmp_path, capsys):
    from effowt.config import load_config
    from effowt.runs import build_seeded_model, save_run

    (tmp_path / "empty.txt").write_text("\n \n")
    cfg = load_config("mini")
    run = save_run(tmp_path / "run", build_seeded_model(cfg), cfg)  # timm backbone: no text tower
    for args, message in ((["--vocab", str(tmp_path / "empty.txt")], "empty.txt: vocabulary file is empty"),
                          (["--weights", str(run), "--texts", "a red car"], "has no text tower"),
                          (["--texts", " ; "], "names no text")):
        capsys.readouterr()
        assert main(["track", "--weights", "effowt-mini", "--source", str(world["val_json"]),
                     "--out", str(tmp_path / "o"), *args]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err


def test_a_runs_own_vocabulary_labels_by_default_and_no_labels_turns_it_off(world, tmp_path):
    import shutil

    from effowt.runs import shipped_run_dir
    from effowt.tracking.labels import VOCABULARY_FILE

    run = tmp_path / "run"
    shutil.copytree(shipped_run_dir("effowt-mini"), run)
    vocabulary = world["captions"].read_text().split("\n")[:-1][:3]
    (run / VOCABULARY_FILE).write_text("\n".join(vocabulary) + "\n")
    source = ["--weights", str(run), "--source", str(world["val_json"])]
    assert main(["track", *source, "--out", str(tmp_path / "labelled")]) == 0
    labelled = json.loads((tmp_path / "labelled" / "results.json").read_text())
    assert labelled and {r["label"] for r in labelled} <= set(vocabulary)
    assert main(["track", *source, "--out", str(tmp_path / "plain"), "--no-labels"]) == 0
    plain = json.loads((tmp_path / "plain" / "results.json").read_text())
    assert plain and not any("label" in r for r in plain)
    assert [r["bbox"] for r in plain] == [r["bbox"] for r in labelled]  # labels never change the boxes
