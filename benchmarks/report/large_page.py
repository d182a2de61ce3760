"""How `effowt report` scales: a synthetic tracking output folder of one long video with
many tracks, its page written and opened in headless Chromium.

    python benchmarks/report/large_page.py --frames 3000 --tracks 300 --json benchmarks/report/large-page.json

The folder is what `effowt track --render` writes (results.json, videos.json, mot/,
partial/settings.json, render/<stem>.mp4), with made-up tracks on a generated 128 px
mp4 that serves as source and render. Timed: writing the page (in-process, crops
included) and Chromium loading it until its script has run (``--dump-dom``, wall time
of the whole browser process and the page's own ``performance.now()``).
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import av
import numpy as np


def make_folder(root: Path, frames: int, tracks: int, size: int = 128, seed: int = 0) -> Path:
    """Write the synthetic output folder under ``root``; returns it."""
    rng = np.random.default_rng(seed)
    source = root / "source.mp4"
    with av.open(str(source), mode="w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        base = np.linspace(0, 255, size, dtype=np.float32)[None, :, None].repeat(size, 0).repeat(3, 2)
        for f in range(frames):
            image = ((base + 2 * f) % 256).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    out = root / "out"
    for sub in ("mot", "partial", "render"):
        (out / sub).mkdir(parents=True)
    shutil.copy(source, out / "render" / "1-source.mp4")
    spans = []
    for t in range(1, tracks + 1):
        start = int(rng.integers(0, frames - 20))
        length = int(min(frames - start, rng.integers(20, max(21, frames // 4))))
        seen = [f for f in range(start, start + length) if rng.random() > 0.05]  # a few lost frames
        spans.append((t, seen, rng.uniform(0, size - 24, 2)))
    by_frame: dict[int, list[tuple[int, float, float]]] = {}
    for t, seen, (x, y) in spans:
        for f in seen:
            by_frame.setdefault(f, []).append((t, float(x), float(y)))
    records, lines = [], []
    for f in sorted(by_frame):
        for t, x, y in by_frame[f]:
            records.append({"video_id": 1, "image_id": 1_000_000 + f + 1, "track_id": t,
                            "bbox": [round(x, 2), round(y, 2), 20.0, 20.0], "score": 0.9, "category_id": 1})
            lines.append(f"{f + 1},{t},{x:.2f},{y:.2f},20.00,20.00,0.90000,-1,-1,-1\n")
    (out / "results.json").write_text(json.dumps(records))
    (out / "mot" / "1-source.txt").write_text("".join(lines))
    (out / "videos.json").write_text(json.dumps([{"ordinal": 0, "name": "source", "file_stem": "1-source",
                                                  "video_id": 1, "frames": frames, "synthetic_ids": True,
                                                  "error": None}]))
    (out / "partial" / "settings.json").write_text(json.dumps({"source": str(source), "frames_root": None}))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=3000)
    parser.add_argument("--tracks", type=int, default=300)
    parser.add_argument("--json", default=None, help="write the figures here")
    parser.add_argument("--chromium", default=shutil.which("chromium"))
    args = parser.parse_args()
    from effowt.report import write_report

    with tempfile.TemporaryDirectory() as tmp:
        out = make_folder(Path(tmp), args.frames, args.tracks)
        records = len(json.loads((out / "results.json").read_text()))
        start = time.perf_counter()
        page = write_report(out)
        report_s = time.perf_counter() - start
        result = {"frames": args.frames, "tracks": args.tracks, "records": records, "report_s": round(report_s, 2),
                  "html_bytes": page.stat().st_size,
                  "crop_files": len(list((out / "report" / "crops").iterdir())),
                  "machine": f"{platform.machine()}, {platform.system()}; 2 shared cores"}
        if args.chromium:
            cmd = [args.chromium, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp}/profile",
                   "--virtual-time-budget=10000", "--dump-dom", page.as_uri()]
            start = time.perf_counter()
            dom = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=True).stdout
            result["chromium_dump_dom_s"] = round(time.perf_counter() - start, 2)
            result["page_script_ready_ms"] = int(re.search(r'data-ready-ms="(\d+)"', dom).group(1))
            result["timeline_rows"] = len(re.findall(r'class="track-row"', dom))
            result["video_loaded"] = 'data-state="loaded"' in dom
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")


if __name__ == "__main__":
    main()
