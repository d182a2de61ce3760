"""Live input on loopback only: an HTTP server on 127.0.0.1 and pipes from local
processes, tracked to the same results.json as the file; a server that stalls
mid-stream, a refused address, SIGINT on a running stream, --realtime drops."""

import functools
import http.server
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import pytest

from conftest import open_threshold_run
from effowt.cli import main
from effowt.data.sources import StreamSource, is_stream, source_id, stream_name
from effowt.errors import DataError

WRITER = Path(__file__).with_name("stream_writer.py")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from effowt.data.miniowt import generate_miniowt

    root = tmp_path_factory.mktemp("streams")
    paths = generate_miniowt(root / "miniowt", size=64, train_images=0, pretrain_images=0,
                             val_videos=1, frames=6, progress=False)
    run = open_threshold_run(root)
    (clip,) = sorted(paths.val_videos.glob("*.mp4"))
    frames = sorted((paths.val_frames / clip.stem).glob("*.png"))
    out = root / "from-file"
    assert main(["track", "--weights", str(run), "--source", str(clip), "--out", str(out)]) == 0
    return {"run": run, "clip": clip, "frames": frames, "root": root,
            "results": json.loads((out / "results.json").read_text())}


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Files of the served folder; ``/stall/NAME`` and ``/cut/NAME`` send the first 60 %
    of NAME, then ``stall`` sends nothing until the test ends (at most 20 s), like a
    camera that stopped sending, and ``cut`` closes the connection; ``/trickle/NAME``
    sends all of NAME in 10 parts 0.4 s apart, like a slow but live link."""

    release = threading.Event()

    def do_GET(self) -> None:
        mode, _, name = self.path.lstrip("/").partition("/")
        if mode not in ("stall", "cut", "trickle"):
            return super().do_GET()
        data = (Path(self.directory) / name).read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "video/mp2t")
        if mode == "trickle":
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if mode == "trickle":
            for part in range(10):
                self.wfile.write(data[len(data) * part // 10: len(data) * (part + 1) // 10])
                self.wfile.flush()
                time.sleep(0.4)
            self.close_connection = True
            return
        self.wfile.write(data[: len(data) * 6 // 10])
        self.wfile.flush()
        if mode == "stall":
            self.release.wait(20)
        self.close_connection = True

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server(world):
    _Handler.release.clear()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                            functools.partial(_Handler, directory=str(world["root"])))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        _Handler.release.set()
        httpd.shutdown()
        httpd.server_close()


def _writer(files, fmt="mpegts", fps=10, pace=False, repeat=1, stdout=subprocess.PIPE) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(WRITER), fmt, str(fps), "1" if pace else "0", str(repeat),
                             *map(str, files)], stdout=stdout, stderr=subprocess.DEVNULL)


def _track(world, source, out, *extra) -> int:
    return main(["track", "--weights", str(world["run"]), "--source", source, "--out", str(out), *extra])


def _results(out: Path) -> list:
    return json.loads((out / "results.json").read_text())


def test_stream_names_and_what_a_run_records():
    assert all(is_stream(s) for s in ("-", "rtsp://cam/live", "RTMP://h/app/key", "https://h/a.m3u8",
                                      "/dev/video0", "v4l2:/dev/video1", "lavfi:testsrc"))
    assert not any(is_stream(s) for s in ("clip.mp4", "/data/video0", "file:///x.mp4", "c:/v.mp4"))
    assert [stream_name(s) for s in ("-", "rtsp://user@cam:554/live?x=1", "http://127.0.0.1:8/clip.mp4",
                                     "rtsp://cam", "/dev/video2")] == ["stdin", "live", "clip", "cam", "video2"]
    assert source_id("rtsp://cam/live") == "rtsp://cam/live" and source_id("-") == "-"


def test_http_stream_gives_the_same_results_as_the_file(world, server, tmp_path, capsys):
    url = f"{server}/miniowt/val/videos/{world['clip'].name}"
    assert _track(world, url, tmp_path / "out", "--render", "--report") == 0
    assert _results(tmp_path / "out") == world["results"] and world["results"]
    videos = json.loads((tmp_path / "out" / "videos.json").read_text())
    assert [(v["name"], v["frames"], v["error"]) for v in videos] == [(world["clip"].stem, 6, None)]
    assert sorted(p.suffix for p in (tmp_path / "out" / "render").iterdir()) == [".mp4", ".png"]
    page = (tmp_path / "out" / "report.html").read_text()
    assert world["clip"].stem in page  # the results page shows the stream's video
    with av.open(str(next((tmp_path / "out" / "render").glob("*.mp4")))) as rendered:
        assert sum(1 for _ in rendered.decode(video=0)) == 6


def _stdin_from(monkeypatch, process: subprocess.Popen) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(process.stdout))


@pytest.mark.parametrize("fmt", ["mpegts", "matroska"])
def test_pipe_from_an_encoder_process_gives_the_same_results(world, tmp_path, monkeypatch, fmt):
    writer = _writer(world["frames"], fmt=fmt)
    try:
        _stdin_from(monkeypatch, writer)
        assert _track(world, "-", tmp_path / "out") == 0
    finally:
        writer.kill()
        writer.wait(10)
    assert _results(tmp_path / "out") == world["results"]
    assert json.loads((tmp_path / "out" / "partial" / "settings.json").read_text())["source"] == "-"


def test_cat_of_an_mp4_gives_the_same_results(world, tmp_path, monkeypatch, caplog):
    cat = subprocess.Popen(["cat", str(world["clip"])], stdout=subprocess.PIPE)
    try:
        _stdin_from(monkeypatch, cat)
        assert _track(world, "-", tmp_path / "out") == 0
    finally:
        cat.kill()
        cat.wait(10)
    assert _results(tmp_path / "out") == world["results"]
    assert "index at the end" in caplog.text  # read whole first, and said so


def _long_stream(world) -> Path:
    """The clip's frames 5 times over as MPEG-TS (30 frames, 3 s at 10 fps)."""
    long = world["root"] / "long.ts"
    if not long.exists():
        with long.open("wb") as f:
            subprocess.run([sys.executable, str(WRITER), "mpegts", "10", "0", "5", *map(str, world["frames"])],
                           stdout=f, stderr=subprocess.DEVNULL, check=True, timeout=60)
    return long


@pytest.mark.parametrize("mode, message", [("stall", "stream stalled: no data for 1 s"),
                                           ("cut", "stream broke off after")])
def test_server_that_stops_mid_stream_keeps_what_was_tracked(world, server, tmp_path, capsys, mode, message):
    url = f"{server}/{mode}/{_long_stream(world).name}"
    start = time.monotonic()
    assert _track(world, url, tmp_path / "out", "--stream-timeout", "1") == 1
    assert time.monotonic() - start < 30
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(errors) == 1 and errors[0].startswith(f"effowt track: error: {url}: {message}")
    videos = json.loads((tmp_path / "out" / "videos.json").read_text())
    assert 0 < videos[0]["frames"] < 30
    tracked = {r["image_id"] for r in _results(tmp_path / "out")}
    assert tracked == {1_000_000 + i + 1 for i in range(videos[0]["frames"])}


def test_a_slow_stream_that_keeps_sending_is_not_stalled(world, server, tmp_path):
    # data arrives for 4 s, 0.4 s apart: FFmpeg's probe (about 2.8 s here) outlasts
    # --stream-timeout 2, but no read waits that long, so every frame is tracked
    url = f"{server}/trickle/{_long_stream(world).name}"
    assert _track(world, url, tmp_path / "out", "--stream-timeout", "2") == 0
    videos = json.loads((tmp_path / "out" / "videos.json").read_text())
    assert [(v["frames"], v["error"]) for v in videos] == [(30, None)]


def test_refused_address_is_one_error_line_quickly(world, tmp_path, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends: nothing listens there
    url = f"http://127.0.0.1:{port}/clip.mp4"
    start = time.monotonic()
    assert _track(world, url, tmp_path / "out") == 2
    assert time.monotonic() - start < 10
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"effowt track: error: {url}: cannot open stream")
    assert not (tmp_path / "out").exists()


def test_stream_options_are_for_streams_only(world, tmp_path, capsys):
    assert _track(world, str(world["clip"]), tmp_path / "out", "--max-frames", "2") == 2
    assert "--max-frames applies to streams only" in capsys.readouterr().err
    assert _track(world, "http://127.0.0.1:9/x.ts", tmp_path / "out", "--resume") == 2
    assert "a stream cannot be resumed" in capsys.readouterr().err


def test_max_frames_duration_and_realtime_drops():
    source = "lavfi:testsrc=size=32x24:rate=50"  # an endless local stream, FFmpeg's test pattern
    before = signal.getsignal(signal.SIGINT)
    with StreamSource(source, max_frames=4) as stream:
        frames = iter(stream)
        next(frames)
        assert signal.getsignal(signal.SIGINT) is not before  # Ctrl-C ends the stream while it runs
        assert [f.index for f in frames] == [1, 2, 3]
        assert signal.getsignal(signal.SIGINT) is before
        assert (stream.stopped_by, stream.dropped, stream.fps) == ("--max-frames", 0, 50.0)
        with pytest.raises(DataError, match="read once"):
            list(stream)
    with StreamSource(source, realtime=True, max_frames=4) as stream:
        kept = [f.index for f in stream if not time.sleep(0.1)]  # 5 stream frames per tracked one
    assert len(kept) == 4 and all(b - a > 1 for a, b in zip(kept, kept[1:]))
    assert stream.dropped >= kept[-1] - 3 - 1
    start = time.monotonic()
    with StreamSource(source, duration_s=0.3) as stream:
        assert 2 <= sum(1 for _ in stream if not time.sleep(0.05)) <= 8
    assert stream.stopped_by == "--duration" and time.monotonic() - start < 5
    for bad in ({"timeout_s": float("inf")}, {"timeout_s": 0.0}, {"duration_s": float("nan")}):
        with pytest.raises(ValueError, match="must be a finite number > 0"):
            StreamSource(source, **bad)  # refused before a decoder thread starts


class _SlowFirstPacket:
    """A container whose first packet comes 0.3 s after it was opened."""

    def __init__(self, container) -> None:
        self._container, self.streams = container, container.streams

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self._container.close()

    def demux(self, stream):
        time.sleep(0.3)
        yield from self._container.demux(stream)


def test_a_stream_whose_opening_outlasts_the_timeout_is_not_stalled(monkeypatch):
    # opening and probing took 1.5 s (data flowing; the open's limit is 2 x 1 + 1 s), then the
    # first packet 0.3 s: the wait for the first frame counts from the open, so no stall
    real_open = StreamSource._open

    def slow_open(self):
        time.sleep(1.5)
        return _SlowFirstPacket(real_open(self))

    monkeypatch.setattr(StreamSource, "_open", slow_open)
    with StreamSource("lavfi:testsrc=size=32x24:rate=50", timeout_s=1.0, max_frames=3) as stream:
        assert [f.index for f in stream] == [0, 1, 2]
    assert stream.error is None


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_failing_decoder_thread_ends_the_wait_at_once(monkeypatch):
    def broken(self):
        raise RuntimeError("boom")

    monkeypatch.setattr(StreamSource, "_open", broken)
    start = time.monotonic()
    with pytest.raises(DataError) as err:
        StreamSource("lavfi:testsrc", timeout_s=30)
    assert time.monotonic() - start < 10  # not the 61 s backstop
    assert str(err.value) == "lavfi:testsrc: the stream's decoder failed after 0 frame(s): RuntimeError('boom')"


@pytest.mark.skipif("v4l2" in av.formats_available or "video4linux2" in av.formats_available,
                    reason="this PyAV can open V4L2 devices")
def test_device_without_the_input_format_is_one_line(world, tmp_path, capsys):
    assert _track(world, "/dev/video7", tmp_path / "out") == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "/dev/video7: the FFmpeg inside PyAV has no 'v4l2' input device" in line


@pytest.mark.slow
def test_sigint_ends_a_live_stream_with_merged_results(world, tmp_path):
    """A paced, long pipe (40 s at most) into ``effowt track --source -`` in a child
    process; SIGINT once frames flow: exit 0 and a merged results.json of those frames."""
    out = tmp_path / "out"
    writer = _writer(world["frames"], fps=20, pace=True, repeat=140)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    track = subprocess.Popen([sys.executable, "-m", "effowt", "track", "--weights", str(world["run"]),
                              "--source", "-", "--out", str(out)], stdin=writer.stdout,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    writer.stdout.close()
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(track.stderr), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 60
        while not any("as it arrives" in line for line in lines) and time.monotonic() < deadline:
            assert track.poll() is None, lines
            time.sleep(0.05)
        time.sleep(1.0)
        track.send_signal(signal.SIGINT)
        stdout, _ = track.communicate(timeout=60)
    finally:
        track.kill()
        writer.kill()
        writer.wait(10)
    reader.join(10)
    assert track.returncode == 0, lines
    assert "stopped by SIGINT after" in stdout
    frames = json.loads((out / "videos.json").read_text())[0]["frames"]
    assert 0 < frames < 140 * 6
    assert {r["image_id"] for r in _results(out)} == {1_000_000 + i + 1 for i in range(frames)}
