"""Video sources and the TAO reader: ordering, identical decoding, validation and bad input."""

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from effowt.data.miniowt import write_video
from effowt.data.sources import FrameFolderSource, VideoFileSource, natural_key, open_source
from effowt.data.tao import TaoDataset
from effowt.errors import DataError


def _frames(n: int, h: int = 24, w: int = 32) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n)]


def _tao(tmp_path: Path, frames: list[np.ndarray]) -> dict:
    for t, frame in enumerate(frames):
        (tmp_path / "frames" / "v").mkdir(parents=True, exist_ok=True)
        Image.fromarray(frame).save(tmp_path / "frames" / "v" / f"{t}.png")
    # images listed out of order on purpose; frame_index decides
    images = [{"id": 10 + t, "video_id": 7, "frame_index": t, "file_name": f"frames/v/{t}.png"}
              for t in reversed(range(len(frames)))]
    return {
        "videos": [{"id": 7, "name": "cam/v"}],
        "images": images,
        "annotations": [
            {"id": 1, "image_id": 10, "track_id": 3, "category_id": 4, "bbox": [1, 2, 5, 6]},
            {"id": 2, "image_id": 11, "track_id": 3, "category_id": 4, "bbox": [2, 2, 5, 6]},
            {"id": 3, "image_id": 11, "track_id": 8, "category_id": 2, "bbox": [0, 0, 3.5, 4]},
        ],
        "tracks": [{"id": 3, "category_id": 4, "video_id": 7}, {"id": 8, "category_id": 2, "video_id": 7}],
        "categories": [{"id": 4, "name": "a"}, {"id": 2, "name": "b"}],
    }


def test_video_file_and_frame_folder_give_identical_frames(tmp_path: Path) -> None:
    frames = _frames(12)
    write_video(tmp_path / "clip.mp4", frames)
    for t, frame in enumerate(frames):
        Image.fromarray(frame).save(tmp_path / f"frame{t}.png")
    (video,) = open_source(tmp_path / "clip.mp4")
    (folder,) = open_source(tmp_path)
    assert (video.name, video.video_id, len(video), len(folder)) == ("clip", None, 12, 12)
    decoded = list(video)
    assert [f.index for f in decoded] == list(range(12))
    for a, b, ref in zip(decoded, folder, frames):
        assert a.image.dtype == np.uint8 and a.image.shape == (24, 32, 3)
        np.testing.assert_array_equal(a.image, ref)
        np.testing.assert_array_equal(b.image, ref)
    assert len(list(video)) == 12  # a second pass re-opens the file


def test_folder_sorted_naturally_and_folder_of_folders(tmp_path: Path) -> None:
    assert sorted(["frame10.jpg", "frame2.jpg", "frame1.jpg"], key=natural_key) == [
        "frame1.jpg", "frame2.jpg", "frame10.jpg"]
    frames = _frames(3)
    for sub in ("b10", "b2"):
        for name, frame in zip(("f10.png", "f2.png", "f1.png"), frames):
            (tmp_path / sub).mkdir(exist_ok=True)
            Image.fromarray(frame).save(tmp_path / sub / name)
    sources = open_source(tmp_path)
    assert [s.name for s in sources] == ["b2", "b10"]
    assert [p.name for p in sources[0].files] == ["f1.png", "f2.png", "f10.png"]
    np.testing.assert_array_equal(next(iter(sources[0])).image, frames[2])


def test_bad_frame_in_folder_warns_and_is_skipped(tmp_path: Path) -> None:
    frames = _frames(3)
    for t, frame in enumerate(frames):
        Image.fromarray(frame).save(tmp_path / f"{t}.png")
    (tmp_path / "1.png").write_bytes(b"not a png")
    with pytest.warns(UserWarning, match="1.png"):
        got = list(FrameFolderSource(tmp_path))
    assert [f.index for f in got] == [0, 2]
    np.testing.assert_array_equal(got[1].image, frames[2])


def test_tao_json_source_in_frame_order_with_image_ids(tmp_path: Path) -> None:
    frames = _frames(3)
    data = _tao(tmp_path, frames)
    (tmp_path / "split.json").write_text(json.dumps(data))
    (source,) = open_source(tmp_path / "split.json")
    assert (source.name, source.video_id, len(source)) == ("cam/v", 7, 3)
    got = list(source)
    assert [(f.index, f.image_id) for f in got] == [(0, 10), (1, 11), (2, 12)]
    np.testing.assert_array_equal(got[2].image, frames[2])

    dataset = TaoDataset(tmp_path / "split.json")
    (video,) = dataset
    assert video.frames[1].boxes.tolist() == [[2, 2, 7, 8], [0, 0, 3.5, 4]]
    assert video.frames[1].track_ids.tolist() == [3, 8]
    assert video.frames[1].category_ids.tolist() == [4, 2]
    assert video.frames[2].boxes.shape == (0, 4)
    assert {t: sorted(v) for t, v in video.tracks().items()} == {3: [0, 1], 8: [1]}

    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "split.json").write_text(json.dumps(data))
    with pytest.raises(DataError, match=r"3 frame file\(s\) not found.*frames_root"):
        open_source(tmp_path / "elsewhere" / "split.json")
    assert len(open_source(tmp_path / "elsewhere" / "split.json", frames_root=tmp_path)) == 1


@pytest.mark.parametrize("breakage, message", [
    (lambda d: d.pop("tracks"), "missing key.*tracks"),
    (lambda d: d.pop("videos"), "missing key.*videos"),
    (lambda d: d["annotations"][1]["bbox"].__setitem__(2, -5),
     r"annotations\[1\] \(id 2\).*width and height"),
    (lambda d: d["annotations"][2]["bbox"].__setitem__(3, 0), r"annotations\[2\] \(id 3\).*width and height"),
    (lambda d: d["images"][0].__setitem__("video_id", 99), r"images\[0\] \(id 12\).*unknown video_id 99"),
    (lambda d: d["annotations"][0].__setitem__("image_id", 5), "unknown image_id 5"),
    (lambda d: d["images"][1].__setitem__("frame_index", 2), "repeated frame_index 2"),
])
def test_tao_validation_names_file_and_entry(tmp_path: Path, breakage, message: str) -> None:
    data = _tao(tmp_path, _frames(3))
    breakage(data)
    (tmp_path / "broken.json").write_text(json.dumps(data))
    with pytest.raises(DataError, match="broken.json: .*" + message):
        TaoDataset(tmp_path / "broken.json")


def test_tao_without_ground_truth_is_a_trackable_split(tmp_path: Path) -> None:
    data = _tao(tmp_path, _frames(2))
    for key in ("annotations", "tracks", "categories"):
        data.pop(key)
    (tmp_path / "test.json").write_text(json.dumps(data))
    (source,) = open_source(tmp_path / "test.json")
    assert len(list(source)) == 2


def test_missing_empty_and_corrupt_inputs_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="nothing.mp4: no such file"):
        open_source(tmp_path / "nothing.mp4")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty: folder holds no image"):
        open_source(tmp_path / "empty")
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(DataError, match="empty.mp4: cannot read video"):
        open_source(tmp_path / "empty.mp4")
    (tmp_path / "junk.mkv").write_bytes(np.random.default_rng(0).bytes(4000))
    with pytest.raises(DataError, match="junk.mkv"):
        open_source(tmp_path / "junk.mkv")
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(DataError, match="notes.txt: unsupported input"):
        open_source(tmp_path / "notes.txt")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(DataError, match="bad.json: not valid json"):
        open_source(tmp_path / "bad.json")


def test_truncated_video_is_a_data_error(tmp_path: Path) -> None:
    write_video(tmp_path / "full.mp4", _frames(20))
    data = (tmp_path / "full.mp4").read_bytes()
    # our writer puts the index last: a cut file has no readable header
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="cut.mp4: cannot read video"):
        VideoFileSource(tmp_path / "cut.mp4")


def _faststart_mp4(path: Path, frames: list[np.ndarray]) -> bytes:
    """An mp4 with its index first (as streaming services write them); returns its bytes."""
    import av

    with av.open(str(path), "w", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264rgb", rate=10)
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "rgb24"
        stream.options = {"crf": "0"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path.read_bytes()


def test_video_cut_after_its_header_fails_when_reached(tmp_path: Path) -> None:
    data = _faststart_mp4(tmp_path / "fast.mp4", _frames(20))
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) * 2 // 3])
    (source,) = open_source(tmp_path / "cut.mp4")
    assert len(source) == 20
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(DataError, match=r"cut.mp4: truncated.*of the 20 frames"):
            list(source)


def test_bad_frames_inside_a_video_warn_and_are_skipped(tmp_path: Path) -> None:
    data = bytearray(_faststart_mp4(tmp_path / "fast.mp4", _frames(20)))
    middle, span = len(data) // 2, len(data) // 10  # about two frames' data zeroed
    data[middle:middle + span] = bytes(span)
    (tmp_path / "damaged.mp4").write_bytes(bytes(data))
    (source,) = open_source(tmp_path / "damaged.mp4")
    with pytest.warns(UserWarning, match="damaged.mp4: skipping an undecodable packet"):
        got = list(source)
    assert 0 < len(got) < 20
    assert [f.index for f in got] == list(range(len(got)))
