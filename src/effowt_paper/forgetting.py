"""``effowt bench forgetting``: what training did to the VLM's own recognition.

The premise of freezing (the paper's, and every side-tuning method's): fine-tuning a
VLM on the known categories of a detection set erodes what it knew about the rest.
OWTA is class-agnostic, so the accuracy benchmark cannot see that erosion; this
measures it directly, as zero-shot classification of object crops of every
category by the VLM whose image tower is the run's backbone::

    crops of WORLD/pretrain/     64 px windows around every object, all 50 categories
    image tower                  the run's backbone (its trained blocks, LoRA adapters
                                 included; blocks after the last tap, which no mode
                                 trains, from the VLM) -> the VLM's ln_post and proj
    text tower                   the VLM's, captions "a photo of a {name}"
    score                        share of crops whose nearest caption is their own,
                                 known and unknown categories apart

On the cut-out world (:func:`run_cutout_forgetting`) the VLM is the LiT MobileNetV2
(:mod:`effowt.lit`), the crops are its held-out crops of every catalogue category,
the run's trunk stages replace the VLM's (its last 1x1 conv, pooling and projection,
which no mode trains, stay), and accuracy is reported for the known and unknown
categories of both splits.

``reference`` is the frozen VLM itself: ``side`` and ``head`` runs score it exactly,
by construction; ``full`` and ``lora`` runs show what their training changed. The
tracker's labels (``--texts``) are not affected either way: they come from a frozen
copy of the VLM (:func:`effowt.tracking.labels.load_labeler`).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from effowt.bench.output import markdown_table
from effowt.commands import int_at_least
from effowt.errors import ConfigError

if TYPE_CHECKING:
    import argparse

    import torch

SPLITS = ("all", "known", "unknown")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", default=None, help="a MiniOWT world with a pretrain/ split (all categories)")
    parser.add_argument("--lit", default=None,
                        help="the LiT VLM's weights: score on the cut-out world's catalogue instead of --data")
    parser.add_argument("--runs", nargs="+", required=True, help="run folders (same backbone)")
    parser.add_argument("--max-crops", type=int_at_least(1), default=2000,
                        help="object crops scored (evenly spaced)")


def run(args: argparse.Namespace) -> dict[str, Any]:
    if (args.data is None) == (args.lit is None):
        raise ConfigError("bench forgetting: give --data (a MiniOWT world) or --lit (the cut-out world's LiT VLM)")
    if args.lit:
        return run_cutout_forgetting(args.runs, args.lit)
    return run_forgetting(args.data, args.runs, args.max_crops)


def markdown(report: dict[str, Any]) -> str:
    """The table of :func:`cutout_forgetting_markdown` for a cut-out report (its world
    counts captions), else of :func:`forgetting_markdown`."""
    if "categories" in report["world"]:
        return cutout_forgetting_markdown(report)
    return forgetting_markdown(report)


def with_run_tower(vlm: torch.nn.Module, model: torch.nn.Module) -> torch.nn.Module:
    """``vlm`` with its image tower replaced by the backbone of the trained ``model``
    (the blocks the run kept; the VLM's later blocks, final norm and projection)."""
    tower = model.backbone.model.float()
    own = vlm.visual
    tower.transformer.resblocks.extend(own.transformer.resblocks[len(tower.transformer.resblocks):])
    tower.ln_post, tower.proj = own.ln_post, own.proj
    vlm.visual = tower
    return vlm.eval()


def with_run_trunk(vlm: torch.nn.Module, model: torch.nn.Module) -> torch.nn.Module:
    """The LiT ``vlm`` with the stem and block stages of the trained ``model``'s CNN trunk
    (:mod:`effowt.backbones.cnn` prunes nothing before the last tap; the VLM keeps its
    ``conv_head``, pooling and projection)."""
    import torch

    run_trunk, own = model.backbone.model.float(), vlm.visual.trunk
    own.conv_stem, own.bn1 = run_trunk.conv_stem, run_trunk.bn1
    own.blocks = torch.nn.Sequential(*run_trunk.blocks, *own.blocks[len(run_trunk.blocks):])
    return vlm.eval()


def run_cutout_forgetting(runs: list[str], lit_weights: str, per_category: int = 4,
                          stamps_root: str | None = None, clipart_root: str | None = None) -> dict[str, Any]:
    """Zero-shot top-1 (%) among all the cut-out world's captions, known and unknown of
    each split, of the LiT VLM (``reference``) and of the VLM with each run's trunk
    (``runs[run]``), on the LiT report's held-out crops (``per_category`` per category)."""
    from effowt.backbones.weights import load_weights_into
    from effowt.lit import (
        HELD_OUT_STREAM,
        catalogue_crops,
        create_lit_vlm,
        image_features,
        lit_catalogue,
        split_report,
        zero_shot,
    )
    from effowt.runs import load_run

    scene, known, tokens = lit_catalogue(stamps_root, clipart_root)
    categories = scene.categories
    crops, labels = catalogue_crops(scene, per_category, 0, HELD_OUT_STREAM)
    vlm = create_lit_vlm()
    load_weights_into(vlm, lit_weights)
    vlm = vlm.float().eval()

    def score(model: torch.nn.Module) -> dict[str, Any]:
        return split_report(zero_shot(model, image_features(model, crops), labels, tokens), labels, categories, known)

    report: dict[str, Any] = {"world": {"categories": len(categories), "crops": len(crops)},
                              "reference": score(vlm), "runs": {}}
    for run in runs:
        model, cfg = load_run(run)
        report["runs"][run] = {"mode": cfg.model.mode, **score(with_run_trunk(copy.deepcopy(vlm), model))}
    return report


def cutout_forgetting_markdown(report: dict[str, Any]) -> str:
    """One row per run (the frozen LiT VLM first): zero-shot top-1 (%) per split and subset."""
    cols = [(s, k) for s in ("far", "near") for k in ("known", "unknown")]

    def row(name: str, mode: str, r: dict[str, Any]) -> list[str]:
        return [name, mode, f"{r['all']:.1f}", *[f"{r[s][k]:.1f}" for s, k in cols]]

    rows = [row("frozen LiT VLM (reference)", "-", report["reference"])]
    rows += [row(name, r["mode"], r) for name, r in report["runs"].items()]
    title = (f"# Zero-shot top-1 of the LiT VLM with each run's trunk ({report['world']['crops']} held-out crops, "
             f"{report['world']['categories']} captions, chance {report['reference']['chance']} %)")
    header = ["run", "mode", "all", *[f"{s} {k}" for s, k in cols]]
    return "\n".join([title, "", *markdown_table(header, rows)]) + "\n"


def _accuracy(hits: torch.Tensor, is_known: torch.Tensor) -> dict[str, float]:
    import torch

    masks = {"all": torch.ones_like(is_known), "known": is_known, "unknown": ~is_known}
    return {split: float(hits[m].float().mean()) for split, m in masks.items()}


def run_forgetting(data: str | Path, runs: list[str], max_crops: int = 2000) -> dict[str, Any]:
    """Zero-shot accuracy ``{"all", "known", "unknown"}`` of the frozen VLM
    (``reference``) and of each run's tower (``runs[run]``), on at most ``max_crops``
    crops (evenly spaced) of ``data``'s ``pretrain/`` split. Every run must share
    the first one's backbone."""
    import torch

    from effowt.data.miniowt import KNOWN_IDS, MiniOWTPaths
    from effowt.runs import load_run
    from effowt.tracking.labels import load_clip_model
    from effowt.vlm import caption, load_object_crops, zero_shot_accuracy

    world = MiniOWTPaths(Path(data)).require("pretrain_json")
    crops, labels, categories = load_object_crops(world.pretrain_json, world.pretrain_images, crop=64)
    keep = torch.linspace(0, len(crops) - 1, min(max_crops, len(crops))).round().long().unique()
    crops, labels = crops[keep], labels[keep]
    is_known = torch.tensor([categories[i]["id"] in KNOWN_IDS for i in labels.tolist()])
    info = json.loads(world.pretrain_json.read_text()).get("info", {})
    report: dict[str, Any] = {"world": {"synth_seed": info.get("seed"), "crops": len(crops)}, "runs": {}}
    reference = None
    for run in runs:
        model, cfg = load_run(run)
        if reference is None:
            reference = cfg.model.backbone
            vlm, tokenizer = load_clip_model(reference)
            tokens = tokenizer([caption(c["name"]) for c in categories])
            report["reference"] = _accuracy(zero_shot_accuracy(vlm, crops, labels, tokens), is_known)
        elif (cfg.model.backbone.name, cfg.model.backbone.weights) != (reference.name, reference.weights):
            raise ConfigError(f"{run}: backbone {cfg.model.backbone.name} ({cfg.model.backbone.weights}) is not "
                              f"the first run's ({reference.name}, {reference.weights})")
        # with_run_tower replaces the tower in place: each run gets its own copy of the VLM
        hits = zero_shot_accuracy(with_run_tower(copy.deepcopy(vlm), model), crops, labels, tokens)
        report["runs"][run] = {"mode": cfg.model.mode, **_accuracy(hits, is_known)}
    return report


def forgetting_markdown(report: dict[str, Any]) -> str:
    """One row per run (the frozen VLM first): zero-shot accuracy (%) all / known / unknown."""
    rows = [["frozen VLM (reference)", "-", *[f"{100 * report['reference'][s]:.1f}" for s in SPLITS]]]
    rows += [[name, r["mode"], *[f"{100 * r[s]:.1f}" for s in SPLITS]] for name, r in report["runs"].items()]
    title = f"# Zero-shot accuracy of the VLM with each run's image tower ({report['world']['crops']} crops)"
    return "\n".join([title, "", *markdown_table(["run", "mode", "all", "known", "unknown"], rows)]) + "\n"
