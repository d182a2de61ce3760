"""Backbone weights by name (``hf-hub:ORG/NAME[:FILE]``, open_clip pretrained tags)
through huggingface_hub, against a stand-in for the Hub on 127.0.0.1 that serves
small random-weight files at the Hub's URLs, and against a pre-filled cache offline."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import re
import socket
import threading
import time
import warnings
from pathlib import Path

import huggingface_hub.constants
import open_clip
import pytest
import timm
import torch
from safetensors.torch import save

from effowt.backbones import create_backbone
from effowt.backbones.weights import hub_weights
from effowt.cli import main
from effowt.config import BackboneConfig, load_config
from effowt.errors import WeightsError
from effowt.runs import WEIGHTS_FILE, load_run, read_weights
from test_training import make_coco

COMMIT = "0123456789abcdef0123456789abcdef01234567"
VIT_KWARGS = {"embed_dim": 64, "depth": 3, "num_heads": 2}
CLIP_KWARGS = {"vision_cfg": {"layers": 2, "width": 64, "head_width": 32}}  # ViT-B-16, shrunk


class HubStandIn(http.server.BaseHTTPRequestHandler):
    """``HEAD`` / ``GET /{ORG}/{NAME}/resolve/{revision}/{FILE}`` as the Hub answers them:
    the file with ``X-Repo-Commit``, ``ETag`` (its sha256, as for LFS files) and
    ``Content-Length``; a 404 with the Hub's ``X-Error-Code`` (``RepoNotFound``,
    ``EntryNotFound``) otherwise. ``files``: ``"ORG/NAME/FILE" -> bytes``."""

    files: dict[str, bytes] = {}
    requests: list[str] = []

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def do_GET(self) -> None:
        self._answer(body=True)

    def _answer(self, body: bool) -> None:
        self.requests.append(f"{self.command} {self.path}")
        match = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", self.path.split("?")[0])
        repos = {key.rsplit("/", 1)[0] for key in self.files}
        data = self.files.get(f"{match.group(1)}/{match.group(3)}") if match else None
        if data is None:
            self.send_response(404)
            self.send_header("X-Error-Code", "EntryNotFound" if match and match.group(1) in repos else "RepoNotFound")
            self.send_header("X-Repo-Commit", COMMIT)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("X-Repo-Commit", COMMIT)
        self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if body:
            self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """The stand-in, ``HF_ENDPOINT`` on it, online, and an empty cache in ``tmp_path``."""
    handler = type("Hub", (HubStandIn,), {"files": {}, "requests": []})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{httpd.server_address[1]}")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    try:
        yield handler
    finally:
        httpd.shutdown()
        httpd.server_close()


def _offline(monkeypatch, cache: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{_closed_port()}")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _vit_bytes() -> tuple[bytes, torch.nn.Module]:
    reference = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=0, **VIT_KWARGS)
    return save(reference.state_dict()), reference


def _vit_cfg(weights: str) -> BackboneConfig:
    return BackboneConfig(name="timm:vit_tiny_patch16_224", taps=[0, 2], model_kwargs=dict(VIT_KWARGS),
                          weights=weights)


def test_hub_name_loads_from_the_endpoint_strictly_and_records_its_sha256(hub):
    data, reference = _vit_bytes()
    hub.files["effowt-test/vit-tiny/model.safetensors"] = data
    backbone = create_backbone(_vit_cfg("hf-hub:effowt-test/vit-tiny"))
    assert backbone.weights_sha256 == hashlib.sha256(data).hexdigest()
    torch.testing.assert_close(backbone.model.blocks[1].attn.qkv.weight, reference.blocks[1].attn.qkv.weight)
    assert any(r.startswith("GET /effowt-test/vit-tiny/resolve/main/model.safetensors") for r in hub.requests)
    # an explicit FILE, not the default name; a file that does not fit is refused like a local one
    hub.files["effowt-test/vit-tiny/other.safetensors"] = save({"pos_embed": torch.zeros(1, 2, 3)})
    with pytest.raises(WeightsError, match=r"other\.safetensors: weights do not fit the backbone: missing keys"):
        create_backbone(_vit_cfg("hf-hub:effowt-test/vit-tiny:other.safetensors"))


def test_hub_name_errors_are_one_line(hub):
    hub.files["effowt-test/vit-tiny/model.safetensors"] = _vit_bytes()[0]
    for spec, message in [("hf-hub:effowt-test/nothing", "no repository effowt-test/nothing on http://127.0.0.1"),
                          ("hf-hub:effowt-test/vit-tiny:missing.bin", "has none of missing.bin"),
                          ("hf-hub:no-slash", "expected hf-hub:ORG/NAME")]:
        with pytest.raises(WeightsError, match=re.escape(message)) as err:
            create_backbone(_vit_cfg(spec))
        assert "\n" not in str(err.value)


def test_pre_filled_cache_loads_offline(tmp_path, monkeypatch):
    """The cache as huggingface_hub lays it out (blobs, snapshots/<commit>, refs/main),
    written by hand; offline, with an endpoint where nothing listens."""
    data, reference = _vit_bytes()
    repo = tmp_path / "cache" / "models--effowt-test--vit-tiny"
    blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
    blob.parent.mkdir(parents=True)
    blob.write_bytes(data)
    (repo / "snapshots" / COMMIT).mkdir(parents=True)
    (repo / "snapshots" / COMMIT / "model.safetensors").symlink_to(blob)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    _offline(monkeypatch, tmp_path / "cache")
    start = time.monotonic()
    backbone = create_backbone(_vit_cfg("hf-hub:effowt-test/vit-tiny"))
    assert time.monotonic() - start < 10
    assert backbone.weights_sha256 == hashlib.sha256(data).hexdigest()
    torch.testing.assert_close(backbone.model.blocks[2].mlp.fc1.weight, reference.blocks[2].mlp.fc1.weight)


def test_no_network_and_no_cache_says_what_to_download_and_where(tmp_path, monkeypatch, capsys):
    _offline(monkeypatch, tmp_path / "empty")
    with pytest.raises(WeightsError) as err:
        create_backbone(_vit_cfg("hf-hub:effowt-test/vit-tiny:vit.safetensors"))
    message = str(err.value)
    assert "\n" not in message and "HF_HUB_OFFLINE is set" in message
    assert f"hf download effowt-test/vit-tiny vit.safetensors --cache-dir {tmp_path / 'empty'}" in message
    assert f"{os.environ['HF_ENDPOINT']}/effowt-test/vit-tiny/resolve/main/vit.safetensors" in message


def test_open_clip_tag_resolves_to_the_hub_copy_open_clip_names(hub):
    assert open_clip.get_pretrained_cfg("ViT-B-16", "laion2b_s34b_b88k")["hf_hub"].startswith(
        "laion/CLIP-ViT-B-16-laion2B-s34B-b88K")
    ref = hub_weights("laion2b_s34b_b88k", "open_clip:ViT-B-16")
    assert (ref.repo_id, ref.files) == ("laion/CLIP-ViT-B-16-laion2B-s34B-b88K",
                                        ("open_clip_model.safetensors", "open_clip_pytorch_model.bin"))
    assert hub_weights("laion2b_s34b_b88k", "timm:vit_base_patch16_clip_224") is None  # a path for timm
    clip = open_clip.create_model("ViT-B-16", pretrained=None, **CLIP_KWARGS)
    visual = {f"visual.{k}": v for k, v in clip.visual.state_dict().items()}
    data = save(visual)
    hub.files["laion/CLIP-ViT-B-16-laion2B-s34B-b88K/open_clip_model.safetensors"] = data
    cfg = BackboneConfig(name="open_clip:ViT-B-16", taps=[0, 1], model_kwargs=CLIP_KWARGS,
                         weights="laion2b_s34b_b88k")
    backbone = create_backbone(cfg)
    assert backbone.weights_sha256 == hashlib.sha256(data).hexdigest()
    torch.testing.assert_close(backbone.model.transformer.resblocks[1].attn.in_proj_weight,
                               clip.visual.transformer.resblocks[1].attn.in_proj_weight)
    with pytest.raises(WeightsError, match=r"laion5b: neither a weight file nor an open_clip pretrained tag "
                                           r"of ViT-B-16 \(tags: openai, "):
        create_backbone(BackboneConfig(name="open_clip:ViT-B-16", taps=[0, 1], model_kwargs=CLIP_KWARGS,
                                       weights="laion5b"))


def test_presets_name_their_official_weights():
    paper = hub_weights(load_config("paper").model.backbone.weights, load_config("paper").model.backbone.name)
    assert paper.repo_id == "timm/eva02_large_patch14_clip_224.merged2b"
    assert timm.models.get_pretrained_cfg("eva02_large_patch14_clip_224.merged2b").hf_hub_id == paper.repo_id
    clip = load_config("clip-b16").model.backbone
    assert clip.weights == "laion2b_s34b_b88k"
    assert hub_weights(clip.weights, clip.name).repo_id == "laion/CLIP-ViT-B-16-laion2B-s34B-b88K"


def test_train_with_hub_weights_then_load_the_run_from_the_cache_offline(hub, tmp_path, monkeypatch):
    """``effowt train --backbone-weights hf-hub:...`` downloads from the stand-in and
    records the file's sha256; the run then loads offline from the cache."""
    cfg = load_config("mini").model.backbone
    reference = timm.create_model(cfg.name.split(":", 1)[1], pretrained=False, num_classes=0, **cfg.model_kwargs)
    data = save(reference.state_dict())
    hub.files["effowt-test/mini-vit/model.safetensors"] = data
    ann_file, image_dir = make_coco(tmp_path / "coco", 2)
    run = tmp_path / "run"
    assert main(["train", "--config", "mini", "--data", str(ann_file), "--images", str(image_dir), "--out", str(run),
                 "--device", "cpu", "--max-steps", "1", "--backbone-weights", "hf-hub:effowt-test/mini-vit",
                 "data.num_workers=0"]) == 0
    identity = json.loads(read_weights(run / WEIGHTS_FILE)[1]["backbone"])
    assert identity["weights_sha256"] == hashlib.sha256(data).hexdigest()
    _offline(monkeypatch, tmp_path / "hub-cache")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "random-initialised backbone" warning
        model, loaded = load_run(run)
    assert loaded.model.backbone.weights == "hf-hub:effowt-test/mini-vit"
    assert model.backbone_identity()["weights_sha256"] == identity["weights_sha256"]


def test_cli_with_neither_endpoint_nor_cache_is_one_line(tmp_path, monkeypatch, capsys):
    _offline(monkeypatch, tmp_path / "empty")
    ann_file, image_dir = make_coco(tmp_path / "coco", 1)
    rc = main(["train", "--config", "mini", "--data", str(ann_file), "--images", str(image_dir),
               "--out", str(tmp_path / "run"), "--max-steps", "1", "--backbone-weights", "hf-hub:effowt-test/vit"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1
    assert err[0].startswith("effowt train: error: hf-hub:effowt-test/vit: weights not in the Hugging Face cache")




def test_cost_benchmarks_build_random_backbones_unless_told(tmp_path, monkeypatch):
    """Speed and memory do not depend on the weights' values: the presets' Hub weights
    are not fetched for them (offline with an empty cache is fine); an override still wins."""
    from effowt.bench.speed import _bench_config

    _offline(monkeypatch, tmp_path / "empty")
    assert _bench_config("clip-b16", 64, []).model.backbone.weights is None
    assert _bench_config("paper", 64, ["model.backbone.weights=w.safetensors"]).model.backbone.weights == \
        "w.safetensors"
