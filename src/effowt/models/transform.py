"""``ImageTransform``: the one place a batch of images becomes the model's input and
the model's boxes go back to the images' pixels (torchvision's ``GeneralizedRCNNTransform``
for EffOWT).

Forward: resize so the longest side is ``image_size`` (aspect kept; bilinear with
antialiasing, clamped to [0, 1]; nothing happens when the size already matches, as for
training crops), normalise with the backbone's mean/std, zero-pad bottom/right to a
multiple of ``pad_multiple``; boxes given with the images are scaled with them.
:meth:`ImageTransform.postprocess` maps detections back and clips them to the image.
Boxes are ``[x1, y1, x2, y2]`` pixels throughout.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import clip_boxes_to_image

Size = tuple[int, int]
Targets = list[dict[str, torch.Tensor]]


class ImageTransform(nn.Module):
    """Resize -> normalise -> pad, and boxes back (see the module docstring).

    Args:
        image_size: the longest side of the model's input, px.
        mean, std: per-channel RGB statistics of the backbone (on [0, 1] pixels).
        pad_multiple: the padded height and width are multiples of it (32, or the
            largest pyramid stride).
    """

    def __init__(self, image_size: int, mean: Sequence[float], std: Sequence[float], pad_multiple: int) -> None:
        super().__init__()
        self.image_size = int(image_size)
        self.pad_multiple = int(pad_multiple)
        self.register_buffer("pixel_mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)

    def scale(self, size: Size) -> float:
        """Input px per image px for an image of ``size`` (h, w): longest side -> ``image_size``."""
        return self.image_size / max(size)

    def forward(self, images: torch.Tensor, targets: Targets | None = None
                ) -> tuple[torch.Tensor, list[Size], Targets | None]:
        """The model's input.

        Args:
            images: FloatTensor[B, 3, H, W], RGB in [0, 1].
            targets: None, or B dicts with ``boxes`` FloatTensor[N, 4] in the images' pixels
                (other keys are passed through).

        Returns:
            ``(x, image_sizes, targets)``: x FloatTensor[B, 3, H', W'] (normalised, padded),
            the (h, w) of each image resized and before padding, and the targets with
            their boxes float32 in the resized pixels (None when none were given).
        """
        _check_images(images)
        original = (images.shape[-2], images.shape[-1])
        scale = self.scale(original)
        size = (max(1, round(original[0] * scale)), max(1, round(original[1] * scale)))
        x = images.float()
        if size != original:
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True).clamp_(0.0, 1.0)
            targets = None if targets is None else [{**t, "boxes": _scaled(t["boxes"], scale)} for t in targets]
        x = (x - self.pixel_mean) / self.pixel_std
        m = self.pad_multiple
        return F.pad(x, (0, -x.shape[-1] % m, 0, -x.shape[-2] % m)), [size] * len(x), targets

    def postprocess(self, detections: Targets, original_sizes: list[Size]) -> Targets:
        """Detections with their ``boxes`` (FloatTensor[N, 4] in the resized pixels) divided
        by each image's :meth:`scale` and clipped to its ``original_sizes`` (h, w)."""
        return [{**det, "boxes": clip_boxes_to_image(det["boxes"] / det["boxes"].new_tensor(self.scale(size)), size)}
                for det, size in zip(detections, original_sizes)]


def _scaled(boxes: torch.Tensor, scale: float) -> torch.Tensor:
    boxes = boxes.float()
    return boxes * boxes.new_tensor(scale)


def _check_images(images: object) -> None:
    if not isinstance(images, torch.Tensor):
        raise ValueError(f"EffOWT expects images as a float tensor [B, 3, H, W]; got {type(images).__name__}")
    if images.dim() != 4 or images.shape[1] != 3 or not images.is_floating_point():
        got = f"{images.dtype} tensor of shape {tuple(images.shape)}"
        raise ValueError(f"EffOWT expects images as a float tensor of shape [B, 3, H, W] in [0, 1]; got {got}")
