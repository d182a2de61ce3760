"""MiniOWT: categories, determinism, TAO round trip, TrackEval TAO_OW compatibility, the CLI."""

import contextlib
import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pytest

from effowt.cli import main
from effowt.data.miniowt import (
    CATEGORIES,
    CATEGORY_BY_ID,
    KNOWN_IDS,
    UNKNOWN_IDS,
    MiniOWTPaths,
    generate_miniowt,
    simulate_video,
    split_rng,
)
from effowt.data.sources import load_rgb, open_source
from effowt.data.tao import TaoDataset

SMALL = dict(seed=3, size=64, train_images=3, pretrain_images=2, val_videos=2, frames=6)


def _hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> MiniOWTPaths:
    return generate_miniowt(tmp_path_factory.mktemp("miniowt") / "w", progress=False, **SMALL)


def test_categories_use_trackeval_tao_ow_id_sets() -> None:
    from trackeval.datasets import TAO_OW

    ds = TAO_OW.__new__(TAO_OW)
    ds._split_known_unknown_distractor()
    assert len(CATEGORIES) >= 40
    assert len({c.id for c in CATEGORIES}) == len(CATEGORIES)
    assert len({(c.shape, c.pattern) for c in CATEGORIES}) == len(CATEGORIES)
    assert {c.id for c in CATEGORIES if c.known} == set(KNOWN_IDS) <= ds.knowns
    assert {c.id for c in CATEGORIES if not c.known} == set(UNKNOWN_IDS) <= ds.unknowns
    assert not {c.id for c in CATEGORIES} & ds.distractors
    assert 1 not in CATEGORY_BY_ID
    assert len(KNOWN_IDS) == len(UNKNOWN_IDS)
    assert all(c.caption.endswith(c.name) and c.colour in c.caption for c in CATEGORIES)


def test_same_seed_identical_files_other_seed_differs(world: MiniOWTPaths, tmp_path: Path) -> None:
    root = world.val_json.parent.parent
    again = generate_miniowt(tmp_path / "again", progress=False, **SMALL)
    assert _hashes(root) == _hashes(again.val_json.parent.parent)
    other = generate_miniowt(tmp_path / "other", progress=False, **{**SMALL, "seed": 4})
    other_hashes = _hashes(other.val_json.parent.parent)
    assert other_hashes.keys() == _hashes(root).keys()
    differing = [k for k, v in other_hashes.items() if v != _hashes(root)[k]]
    assert len(differing) > len(other_hashes) // 2


def test_coco_splits_annotate_known_only_in_train(world: MiniOWTPaths) -> None:
    train = json.loads(world.train_json.read_text())
    pretrain = json.loads(world.pretrain_json.read_text())
    assert len(train["images"]) == SMALL["train_images"]
    assert train["annotations"] and all(CATEGORY_BY_ID[a["category_id"]].known for a in train["annotations"])
    assert len(pretrain["categories"]) == len(CATEGORIES)
    assert pretrain["categories"][0]["caption"]
    for a in train["annotations"] + pretrain["annotations"]:
        x, y, w, h = a["bbox"]
        assert w >= 2 and h >= 2 and x >= 0 and y >= 0 and x + w <= 64 and y + h <= 64
    for img in train["images"]:
        assert load_rgb(world.train_images / img["file_name"]).shape == (64, 64, 3)


def test_tao_reader_round_trips_generated_tracks(world: MiniOWTPaths) -> None:
    dataset = TaoDataset(world.val_json)
    assert [v.name for v in dataset] == ["video_000", "video_001"]
    track_base = 0
    for v, video in enumerate(dataset):
        gt = simulate_video(split_rng(SMALL["seed"], "val", v), SMALL["size"], SMALL["frames"])
        expected: dict[int, dict[int, list[float]]] = {}
        for t, boxes in enumerate(gt.boxes):
            for key, box in boxes.items():
                expected.setdefault(track_base + key + 1, {})[t] = box
        read = video.tracks()
        assert read.keys() == expected.keys()
        for tid, per_frame in expected.items():
            assert {t: b.tolist() for t, b in read[tid].items()} == per_frame
            assert dataset.tracks[tid]["category_id"] == gt.categories[tid - track_base - 1].id
        assert [f.frame_index for f in video.frames] == list(range(SMALL["frames"]))
        for frame, image in zip(video.frames, gt.frames):
            np.testing.assert_array_equal(load_rgb(frame.path), image)
        track_base += len(gt.categories)


def test_val_video_file_decodes_to_the_png_frames(world: MiniOWTPaths) -> None:
    (video,) = open_source(world.val_videos / "video_001.mp4")
    (folder,) = open_source(world.val_frames / "video_001")
    from_file = [f.image for f in video]
    from_folder = [f.image for f in folder]
    assert len(video) == len(from_file) == len(from_folder) == SMALL["frames"]
    for a, b in zip(from_file, from_folder):
        np.testing.assert_array_equal(a, b)


def _trackeval_owta(world: MiniOWTPaths, tmp_path: Path, subset: str) -> tuple[float, int]:
    import trackeval

    gt = json.loads(world.val_json.read_text())
    (tmp_path / "gt").mkdir()
    (tmp_path / "gt" / "gt.json").write_text(json.dumps(gt))
    perfect = [
        {"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 1.0,
         "track_id": a["track_id"], "video_id": a["video_id"]}
        for a in gt["annotations"]
    ]
    (tmp_path / "trk" / "perfect" / "data").mkdir(parents=True)
    (tmp_path / "trk" / "perfect" / "data" / "r.json").write_text(json.dumps(perfect))
    eval_cfg = {"USE_PARALLEL": False, "LOG_ON_ERROR": None, "PRINT_RESULTS": False,
                "PRINT_CONFIG": False, "TIME_PROGRESS": False, "OUTPUT_SUMMARY": False,
                "OUTPUT_DETAILED": False, "PLOT_CURVES": False}
    data_cfg = {"GT_FOLDER": str(tmp_path / "gt"), "TRACKERS_FOLDER": str(tmp_path / "trk"),
                "OUTPUT_FOLDER": str(tmp_path / "out"), "PRINT_CONFIG": False, "SUBSET": subset}
    with contextlib.redirect_stdout(io.StringIO()):
        dataset = trackeval.datasets.TAO_OW(data_cfg)
        results, _ = trackeval.Evaluator(eval_cfg).evaluate([dataset], [trackeval.metrics.HOTA()])
    combined = results["TAO_OW"]["perfect"]["COMBINED_SEQ"]["object"]
    return float(np.mean(combined["HOTA"]["OWTA"])), int(combined["Count"]["GT_Dets"])


@pytest.mark.parametrize("subset", ["known", "unknown"])
def test_val_split_scores_perfectly_in_trackeval_tao_ow(
    world: MiniOWTPaths, tmp_path: Path, subset: str
) -> None:
    owta, gt_dets = _trackeval_owta(world, tmp_path, subset)
    assert gt_dets > 0
    assert owta == pytest.approx(1.0)


def test_synth_cli_writes_world_and_reports_time(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["synth", "--out", str(tmp_path / "w"), "--size", "48", "--train-images", "2",
               "--pretrain-images", "1", "--val-videos", "1", "--frames", "2"])
    assert rc == 0
    assert "generated 5 images in" in capsys.readouterr().out
    assert len(list((tmp_path / "w" / "val" / "frames" / "video_000").glob("*.png"))) == 2
    assert main(["synth", "--out", str(tmp_path / "x"), "--size", "8"]) == 2
    assert "--size 8: must be in [32, 2048]" in capsys.readouterr().err
