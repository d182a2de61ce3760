"""Where an EffOWT forward's time goes: exclusive time per part (``effowt bench speed --profile``).

Forward hooks on the model's parts time each call; a part's *exclusive* time is
its own time minus that of the timed parts it calls, so the parts add up to the
stages they belong to without counting anything twice::

    side network   stem | s4/s8/s16: ladders (LayerNorm + Linear), ladder resampling,
                   gates, dw-conv, SIM or attention, MLP, block norms + residuals,
                   downsampler, stage glue (the rest of the stage; with ladder_merge: its ladders
                   and gates, "ladders + gates (merged)") | fusion | output
    heads          FCOS towers | ReID RoIAlign + normalise | ReID MLP
                   | FCOS decode + top-k + NMS (the heads stage minus the above)

Part names carry the stage (``s4 SIM``, ``s8 attention``); :func:`by_layer_type`
sums them over stages. CUDA is synchronised around every timed part, so profile
only when asked. The hooks also count the FCOS candidates that reach NMS (per
level ``min(topk_candidates, #scores > score_thresh)``, torchvision's rule).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch is imported when a profile is taken, not with `effowt bench speed --help`
    import torch
    from torch import nn

    from effowt.side.blocks import SideBlock

from effowt.timing import ModuleTimer

HEADS_REST = "FCOS decode + top-k + NMS"
SIDE_REST = "side glue (forward, casts)"


def _mixer_name(block: SideBlock) -> str:
    from effowt.side.sim import SparseInteractionMLP

    return "SIM" if isinstance(block.mixer, SparseInteractionMLP) else "attention"


def model_parts(model: nn.Module) -> list[tuple[str, str, nn.Module]]:
    """``(stage, part name, module)`` of every part :class:`ModuleProfiler` times: the
    side network's (when the model has one) and the heads'."""
    from torch import nn

    from effowt.side.blocks import ConvResidual, SideBlock
    from effowt.side.layers import Mlp
    from effowt.side.network import MergedSideStage

    parts: list[tuple[str, str, nn.Module]] = []
    side = getattr(model, "side", None)
    if side is not None:
        parts.append(("neck", "stem", side.stem))
        for name, stage in side.stages.items():
            merged = isinstance(stage, MergedSideStage)  # its ladders and gates run inside its forward
            parts.append(("neck", f"{name} ladders + gates (merged)" if merged else f"{name} stage glue", stage))
            if not isinstance(stage.downsample, nn.Identity):
                parts.append(("neck", f"{name} downsampler", stage.downsample))
            for unit in stage.units:
                parts += [("neck", f"{name} ladders", unit.connection),
                          ("neck", f"{name} ladder resampling", unit.connection.resample),
                          ("neck", f"{name} gates", unit.gate)]
            for module in stage.modules():
                if isinstance(module, SideBlock):
                    parts.append(("neck", f"{name} block norms + residuals", module))
                    parts.append(("neck", f"{name} {_mixer_name(module)}", module.mixer))
                elif isinstance(module, ConvResidual):
                    parts.append(("neck", f"{name} dw-conv", module))
                elif isinstance(module, Mlp):
                    parts.append(("neck", f"{name} MLP", module))
        parts += [("neck", "fusion", side.fusion), ("neck", "output", side.output)]
    parts += [("heads", "FCOS towers", model.detector.fcos.head),
              ("heads", "ReID RoIAlign + normalise", model.reid), ("heads", "ReID MLP", model.reid.mlp)]
    return parts


class ModuleProfiler(ModuleTimer):
    """Exclusive seconds per part name of :func:`model_parts`, accumulated while attached
    (a context manager; :class:`effowt.timing.ModuleTimer`).

    ``sync`` runs before every clock read (``torch.cuda.synchronize`` on CUDA).
    ``candidates`` collects, per detected image, how many FCOS candidates reach NMS.
    """

    def __init__(self, model: nn.Module, sync: Callable[[], None] = lambda: None) -> None:
        self.parts = model_parts(model)
        super().__init__([(name, module) for _, name, module in self.parts], sync)
        self.stage_of = {name: stage for stage, name, _ in self.parts}
        self.candidates: list[int] = []
        fcos = model.detector.fcos
        self._towers, self._topk, self._thresh = fcos.head, fcos.topk_candidates, fcos.score_thresh

    def __enter__(self) -> ModuleProfiler:
        super().__enter__()
        self._handles.append(self._towers.register_forward_hook(self._count))
        return self

    def _count(self, module: nn.Module, args: Any, output: dict[str, torch.Tensor]) -> None:
        import torch

        sizes = [f.shape[-2] * f.shape[-1] for f in args[0]]
        scores = torch.sqrt(torch.sigmoid(output["cls_logits"]) * torch.sigmoid(output["bbox_ctrness"]))
        per_level = scores.flatten(1).split(sizes, dim=1)
        counts = sum(torch.clamp((level > self._thresh).sum(dim=1), max=self._topk) for level in per_level)
        self.candidates.extend(int(c) for c in counts)

    def reset(self) -> None:
        super().reset()
        self.candidates = []


def by_layer_type(parts_ms: dict[str, float]) -> dict[str, float]:
    """Part times summed over stages: ``s4 SIM`` -> ``SIM``, ``s8 gates`` + ``s16 gates`` -> ``gates``."""
    out: dict[str, float] = {}
    for name, ms in parts_ms.items():
        first, _, rest = name.partition(" ")
        key = rest if first in ("s4", "s8", "s16") else name
        out[key] = out.get(key, 0.0) + ms
    return out
