"""The EffOWT model: transform -> frozen backbone -> neck (side network or simple pyramid) -> heads."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from effowt.backbones import FrozenBackbone
from effowt.errors import WeightsError
from effowt.heads import DetectionHead, ReIDHead, reid_losses
from effowt.models.transform import ImageTransform

MAX_LISTED_KEYS = 5


class EffOWT(nn.Module):
    """Open-world detector + ReID embedder built on a frozen vision-language backbone.

    ``forward`` is the model, composed here once: :attr:`transform` (resize, normalise,
    pad) -> :meth:`features` (backbone -> neck) -> :meth:`heads` (or :meth:`losses`)
    -> ``transform.postprocess`` (boxes back to the input's pixels). :meth:`embed` takes
    the same path for boxes given from outside. Stages are timed by hooks on the
    modules of :meth:`stage_modules` (:class:`effowt.timing.ModuleTimer`).

    Args:
        mode: transfer mode (``side``, ``head``, ``full``, ``lora``), for messages and
            :meth:`trainable_state_dict`.
        backbone: the backbone adapter, already frozen or unfrozen for ``mode``.
        neck_name: ``"side"`` or ``"pyramid"``, the attribute the neck is stored under.
        neck: module ``(x, taps) -> OrderedDict {"p<s>": [B, C, H/s, W/s]}``.
        detector, reid: the heads.
        reid_temperature: temperature of the contrastive ReID loss.
        transform: the input transform (its ``image_size`` is the input's longest side).

    Attributes:
        neck_dtype: the precision the neck runs in (float32; see :meth:`set_inference_precision`).
        backbone_grad: run the backbone with autograd (``full``/``lora``). When False
            the backbone runs under ``torch.no_grad()``: no activation is kept for
            backward, which is where the side network's memory saving comes from.
    """

    def __init__(
        self,
        mode: str,
        backbone: FrozenBackbone,
        neck_name: str,
        neck: nn.Module,
        detector: DetectionHead,
        reid: ReIDHead,
        reid_temperature: float,
        transform: ImageTransform,
    ) -> None:
        super().__init__()
        self.mode = mode
        self.transform = transform
        self.backbone = backbone
        self.neck_name = neck_name
        self.add_module(neck_name, neck)
        self.detector = detector
        self.reid = reid
        self.reid_temperature = reid_temperature
        self.backbone_grad = mode in ("full", "lora")
        self.neck_dtype = torch.float32

    def stage_modules(self) -> dict[str, nn.Module]:
        """The modules whose calls are the stages of :meth:`forward`, by timing name:
        ``preprocess`` (:attr:`transform`), ``backbone``, ``neck``; the heads are the rest."""
        return {"preprocess": self.transform, "backbone": self.backbone, "neck": getattr(self, self.neck_name)}

    def features(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        """Feature pyramid ``{"p8": FloatTensor[B, C, H'/8, W'/8], ...}`` (float32) of a
        transformed batch ``x`` [B, 3, H', W']: the backbone's taps (under ``no_grad``
        unless :attr:`backbone_grad`), then the neck (side network or pyramid) in
        :attr:`neck_dtype`."""
        with torch.set_grad_enabled(self.backbone_grad and torch.is_grad_enabled()):
            taps = self.backbone(x)
        pyramid = getattr(self, self.neck_name)(x.to(self.neck_dtype), [t.to(self.neck_dtype) for t in taps])
        return OrderedDict((k, v.float()) for k, v in pyramid.items())

    def set_inference_precision(self, dtype: torch.dtype) -> None:
        """Run the frozen backbone and the neck in ``dtype`` (their weights are cast; the
        heads stay float32 and receive a float32 pyramid). For inference: a model set to
        bfloat16 / float16 is not meant to be trained or saved."""
        self.backbone.to(dtype)
        self.backbone.dtype = dtype
        getattr(self, self.neck_name).to(dtype)
        self.neck_dtype = dtype

    def heads(
        self, pyramid: OrderedDict[str, torch.Tensor], image_sizes: list[tuple[int, int]]
    ) -> list[dict[str, torch.Tensor]]:
        """Detections with embeddings, per image: ``{"boxes": FloatTensor[N, 4]
        [x1, y1, x2, y2] px in the transformed, unpadded image (clipped to ``image_sizes``),
        "scores": [N], "embeddings": [N, E] L2-normalised}``."""
        dets = self.detector.detect(pyramid, image_sizes)
        embeddings = self.reid(pyramid, [d["boxes"] for d in dets])
        return [{**d, "embeddings": e} for d, e in zip(dets, embeddings)]

    def losses(
        self,
        pyramid: OrderedDict[str, torch.Tensor],
        image_sizes: list[tuple[int, int]],
        targets: list[dict[str, torch.Tensor]],
    ) -> dict[str, torch.Tensor]:
        """Unweighted losses ``loss_cls``, ``loss_box``, ``loss_ctr``, ``loss_reid``,
        ``loss_reid_aux``. ReID RoIs are the ground-truth boxes."""
        device = pyramid[next(iter(pyramid))].device
        boxes = [t["boxes"].to(device=device, dtype=torch.float32).reshape(-1, 4) for t in targets]
        losses = self.detector.losses(pyramid, image_sizes, boxes)
        embeddings = torch.cat(self.reid(pyramid, boxes))
        ids = torch.cat([t["instance_ids"].to(device=device, dtype=torch.int64).reshape(-1) for t in targets])
        image_index = torch.cat(
            [torch.full((len(b),), i, dtype=torch.int64, device=device) for i, b in enumerate(boxes)]
        )
        losses["loss_reid"], losses["loss_reid_aux"] = reid_losses(embeddings, ids, image_index, self.reid_temperature)
        return losses

    def forward(
        self, images: torch.Tensor, targets: list[dict[str, torch.Tensor]] | None = None
    ) -> dict[str, torch.Tensor] | list[dict[str, torch.Tensor]]:
        """``images``: FloatTensor[B, 3, H, W] RGB in [0, 1], any size (resized by :attr:`transform`).

        Training (``self.training``): loss dict, see :meth:`losses`; ``targets`` is a
        list of B dicts ``{"boxes": FloatTensor[N, 4] xyxy px of the images,
        "instance_ids": LongTensor[N]}``. Eval: detections as :meth:`heads` gives them,
        with boxes in the images' pixels (clipped to them)."""
        x, image_sizes, targets = self.transform(images, targets)
        pyramid = self.features(x)
        if not self.training:
            return self.transform.postprocess(self.heads(pyramid, image_sizes), [tuple(images.shape[-2:])] * len(x))
        if targets is None or len(targets) != len(x):
            got = "None" if targets is None else f"{len(targets)} targets"
            raise ValueError(f"EffOWT in training mode needs one target dict per image ({len(x)}); got {got}")
        return self.losses(pyramid, image_sizes, targets)

    def embed(self, images: torch.Tensor, boxes: list[torch.Tensor]) -> list[torch.Tensor]:
        """ReID embeddings of given boxes: per image FloatTensor[N, E], L2-normalised.

        Args:
            images: FloatTensor[B, 3, H, W] RGB in [0, 1], as for :meth:`forward`.
            boxes: per image FloatTensor[N, 4] ``[x1, y1, x2, y2]`` px of the images
                (N may be 0); RoIAlign on the level the model's own detections use.
        """
        x, _, rois = self.transform(images, [{"boxes": b} for b in boxes])
        return self.reid(self.features(x), [r["boxes"] for r in rois])

    def trainable_parameters(self) -> list[nn.Parameter]:
        """Parameters with ``requires_grad``: what the optimizer gets."""
        return [p for p in self.parameters() if p.requires_grad]

    def named_trainable_parameters(self) -> list[tuple[str, nn.Parameter]]:
        """``(name, parameter)`` of :meth:`trainable_parameters` (names tell the
        optimizer which are pretrained backbone weights)."""
        return [(n, p) for n, p in self.named_parameters() if p.requires_grad]

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """What a checkpoint must hold: every trainable parameter and every buffer
        outside the frozen backbone (``full`` mode: the whole state dict)."""
        trainable = {n for n, p in self.named_parameters() if p.requires_grad}
        return {
            k: v.detach()
            for k, v in self.state_dict().items()
            if self.mode == "full" or k in trainable or not k.startswith("backbone.")
        }

    def load_trainable_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Load a :meth:`trainable_state_dict`; strict: missing, unexpected, mis-shaped
        or mis-typed (another dtype) keys raise WeightsError listing the first few."""
        own = self.trainable_state_dict()
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        mismatched = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
        retyped = [k for k in own if k in state and k not in mismatched and state[k].dtype != own[k].dtype]
        problems = []
        for label, keys in (("missing keys", missing), ("unexpected keys", unexpected)):
            if keys:
                problems.append(f"{label}: {_few(keys)}")
        if mismatched:
            problems.append(
                "shape mismatch: "
                + _few([f"{k} (checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)})" for k in mismatched])
            )
        if retyped:
            problems.append(
                "dtype mismatch: "
                + _few([f"{k} (checkpoint {state[k].dtype} vs model {own[k].dtype})" for k in retyped])
            )
        if problems:
            raise WeightsError(
                f"trainable weights do not fit this model (mode {self.mode!r}, backbone "
                f"{self.backbone.name!r}): " + "; ".join(problems)
            )
        self.load_state_dict(state, strict=False)

    def backbone_identity(self) -> dict[str, str | None]:
        """``{"name", "weights_sha256"}`` of the backbone, recorded in checkpoints."""
        return self.backbone.identity()


def _few(items: list[str]) -> str:
    more = f" ... (+{len(items) - MAX_LISTED_KEYS} more)" if len(items) > MAX_LISTED_KEYS else ""
    return ", ".join(items[:MAX_LISTED_KEYS]) + more
