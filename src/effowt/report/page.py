"""The results page of a tracking output folder: ``OUT/report.html``.

One self-contained HTML file (no network, no CDN; inline CSS and script) beside
``results.json``. Per video, in ``videos.json`` order:

- the rendered video (``render/<stem>.mp4``, linked relatively) when the run had
  ``--render``;
- a timeline of track lifetimes: one row per track of ``results.json``, one bar per
  run of consecutive frames, in the track's render colour
  (:func:`effowt.tracking.render.track_color` of the id drawn in the video), with the
  label when the track has one; clicking a bar seeks the video to that frame, and a
  playhead follows the video;
- a strip of crops per track (its first, middle and last box), cut from the source
  frames into ``OUT/report/crops/<track_id>.jpg`` (lazy-loaded), linked both ways with
  the track's timeline row (``#row-<track_id>`` / ``#track-<track_id>``).

Above them: the metrics of ``metrics.json`` when ``effowt eval`` wrote one (known /
unknown OWTA, D.Re, A.Acc, label accuracy) and the speed figures of ``speed.json``.

Frame indices come from ``mot/<stem>.txt`` (1-based frames, the video's own track
ids), zipped line by line with the video's records of ``results.json`` (ids unique
over the source): both are written from the same tracks in the same order. The source
is found through ``partial/settings.json``; when it is gone the page has no crops and
says so.

Test hooks (read back by the headless-browser test): every timeline row is a
``<g class="track-row" data-track-id=...>``; each ``<video>`` gets
``data-state="loaded"`` when ``loadeddata`` fires (``"error <code>"`` on an error);
``<body data-ready-ms=...>`` is the time the page's script ran.
"""

from __future__ import annotations

import html
import io
import math
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from PIL import Image

from effowt.errors import DataError
from effowt.fileio import atomic_write_bytes, atomic_write_text, read_json

REPORT_FILE = "report.html"
CROPS_DIR = "report/crops"
CROP_HEIGHT_PX = 64
CROP_MAX_WIDTH_PX = 128
CROP_MARGIN = 0.15
ROW_PX = 14
LABEL_PX = 180
PLOT_PX = 820


@dataclass
class TrackRow:
    """One track of one video: ``track_id`` as in ``results.json``, ``local_id`` as drawn
    in the render (the video's own id), 0-based ``frames`` (sorted) and their xyxy boxes
    in source pixels."""

    track_id: int
    local_id: int
    frames: list[int] = field(default_factory=list)
    boxes: list[tuple[float, float, float, float]] = field(default_factory=list)
    label: str | None = None
    label_score: float | None = None

    def segments(self) -> list[tuple[int, int]]:
        """Runs of consecutive frames as ``(first, last)`` pairs, inclusive."""
        runs: list[tuple[int, int]] = []
        for f in self.frames:
            if runs and f == runs[-1][1] + 1:
                runs[-1] = (runs[-1][0], f)
            else:
                runs.append((f, f))
        return runs

    def picks(self) -> list[int]:
        """Positions in ``frames`` of the first, middle and last box (fewer for short tracks)."""
        n = len(self.frames)
        return sorted({0, n // 2, n - 1})


@dataclass
class VideoRows:
    """One video of the output folder and its tracks (in order of first appearance)."""

    name: str
    video_id: int
    stem: str
    ordinal: int
    frames: int
    tracks: list[TrackRow]
    fps: float | None = None


def load_video_rows(out_dir: str | Path) -> list[VideoRows]:
    """Read ``videos.json``, ``results.json`` and ``mot/*.txt`` of a tracking output folder
    into one :class:`VideoRows` per finished video. DataError naming the file when the
    folder is not an ``effowt track`` output or its files disagree."""
    out = Path(out_dir)
    if not (out / "results.json").is_file():
        raise DataError(f"{out}: no results.json: not an `effowt track` output folder")
    videos = read_json(out / "videos.json", "videos")
    records = read_json(out / "results.json", "results")
    by_video: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for rec in records:
        by_video[int(rec["video_id"])].append(rec)
    rows = []
    for video in videos:
        if video.get("error"):
            continue
        mot_path = out / "mot" / f"{video['file_stem']}.txt"
        if not mot_path.is_file():
            raise DataError(f"{mot_path}: MOT file of video {video['name']!r} not found")
        lines = [ln for ln in mot_path.read_text(encoding="utf-8").splitlines() if ln.strip()]
        recs = by_video.get(int(video["video_id"]), [])
        if len(lines) != len(recs):
            raise DataError(f"{mot_path}: {len(lines)} boxes, but results.json has {len(recs)} for video "
                            f"{video['name']!r}: the folder mixes two runs")
        tracks: dict[int, TrackRow] = {}
        for line, rec in zip(lines, recs):
            cols = line.split(",")
            frame, local = int(cols[0]) - 1, int(cols[1])
            row = tracks.get(int(rec["track_id"]))
            if row is None:
                row = tracks[int(rec["track_id"])] = TrackRow(int(rec["track_id"]), local)
            x, y, w, h = (float(v) for v in rec["bbox"])
            row.frames.append(frame)
            row.boxes.append((x, y, x + w, y + h))
            if rec.get("label") is not None:
                row.label, row.label_score = str(rec["label"]), float(rec.get("label_score", 0.0))
        for row in tracks.values():
            order = sorted(range(len(row.frames)), key=row.frames.__getitem__)
            row.frames = [row.frames[i] for i in order]
            row.boxes = [row.boxes[i] for i in order]
        rows.append(VideoRows(str(video["name"]), int(video["video_id"]), str(video["file_stem"]),
                              int(video["ordinal"]), int(video["frames"]), list(tracks.values())))
    return rows


def _video_fps(path: Path) -> float | None:
    """Frame rate of a rendered mp4 (None when unreadable)."""
    import av

    try:
        with av.open(str(path)) as container:
            rate = container.streams.video[0].average_rate
            return float(rate) if rate else None
    except (av.FFmpegError, OSError, IndexError):
        return None


def _crop(image: Any, box: tuple[float, float, float, float]) -> Image.Image:
    """The box with a margin, clipped to the frame, scaled to ``CROP_HEIGHT_PX`` high."""
    height, width = image.shape[:2]
    x1, y1, x2, y2 = box
    pad_x, pad_y = max(2.0, CROP_MARGIN * (x2 - x1)), max(2.0, CROP_MARGIN * (y2 - y1))
    left, top = max(0, math.floor(x1 - pad_x)), max(0, math.floor(y1 - pad_y))
    right, bottom = min(width, math.ceil(x2 + pad_x)), min(height, math.ceil(y2 + pad_y))
    crop = Image.fromarray(image[top:max(bottom, top + 1), left:max(right, left + 1)])
    scale = CROP_HEIGHT_PX / crop.height
    size = (max(1, min(CROP_MAX_WIDTH_PX, round(crop.width * scale))), CROP_HEIGHT_PX)
    return crop.resize(size, Image.BICUBIC)


def write_crops(out_dir: str | Path, videos: list[VideoRows]) -> str | None:
    """Cut every track's first, middle and last box out of the source frames into one
    JPEG strip per track, ``OUT/report/crops/<track_id>.jpg``. Returns None, or a short
    reason when there are no crops (the source named in ``partial/settings.json`` is gone)."""
    from effowt.data.sources import open_source

    out = Path(out_dir)
    settings_path = out / "partial" / "settings.json"
    if not settings_path.is_file():
        return f"no crops: {settings_path} not found"
    settings = read_json(settings_path, "settings")
    try:
        sources = open_source(settings["source"], settings.get("frames_root"))
    except DataError as err:
        return f"no crops: the source cannot be read ({err})"
    for video in videos:
        if video.ordinal >= len(sources) or sources[video.ordinal].name != video.name:
            return f"no crops: the source {settings['source']} no longer holds video {video.name!r}"
        wanted: dict[int, list[tuple[TrackRow, int]]] = defaultdict(list)
        for row in video.tracks:
            for pos in row.picks():
                wanted[row.frames[pos]].append((row, pos))
        crops: dict[int, dict[int, Image.Image]] = defaultdict(dict)
        last = max(wanted, default=-1)
        for frame in sources[video.ordinal]:
            for row, pos in wanted.get(frame.index, ()):
                crops[row.track_id][pos] = _crop(frame.image, row.boxes[pos])
            if frame.index >= last:
                break
        for row in video.tracks:
            tiles = [crops[row.track_id][p] for p in row.picks() if p in crops[row.track_id]]
            if not tiles:
                continue
            strip = Image.new("RGB", (sum(t.width for t in tiles) + 2 * (len(tiles) - 1), CROP_HEIGHT_PX),
                              (255, 255, 255))
            x = 0
            for tile in tiles:
                strip.paste(tile, (x, 0))
                x += tile.width + 2
            buffer = io.BytesIO()
            strip.save(buffer, format="JPEG", quality=85)
            atomic_write_bytes(out / CROPS_DIR / f"{row.track_id}.jpg", buffer.getvalue())
    return None


def _pct(value: Any) -> str:
    return "–" if value is None else f"{100 * float(value):.1f}"


def _metrics_html(metrics: dict[str, Any] | None) -> str:
    if metrics is None:
        return "<p class=note>No metrics.json: score the folder with <code>effowt eval --gt GT.json " \
               "--pred OUT/results.json --out OUT</code> and run <code>effowt report</code> again.</p>"
    head = "<tr><th>subset</th><th>OWTA</th><th>D.Re</th><th>A.Acc</th>"
    labels = metrics.get("label_accuracy")
    head += "<th>label accuracy</th></tr>" if labels else "</tr>"
    body = []
    for subset in ("known", "unknown", "all"):
        if subset not in metrics:
            continue
        m = metrics[subset]
        cells = "".join(f"<td>{_pct(m.get(k))}</td>" for k in ("OWTA", "DetRe", "AssA"))
        if labels:
            cells += f"<td>{_pct(labels.get(subset))}</td>"
        body.append(f"<tr><th>{subset}</th>{cells}</tr>")
    return f"<table class=metrics id=metrics>{head}{''.join(body)}</table>" \
           "<p class=note>TrackEval TAO_OW, percent; means over HOTA's 19 IoU thresholds.</p>"


def _speed_html(speed: dict[str, Any] | None) -> str:
    if not speed:
        return ""
    stages = ", ".join(f"{k} {float(v):.1f}" for k, v in speed.get("per_frame_ms", {}).items())
    return (f"<p id=speed>{speed.get('frames', 0)} frames in {float(speed.get('wall_s', 0)):.1f} s, "
            f"<b>{float(speed.get('frames_per_s', 0)):.1f} frames/s</b> on {html.escape(str(speed.get('device')))}"
            f"; per-frame ms: {html.escape(stages)}</p>")


def _rgb(local_id: int) -> str:
    from effowt.tracking.render import track_color

    return "rgb({},{},{})".format(*track_color(local_id))


def _timeline_svg(video: VideoRows, playhead: bool = True) -> str:
    """One SVG: a frame axis, then one ``g.track-row`` per track (and a playhead line that
    follows the video, when there is one)."""
    frames = max([1, video.frames, *(r.frames[-1] + 1 for r in video.tracks)])
    unit = PLOT_PX / frames
    top = 16
    height = top + ROW_PX * len(video.tracks) + 4
    parts = [f'<svg class=timeline viewBox="0 0 {LABEL_PX + PLOT_PX} {height}" '
             f'width="{LABEL_PX + PLOT_PX}" height="{height}" data-frames="{frames}" '
             f'data-video="v{video.video_id}">']
    step = max(1, 10 ** math.floor(math.log10(max(1, frames / 5))))
    while frames / step > 10:
        step *= 2
    for f in range(0, frames, step):
        x = LABEL_PX + f * unit
        parts.append(f'<line class=tick x1="{x:.1f}" x2="{x:.1f}" y1="{top - 4}" y2="{height}"/>'
                     f'<text class=axis x="{x + 2:.1f}" y="{top - 6}">{f}</text>')
    for i, row in enumerate(video.tracks):
        y = top + i * ROW_PX
        color = _rgb(row.local_id)
        name = f"{row.local_id}" + (f" {row.label}" if row.label else "")
        title = f"track {row.track_id} in results.json (#{row.local_id} in the video), frames " \
                f"{row.frames[0]}–{row.frames[-1]}, {len(row.frames)} boxes" + \
                (f", label {row.label!r} ({row.label_score:.3f})" if row.label else "")
        bars = "".join(f'<rect x="{LABEL_PX + a * unit:.2f}" y="{y + 2}" width="{max(1.0, (b - a + 1) * unit):.2f}" '
                       f'height="{ROW_PX - 4}" data-frame="{a}"/>' for a, b in row.segments())
        parts.append(f'<g class=track-row id="row-{row.track_id}" data-track-id="{row.track_id}" fill="{color}">'
                     f'<title>{html.escape(title)}</title>'
                     f'<a href="#track-{row.track_id}"><text x="4" y="{y + ROW_PX - 3}">'
                     f'{html.escape(name[:28])}</text></a>{bars}</g>')
    if playhead:
        parts.append(f'<line class=playhead x1="{LABEL_PX}" x2="{LABEL_PX}" y1="0" y2="{height}"/>')
    parts.append("</svg>")
    return "".join(parts)


def _tracks_html(video: VideoRows, crops: bool) -> str:
    cards = []
    for row in video.tracks:
        picks = ", ".join(str(row.frames[p]) for p in row.picks())
        label = f' <span class=label>{html.escape(row.label)}</span>' if row.label else ""
        img = (f'<img loading=lazy src="{CROPS_DIR}/{row.track_id}.jpg" alt="track {row.track_id}: '
               f'frames {picks}" height="{CROP_HEIGHT_PX}">' if crops else "")
        cards.append(f'<div class=track id="track-{row.track_id}"><a href="#row-{row.track_id}" '
                     f'style="border-color:{_rgb(row.local_id)}">#{row.local_id}</a>{label}'
                     f'<span class=frames>frames {picks}</span>{img}</div>')
    return f'<div class=tracks>{"".join(cards)}</div>'


_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:0 auto;max-width:1040px;padding:0 12px 40px;color:#222}
h1{font-size:22px}h2{font-size:17px;margin-top:28px;border-top:1px solid #ddd;padding-top:12px}
table.metrics{border-collapse:collapse}table.metrics td,table.metrics th{border:1px solid #ccc;padding:2px 10px;
text-align:right}.note{color:#666;font-size:12px}video{max-width:100%;max-height:360px;background:#000;display:block}
.tlwrap{overflow-x:auto}svg.timeline{display:block;font-size:10px}svg text{fill:#222}
svg .tick{stroke:#eee}svg .axis{fill:#888}svg .playhead{stroke:#d00;stroke-width:1.5}
svg rect{cursor:pointer}.track-row:target text,.track:target{font-weight:bold;background:#ffd}
.tracks{display:flex;flex-wrap:wrap;gap:6px}.track{border:1px solid #ddd;padding:3px;font-size:11px;
display:flex;flex-direction:column;min-width:90px}.track a{border-left:6px solid;padding-left:4px;font-weight:bold}
.track img{display:block;margin-top:2px;height:64px;width:auto;image-rendering:pixelated}.frames{color:#777}
.label{color:#333}
"""

_SCRIPT = """
for (const v of document.querySelectorAll('video')) {
  v.addEventListener('loadeddata', () => { v.dataset.state = 'loaded'; });
  v.addEventListener('error', () => { v.dataset.state = 'error ' + (v.error ? v.error.code : '?'); });
  const svg = document.querySelector('svg[data-video="' + v.dataset.video + '"]');
  if (!svg) continue;
  const frames = +svg.dataset.frames, fps = +v.dataset.fps || 25, line = svg.querySelector('.playhead');
  const x0 = LABEL, w = PLOT;
  v.addEventListener('timeupdate', () => {
    const x = x0 + Math.min(1, v.currentTime * fps / frames) * w;
    line.setAttribute('x1', x); line.setAttribute('x2', x);
  });
  svg.addEventListener('click', (e) => {
    const r = e.target.closest('rect'); if (!r) return;
    v.currentTime = (+r.dataset.frame + 0.5) / fps; v.pause();
  });
}
document.body.dataset.readyMs = Math.round(performance.now());
"""


def render_page(out_dir: str | Path, videos: list[VideoRows], metrics: dict[str, Any] | None,
                speed: dict[str, Any] | None, crops_note: str | None) -> str:
    """The HTML text of the page (see the module docstring)."""
    out = Path(out_dir)
    total = sum(len(v.tracks) for v in videos)
    sections = []
    for video in videos:
        mp4 = out / "render" / f"{video.stem}.mp4"
        if mp4.is_file():
            fps = video.fps or 25.0
            src = html.escape(f"render/{quote(video.stem)}.mp4#t=0.01")
            player = (f'<video controls muted preload=metadata src="{src}" '
                      f'data-video="v{video.video_id}" data-fps="{fps:g}"></video>')
        else:
            player = "<p class=note>No rendered video: track with <code>--render</code> to see one here.</p>"
        sections.append(
            f'<section class=video id="v{video.video_id}"><h2>{html.escape(video.name)} '
            f'<small>(video {video.video_id}, {video.frames} frames, {len(video.tracks)} tracks)</small></h2>'
            f'{player}<h3>Track lifetimes</h3><p class=note>One row per track, in its colour in the video, '
            f'with its id as drawn and its label; click a bar to seek, a name for its crops.</p>'
            f'<div class=tlwrap>{_timeline_svg(video, mp4.is_file())}</div>'
            f'<h3>Crops: first, middle and last box</h3>{_tracks_html(video, crops_note is None)}</section>')
    note = f"<p class=note>{html.escape(crops_note)}</p>" if crops_note else ""
    toc = " · ".join(f'<a href="#v{v.video_id}">{html.escape(v.name)}</a>' for v in videos)
    script = _SCRIPT.replace("LABEL", str(LABEL_PX)).replace("PLOT", str(PLOT_PX))
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>effowt: {html.escape(out.name)}"
            f"</title><meta name=viewport content='width=device-width'><style>{_CSS}</style></head>"
            f"<body><h1>Tracking results: {html.escape(out.name)}</h1>"
            f"<p>{len(videos)} video(s), {total} tracks. {toc}</p>{note}"
            f"<h2>Metrics</h2>{_metrics_html(metrics)}{_speed_html(speed)}"
            f"{''.join(sections)}<script>{script}</script></body></html>")


def write_report(out_dir: str | Path, crops: bool = True) -> Path:
    """Write ``OUT/report.html`` (and its crops under ``OUT/report/``) for a tracking
    output folder; returns the page's path."""
    out = Path(out_dir)
    videos = load_video_rows(out)
    for video in videos:
        mp4 = out / "render" / f"{video.stem}.mp4"
        video.fps = _video_fps(mp4) if mp4.is_file() else None
    crops_note = write_crops(out, videos) if crops else "crops not written (--no-crops)"
    metrics = read_json(out / "metrics.json", "metrics") if (out / "metrics.json").is_file() else None
    speed = read_json(out / "speed.json", "speed") if (out / "speed.json").is_file() else None
    page = out / REPORT_FILE
    atomic_write_text(page, render_page(out, videos, metrics, speed, crops_note))
    return page


def report_summary(page: Path, start: float) -> str:
    """One line for the CLI: what was written and how long it took."""
    size = page.stat().st_size
    return f"wrote {page} ({size / 1024:.0f} KB) in {time.perf_counter() - start:.1f} s; open it in a browser"


__all__ = ["REPORT_FILE", "TrackRow", "VideoRows", "load_video_rows", "render_page", "write_crops",
           "write_report"]
