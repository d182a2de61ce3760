"""Configuration: frozen dataclasses loaded from YAML presets, with ``key=value`` overrides.

Every field has a default, so a preset only names what differs. Unknown keys are
errors (a typo must never be silently ignored). Choice fields are ``Literal``
types, checked while the YAML values are coerced. Each section checks its own
fields in ``__post_init__``, next to them; what ties sections together is checked
by the parent that holds them (:class:`ModelConfig`: the side network against the
backbone's taps and the head's strides; :class:`EffOWTConfig`: ``data.image_size ==
model.image_size``). So every config is checked where it is built (a preset, an
override, ``dataclasses.replace``, a constructor call) and, being frozen, stays
checked: a bad value fails at once with a one-line ``ConfigError`` naming the key,
the value and the valid range, and no module that receives a config checks it
again. Overrides are parsed once (:func:`parse_overrides`) and applied with
:func:`apply_values`. The resolved config is written beside every output with
:func:`save_config`.
"""

from __future__ import annotations

import dataclasses
import math
import os
import reprlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin, get_type_hints

import yaml

from effowt.errors import ConfigError
from effowt.fileio import atomic_write_text

TransferMode = Literal["side", "head", "full", "lora"]
Stage = Literal["s4", "s8", "s16"]
SimPattern = Literal["lines", "axial", "wide", "dense", "random"]
SideOutput = Literal["replace", "residual"]
Pyramid = Literal["simple", "linear", "fpn"]
SideInit = Literal["prune", "random"]
BackboneDtype = Literal["float32", "bfloat16", "float16"]
Schedule = Literal["cosine", "step"]
AmpMode = Literal["none", "bf16", "fp16"]

TRANSFER_MODES: tuple[str, ...] = get_args(TransferMode)
# inference precisions of the frozen backbone and the neck (--precision; torch dtypes in effowt.tracking.tracker)
PRECISION_NAMES = ("fp32", "bf16", "fp16")
_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxstring, _SHORT.maxother = 2, 60, 60
_SHORT.maxdict = _SHORT.maxlist = _SHORT.maxtuple = _SHORT.maxset = 4
STAGES: tuple[str, ...] = get_args(Stage)
STAGE_STRIDES = {"s4": 4, "s8": 8, "s16": 16}
C = TypeVar("C")


def _check_choice(key: str, value: Any, choices: tuple[Any, ...], where: str = "", what: str = "value") -> None:
    if value not in choices:
        raise ConfigError(f"{where}{key}: unknown {what} {short_repr(value)} (valid: {', '.join(map(str, choices))})")


def _check_range(key: str, value: float, low: float | None = None, high: float | None = None,
                 low_open: bool = False, high_open: bool = False) -> None:
    """ConfigError unless ``low <= value <= high`` (``<`` where open; ``None``: unbounded; NaN never)."""
    too_low = math.isnan(value) or low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        left = "(" if low_open or low is None else "["
        right = ")" if high_open or high is None else "]"
        valid = f"{left}{'-inf' if low is None else low}, {'inf' if high is None else high}{right}"
        raise ConfigError(f"{key}={value!r}: out of range, must be in {valid}")


def _check_pair(key: str, value: list[float], low: float, high: float | None) -> None:
    """ConfigError unless ``value`` is ``[a, b]`` with ``low < a <= b (<= high)``."""
    if len(value) != 2 or not low < value[0] <= value[1] or (high is not None and value[1] > high):
        bound = f" <= {high}" if high is not None else ""
        raise ConfigError(f"{key}={value!r}: must be [min, max] with {low} < min <= max{bound}")


@dataclass(frozen=True)
class BackboneConfig:
    """The frozen vision-language backbone.

    ``name`` is ``"<library>:<model>"``: ``timm:eva02_large_patch14_clip_224``,
    ``open_clip:ViT-B-16``, ``open_clip:EffOWT-Tiny`` (our tiny VLM config).
    ``weights`` is a local file (safetensors, or ``.pt/.bin`` read with
    ``weights_only=True``; ``effowt:REL`` names a file shipped in the package), a
    Hugging Face Hub file ``hf-hub:ORG/NAME[:FILE]``, or for ``open_clip:`` backbones an
    open_clip pretrained tag (``laion2b_s34b_b88k``), fetched through the Hub's cache
    (:mod:`effowt.backbones.weights`); ``None`` means random initialisation (with a warning).
    ``taps`` are the indices of the transformer blocks whose outputs feed the side
    network (or, for the last one, the simple pyramid of the other modes).
    ``model_kwargs`` go to the library's constructor (tiny test models).
    ``dtype`` is the precision the frozen backbone runs in.
    """

    name: str = "timm:vit_tiny_patch16_224"
    weights: str | None = None
    taps: list[int] = field(default_factory=lambda: [1, 3, 5, 7, 9, 11])
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    dtype: BackboneDtype = "float32"

    def __post_init__(self) -> None:
        """Checks that need no model (tap ranges are checked against the built
        backbone's depth by the backbone)."""
        if not self.taps or sorted(set(self.taps)) != list(self.taps) or self.taps[0] < 0:
            raise ConfigError(f"model.backbone.taps={self.taps!r}: must be a non-empty, strictly increasing "
                              "list of block indices >= 0")


@dataclass(frozen=True)
class SideConfig:
    """The EffOWT side network (used in ``side`` mode only).

    ``reduction`` is r: the side width is ``embed_dim // r`` unless ``width`` is set.
    ``stage_taps`` says how many backbone taps (in order) feed each of the stages
    s4, s8, s16; their sum must equal ``len(backbone.taps)``. Each tap has its own
    ladder (``Linear(D -> C)``) and gate and is followed by ``depth_per_tap`` side
    blocks; ``stage_depths`` adds that many blocks per stage after the stage's last
    tap. The defaults (six taps as ``[4, 1, 1]``, blocks ``[1, 1, 0]`` per stage) fit
    the paper's budget (~1.3 % of EVA-02-L) and split (59/30/11 % over s4/s8/s16);
    see ``effowt.side.network``. ``sim_stages`` lists the stages whose token mixer is SIM
    (the others use self-attention); ``sim_pattern`` is ``lines`` (horizontal,
    vertical, diagonal, anti-diagonal), ``axial`` (horizontal + vertical),
    ``wide`` (lines widened to bands, meant for small maps) or ``dense`` (a full
    token-mixing MLP). ``sim_grid`` is the fixed token grid of the s4 stage's SIM
    (other stages scale it by their stride). ``hybrid=False`` removes every
    convolution (pure-Transformer ablation). ``init`` is ``prune`` (structural
    pruning of the backbone's weights, Ladder Side-Tuning style) or ``random``.
    ``gate_init`` is the gates' initial value ``g`` (on the backbone term), in (0, 1).
    ``output`` is ``replace`` (the heads read the side network's fused pyramid: the
    paper's layout) or ``residual`` (the heads read a linear pyramid of the
    backbone's last tap plus the fused side pyramid scaled per channel, the scale
    starting at ``residual_init``; with 0 the untrained model equals the head-only
    model with ``model.pyramid=linear``); see ``effowt.side.anchor``.

    Inference-cost switches (defaults keep the original computation):
    ``attention_window > 0`` restricts the s8/s16 self-attention to non-overlapping
    windows of that many tokens a side (0: global attention; changes the function).
    ``ladder_merge`` gates a stage's taps at the backbone's token resolution and
    resamples their sum once (needs ``depth_per_tap = 0``; the same function, fewer
    resampling passes). ``sim_project_first`` projects SIM's mixed maps on the grid
    before resampling them back (the same function, a smaller projection when the
    grid is coarser than the map). See ``effowt.side.network``.
    """

    reduction: int = 4
    width: int | None = None
    stage_taps: list[int] = field(default_factory=lambda: [4, 1, 1])
    stage_depths: list[int] = field(default_factory=lambda: [1, 1, 0])
    hybrid: bool = True
    sim_stages: list[Stage] = field(default_factory=lambda: ["s4"])
    sim_pattern: SimPattern = "lines"
    sim_grid: int = 56
    sim_band: int = 1
    gates: bool = True
    gate_temperature: float = 0.1
    gate_init: float = 0.5
    output: SideOutput = "replace"
    residual_init: float = 0.0
    fusion: bool = True
    init: SideInit = "prune"
    num_heads: int = 4
    mlp_ratio: float = 2.0
    depth_per_tap: int = 0
    grad_checkpointing: bool = False
    attention_window: int = 0
    ladder_merge: bool = False
    sim_project_first: bool = False

    def __post_init__(self) -> None:
        """Checks of the side network's own fields; that ``stage_taps`` hands out the
        backbone's taps is checked by :class:`ModelConfig` (:func:`check_side_fits`)."""
        p = "model.side"
        for key in ("stage_taps", "stage_depths"):
            value = getattr(self, key)
            if len(value) != len(STAGES) or any(n < 0 for n in value):
                raise ConfigError(f"{p}.{key}={value!r}: must be {len(STAGES)} counts >= 0 ({', '.join(STAGES)})")
        if self.width is not None:
            _check_range(f"{p}.width", self.width, 1)
        for key in ("reduction", "num_heads", "sim_grid"):
            _check_range(f"{p}.{key}", getattr(self, key), 1)
        for key in ("depth_per_tap", "sim_band", "attention_window"):
            _check_range(f"{p}.{key}", getattr(self, key), 0)
        if self.ladder_merge and self.depth_per_tap:
            raise ConfigError(f"{p}.ladder_merge=true needs {p}.depth_per_tap=0 (no block between "
                              f"a stage's taps), got {self.depth_per_tap}")
        _check_range(f"{p}.gate_temperature", self.gate_temperature, 0, low_open=True)
        _check_range(f"{p}.gate_init", self.gate_init, 0, 1, low_open=True, high_open=True)
        _check_choice(f"{p}.output", self.output, get_args(SideOutput))
        _check_range(f"{p}.mlp_ratio", self.mlp_ratio, 0, low_open=True)
        for stage in self.sim_stages:
            _check_choice(f"{p}.sim_stages", stage, STAGES, what="stage")
            if (self.sim_grid * 4) % STAGE_STRIDES[stage]:
                raise ConfigError(f"{p}.sim_grid={self.sim_grid}: does not scale to stage {stage} "
                                  f"(sim_grid * 4 / {STAGE_STRIDES[stage]} must be a whole number)")
        _check_choice(f"{p}.sim_pattern", self.sim_pattern, get_args(SimPattern))
        _check_choice(f"{p}.init", self.init, get_args(SideInit))


def check_side_fits(cfg: SideConfig, num_taps: int, strides: list[int]) -> None:
    """ConfigError unless ``cfg.stage_taps`` hands out exactly the ``num_taps`` backbone
    taps and the pyramid ``strides`` are >= 4 (the side stages start at 1/4). Run by
    :class:`ModelConfig` and by the side network, which gets ``num_taps`` from its backbone."""
    if sum(cfg.stage_taps) != num_taps:
        raise ConfigError(
            f"model.side.stage_taps={cfg.stage_taps!r} hands out {sum(cfg.stage_taps)} taps but "
            f"model.backbone.taps has {num_taps}; they must be equal"
        )
    if any(s < 4 for s in strides):
        raise ConfigError(f"model.head.strides={strides!r}: the side network needs strides >= 4")


@dataclass(frozen=True)
class HeadConfig:
    """Feature pyramid fed to the heads, the detection head and the ReID head.

    ``channels`` is the pyramid width (a multiple of 32: FCOS uses GroupNorm(32)).
    ``strides`` are the pyramid levels given to FCOS. ``det_convs`` is the depth of
    each FCOS tower. The ReID head pools ``reid_roi x reid_roi`` with RoIAlign from
    the stride-``reid_stride`` level into a ``reid_dim`` L2-normalised embedding.
    ``reid_temperature`` is the temperature of the contrastive ReID loss (the model
    computes that loss, so it reads it from here).
    """

    channels: int = 64
    strides: list[int] = field(default_factory=lambda: [8, 16, 32])
    det_convs: int = 2
    score_thresh: float = 0.05
    nms_thresh: float = 0.6
    detections_per_img: int = 300
    topk_candidates: int = 1000
    center_sampling_radius: float = 1.5
    reid_stride: int = 8
    reid_roi: int = 4
    reid_hidden: int = 256
    reid_dim: int = 128
    reid_temperature: float = 0.07

    def __post_init__(self) -> None:
        p = "model.head"
        if self.channels <= 0 or self.channels % 32:
            raise ConfigError(f"{p}.channels={self.channels}: must be a positive multiple of 32 (GroupNorm(32))")
        powers_of_two = all(s >= 1 and not s & (s - 1) for s in self.strides)
        if not self.strides or sorted(set(self.strides)) != list(self.strides) or not powers_of_two:
            raise ConfigError(f"{p}.strides={self.strides!r}: must be non-empty, strictly increasing powers of two")
        if self.reid_stride not in self.strides:
            raise ConfigError(f"{p}.reid_stride={self.reid_stride}: must be one of {p}.strides {self.strides}")
        _check_range(f"{p}.det_convs", self.det_convs, 0)
        for key in ("score_thresh", "nms_thresh"):
            _check_range(f"{p}.{key}", getattr(self, key), 0, 1)
        for key in ("detections_per_img", "topk_candidates", "reid_roi", "reid_hidden", "reid_dim"):
            _check_range(f"{p}.{key}", getattr(self, key), 1)
        _check_range(f"{p}.center_sampling_radius", self.center_sampling_radius, 0)
        _check_range(f"{p}.reid_temperature", self.reid_temperature, 0, low_open=True)


@dataclass(frozen=True)
class LoraConfig:
    """LoRA on the backbone (``lora`` mode), injected with peft.

    ``target_modules=None`` picks the attention projections of the backbone family.
    """

    rank: int = 8
    alpha: float = 16.0
    dropout: float = 0.0
    target_modules: list[str] | None = None

    def __post_init__(self) -> None:
        """Checks of the numbers (target modules are checked when injected)."""
        _check_range("model.lora.rank", self.rank, 1)
        _check_range("model.lora.alpha", self.alpha, 0, low_open=True)
        _check_range("model.lora.dropout", self.dropout, 0, 1, high_open=True)


@dataclass(frozen=True)
class ModelConfig:
    """The whole model: backbone, transfer mode, neck and heads. ``image_size`` is
    the longest side frames are resized to; training crops (``data.image_size``)
    must have the same size. ``pyramid`` is the neck of the ``head``, ``full`` and
    ``lora`` modes: ``simple`` (ViTDet's simple feature pyramid), ``linear`` (one
    linear map of the last tap, resampled per level: the base path of
    ``model.side.output=residual``) or ``fpn`` (torchvision's FPN over taps of
    different strides: CNN backbones)."""

    mode: TransferMode = "side"
    pyramid: Pyramid = "simple"
    image_size: int = 224
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    side: SideConfig = field(default_factory=SideConfig)
    head: HeadConfig = field(default_factory=HeadConfig)
    lora: LoraConfig = field(default_factory=LoraConfig)

    def __post_init__(self) -> None:
        """Its own fields; the sections checked themselves. In ``side`` mode (the one
        that builds a side network) also that the side network fits the backbone's
        taps and the head's strides (:func:`check_side_fits`)."""
        _check_choice("model.mode", self.mode, TRANSFER_MODES, what="transfer mode")
        _check_choice("model.pyramid", self.pyramid, get_args(Pyramid))
        _check_range("model.image_size", self.image_size, 32)
        if self.mode == "side":
            check_side_fits(self.side, len(self.backbone.taps), self.head.strides)


@dataclass(frozen=True)
class DataConfig:
    """Two-view training data augmentation (static images as pseudo-clips).
    ``image_size`` is the side of the square crops; it must equal ``model.image_size``."""

    image_size: int = 224
    scale: list[float] = field(default_factory=lambda: [0.5, 1.0])
    ratio: list[float] = field(default_factory=lambda: [0.75, 1.333])
    hflip: float = 0.5
    color_jitter: float = 0.3
    min_box_size: float = 2.0
    num_workers: int = 0

    def __post_init__(self) -> None:
        _check_range("data.image_size", self.image_size, 32)
        _check_pair("data.scale", self.scale, 0.0, 1.0)
        _check_pair("data.ratio", self.ratio, 0.0, None)
        _check_range("data.hflip", self.hflip, 0, 1)
        for key in ("color_jitter", "min_box_size", "num_workers"):
            _check_range(f"data.{key}", getattr(self, key), 0)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation. ``lr`` is the learning rate of the parts that are new (side
    network, pyramid, heads, LoRA); pretrained backbone weights that train
    (``full`` mode) get ``lr * backbone_lr_mult`` (see
    :func:`effowt.training.optim.param_groups`). ``schedule`` is ``cosine`` or ``step``; ``amp`` is ``none``,
    ``bf16`` or ``fp16`` (fp16/bf16 autocast only on CUDA). ``batch_size`` is images
    per process and micro-batch (each gives two views); ``accumulate`` micro-batches
    make one optimizer step. ``global_batch``, when set, is the images of one
    optimizer step over all processes and micro-batches, and replaces ``batch_size``:
    each process then takes ``global_batch / (WORLD_SIZE * accumulate)`` per
    micro-batch (it must divide evenly; see
    :func:`effowt.training.optim.per_process_batch`), so a recipe keeps its batch
    on any number of GPUs. ``clip_grad <= 0`` disables clipping.
    ``ddp_find_unused`` is DistributedDataParallel's ``find_unused_parameters``
    (needed only if some trainable parameter gets no gradient in a step).
    ``snapshot_every > 0`` also keeps the trainable weights of every multiple of
    that many steps as ``step<N>.safetensors`` (to score a run along training).
    A checkpoint is written every ``checkpoint_every`` steps and also whenever
    ``checkpoint_every_s`` seconds have passed since the last one (0: by steps only),
    so an interrupt loses at most a few minutes."""

    batch_size: int = 4
    global_batch: int | None = None
    max_steps: int = 1000
    lr: float = 2e-4
    backbone_lr_mult: float = 0.1
    weight_decay: float = 0.05
    warmup_steps: int = 50
    schedule: Schedule = "cosine"
    step_milestones: list[float] = field(default_factory=lambda: [0.75, 0.9])
    clip_grad: float = 1.0
    accumulate: int = 1
    amp: AmpMode = "none"
    seed: int = 0
    log_every: int = 10
    checkpoint_every: int = 200
    checkpoint_every_s: float = 300.0
    snapshot_every: int = 0
    det_weight: float = 1.0
    reid_weight: float = 1.0
    reid_aux_weight: float = 0.5
    ddp_find_unused: bool = False

    def __post_init__(self) -> None:
        for key in ("batch_size", "max_steps", "accumulate", "log_every", "checkpoint_every"):
            _check_range(f"train.{key}", getattr(self, key), 1)
        for key in ("warmup_steps", "snapshot_every", "checkpoint_every_s"):
            _check_range(f"train.{key}", getattr(self, key), 0)
        if self.global_batch is not None:
            _check_range("train.global_batch", self.global_batch, 1)
        _check_range("train.lr", self.lr, 0, low_open=True)
        _check_range("train.backbone_lr_mult", self.backbone_lr_mult, 0, low_open=True)
        _check_range("train.weight_decay", self.weight_decay, 0)
        for key in ("det_weight", "reid_weight", "reid_aux_weight"):
            _check_range(f"train.{key}", getattr(self, key), 0)
        _check_choice("train.schedule", self.schedule, get_args(Schedule))
        _check_choice("train.amp", self.amp, get_args(AmpMode))
        if any(not 0.0 <= m <= 1.0 for m in self.step_milestones):
            raise ConfigError(f"train.step_milestones={self.step_milestones!r}: must be fractions of max_steps "
                              "in [0, 1]")


@dataclass(frozen=True)
class TrackerConfig:
    """Online association thresholds (see ``effowt.tracking.association``).

    ``det_thresh``: detections scoring below it are dropped before anything else.
    ``nms_thresh``: IoU of class-agnostic NMS among the remaining detections.
    ``max_dets``: at most this many detections (highest scores) are tracked and
    reported per frame. ``init_thresh``: an unmatched detection starts a new track
    only with a score at least this. ``match_thresh``: minimum bi-softmax (QDTrack)
    similarity for a detection-track pair. ``temperature``: the embedding dot
    products are divided by it before the bi-softmax (match the ReID loss's
    temperature). ``min_cosine``: minimum raw cosine similarity of a pair (the
    bi-softmax alone is 1.0 for a lone detection and a lone track, however
    different). ``iou_gate``: a pair whose IoU with the track's box is below it
    cannot match, unless the track is lost (0 disables the gate). ``motion``:
    gate against a constant-velocity prediction of the track's box instead of its
    last box. ``momentum``: weight of the new detection's embedding in the track's
    embedding, ``e = (1 - momentum) * e + momentum * new`` (QDTrack's convention).
    ``max_lost``: a track unmatched for more than this many consecutive frames is
    deleted; until then it is lost and can be re-found by appearance.
    """

    det_thresh: float = 0.3
    init_thresh: float = 0.5
    match_thresh: float = 0.5
    iou_gate: float = 0.0
    nms_thresh: float = 0.7
    momentum: float = 0.8
    max_lost: int = 10
    max_dets: int = 300
    temperature: float = 0.07
    min_cosine: float = 0.3
    motion: bool = True

    def __post_init__(self) -> None:
        for key in ("det_thresh", "init_thresh", "match_thresh", "iou_gate", "nms_thresh", "momentum"):
            _check_range(f"tracker.{key}", getattr(self, key), 0, 1)
        _check_range("tracker.min_cosine", self.min_cosine, -1, 1)
        _check_range("tracker.temperature", self.temperature, 0, low_open=True)
        _check_range("tracker.max_lost", self.max_lost, 0)
        _check_range("tracker.max_dets", self.max_dets, 1)


@dataclass(frozen=True)
class EffOWTConfig:
    """Everything a run needs; one YAML preset fills it."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)

    def __post_init__(self) -> None:
        """What ties the sections together (each section checked itself)."""
        if self.data.image_size != self.model.image_size:
            raise ConfigError(
                f"data.image_size={self.data.image_size}: must equal model.image_size={self.model.image_size} "
                "(the model is trained on the crops it tracks with); set both"
            )


def preset_names() -> list[str]:
    """Names of the YAML presets shipped in ``effowt/configs``."""
    folder = resources.files("effowt") / "configs"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_config(name_or_path: str, overrides: list[str] | tuple[str, ...] = ()) -> EffOWTConfig:
    """Load a preset by name (``paper``, ``clip-b16``, ``mini``) or a YAML file path,
    then apply ``section.key=value`` overrides (values parsed as YAML)."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found")
        text = path.read_text()
        source = str(path)
    else:
        preset = resources.files("effowt") / "configs" / f"{name_or_path}.yaml"
        if not preset.is_file():
            raise ConfigError(
                f"unknown config {name_or_path!r}: not a file and not a preset "
                f"(presets: {', '.join(preset_names())})"
            )
        text = preset.read_text()
        source = f"preset {name_or_path}"
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{source}: invalid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: top level must be a mapping")
    return apply_overrides(from_dict(EffOWTConfig, data, source), overrides)


def parse_overrides(overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """``["a.b=v", ...]`` -> ``{"a.b": v, ...}``, each value parsed as YAML, once
    (what :func:`apply_values` takes)."""
    values = {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ConfigError(f"override {item!r} is not of the form key=value")
        values[key.strip()] = yaml.safe_load(raw)
    return values


def apply_overrides(cfg: EffOWTConfig, overrides: list[str] | tuple[str, ...]) -> EffOWTConfig:
    """A checked copy of ``cfg`` with ``a.b.c=value`` overrides applied (values parsed as YAML)."""
    return apply_values(cfg, parse_overrides(overrides))


def apply_values(cfg: C, values: Mapping[str, Any], prefix: str = "") -> C:
    """A copy of config dataclass ``cfg`` with ``values`` (dotted key below ``cfg`` ->
    parsed value) set, checked as a loaded config is: unknown keys, types, then each
    section's ``__post_init__``. ``prefix`` is ``cfg``'s place in the whole config
    (``"tracker."`` for a :class:`TrackerConfig`), so that errors name the full key."""
    if not values:
        return cfg
    data = to_dict(cfg)
    for key, value in values.items():
        *parents, last = key.split(".")
        node: Any = data
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict) or last not in node:
            name = prefix + key
            raise ConfigError(f"override '{name}={short_repr(value)}': unknown key {name!r}")
        node[last] = value
    return from_dict(type(cfg), data, "overrides", prefix)


def config_from_dict(data: dict[str, Any], source: str) -> EffOWTConfig:
    """:class:`EffOWTConfig` from a plain nested dict (e.g. :func:`to_dict`'s), checked;
    ``source`` names where the dict came from in errors."""
    return from_dict(EffOWTConfig, data, source)


def parse_tracker_overrides(overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """``["tracker.det_thresh=0.2", ...]`` -> ``{"det_thresh": 0.2, ...}``, checked as
    :func:`apply_overrides` checks them (unknown keys, types, ranges) plus: only
    ``tracker.*`` keys."""
    outside = [item for item in overrides if not item.strip().startswith("tracker.")]
    if outside:
        raise ConfigError(f"override {outside[0]!r}: only tracker.KEY=VALUE settings apply when tracking "
                          f"(valid keys: {', '.join(f'tracker.{k}' for k in TrackerConfig.__dataclass_fields__)})")
    values = {key.removeprefix("tracker."): value for key, value in parse_overrides(overrides).items()}
    tracker = apply_values(TrackerConfig(), values, "tracker.")
    return {key: getattr(tracker, key) for key in values}


def with_tracker_overrides(cfg: EffOWTConfig, overrides: dict[str, Any]) -> EffOWTConfig:
    """``cfg`` with tracker ``overrides`` (field -> value, as :func:`parse_tracker_overrides`
    returns them) applied and checked by :func:`apply_values` (ConfigError naming the setting)."""
    return dataclasses.replace(cfg, tracker=apply_values(cfg.tracker, overrides, "tracker."))


def from_dict(cls: type, data: dict[str, Any], source: str, prefix: str = "") -> Any:
    """Build dataclass ``cls`` from ``data``; unknown keys and wrong types are errors."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: {prefix.rstrip('.') or 'config'} must be a mapping")
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(
            f"{source}: unknown key(s) {', '.join(prefix + k for k in unknown)} "
            f"(valid: {', '.join(sorted(names))})"
        )
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _coerce(hints[name], value, source, prefix + name)
    return cls(**kwargs)


def short_repr(value: Any) -> str:
    """``repr(value)`` cut to about 80 characters (a few items per level, two levels):
    what an error line shows of a value, however large (a YAML anchor bomb)."""
    return _SHORT.repr(value)


def _coerce(hint: Any, value: Any, source: str, key: str) -> Any:
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, source, key + ".")
    origin = get_origin(hint)
    args = get_args(hint)
    if origin is Literal:
        _check_choice(key, value, args, f"{source}: ")
        return value
    if value is None:
        if type(None) in args:
            return None
        raise ConfigError(f"{source}: {key} may not be null")
    if args and type(None) in args:  # Optional[X]
        inner = [a for a in args if a is not type(None)][0]
        return _coerce(inner, value, source, key)
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{source}: {key} must be a list, got {short_repr(value)}")
        return [_coerce(args[0], v, source, key) for v in value] if args else list(value)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: {key} must be a mapping, got {short_repr(value)}")
        return dict(value)
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return _finite(float(value), source, key)
    if hint is float and isinstance(value, str):  # YAML 1.1 reads "1e-3" as a string
        try:
            number = float(value)
        except ValueError:
            pass
        else:
            return _finite(number, source, key)
    if hint is Any or (isinstance(hint, type) and isinstance(value, hint)):
        if hint is int and isinstance(value, bool):
            raise ConfigError(f"{source}: {key} must be int, got {short_repr(value)}")
        return value
    raise ConfigError(f"{source}: {key} must be {getattr(hint, '__name__', hint)}, got {short_repr(value)}")


def _finite(value: float, source: str, key: str) -> float:
    """``value`` when finite; ConfigError for NaN and +-inf (every float setting of a
    config passes here, so no caller needs its own check)."""
    if not math.isfinite(value):
        raise ConfigError(f"{source}: {key} must be a finite number, got {value!r}")
    return value


def to_dict(cfg: Any) -> dict[str, Any]:
    """Plain nested dict of a config dataclass (YAML/JSON serialisable)."""
    return dataclasses.asdict(cfg)


def save_config(cfg: EffOWTConfig, path: str | os.PathLike) -> None:
    """Write the resolved config as YAML, atomically."""
    atomic_write_text(path, yaml.safe_dump(to_dict(cfg), sort_keys=False))
