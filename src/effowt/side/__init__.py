"""The EffOWT side network: ladders, gates, hybrid CNN-Transformer stages with SIM,
multi-scale fusion, and structural-pruning initialisation."""

from effowt.side.blocks import Attention, SideBlock
from effowt.side.connections import SideConnection
from effowt.side.fusion import MultiScaleFusion
from effowt.side.gates import GateFusion, SumFusion
from effowt.side.network import SideNetwork, side_width
from effowt.side.pruning import prune_init_
from effowt.side.sim import SparseInteractionMLP

__all__ = [
    "Attention",
    "GateFusion",
    "MultiScaleFusion",
    "SideBlock",
    "SideConnection",
    "SideNetwork",
    "SparseInteractionMLP",
    "SumFusion",
    "prune_init_",
    "side_width",
]
