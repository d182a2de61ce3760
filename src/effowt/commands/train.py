"""``effowt train``: train a transfer mode on COCO-format data into a run folder.

Also the entry of multi-process training:
``torchrun --nproc_per_node=K -m effowt train ...``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from effowt.commands import int_at_least
from effowt.config import TRANSFER_MODES, EffOWTConfig, load_config, preset_names
from effowt.errors import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help=f"preset name ({', '.join(preset_names())}) or YAML file; "
                        "with --resume defaults to RUN/config.yaml")
    parser.add_argument("--data", required=True, help="COCO-format annotation json")
    parser.add_argument("--images", required=True, help="folder of the json's images")
    parser.add_argument("--out", required=True, help="run folder (created; checkpoints, metrics, plots)")
    parser.add_argument("--mode", choices=TRANSFER_MODES, help="transfer mode (overrides model.mode)")
    parser.add_argument("--max-steps", type=int, help="optimizer steps (overrides train.max_steps)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the checkpoint in --out exactly, with RUN/config.yaml's settings")
    parser.add_argument("--allow-config-change", action="append", default=[], metavar="KEY",
                        help="with --resume: let train.* / tracker.* setting KEY differ from "
                             "RUN/config.yaml (repeatable; recorded in metrics.jsonl)")
    parser.add_argument("--backbone-weights",
                        help="backbone weights: a local file, hf-hub:ORG/NAME[:FILE], or an open_clip "
                             "pretrained tag for open_clip backbones (overrides model.backbone.weights)")
    parser.add_argument("--device", default=None,
                        help="torch device, cpu, cuda or cuda:N (under torchrun, cuda means cuda:LOCAL_RANK; "
                             "default: cuda when available)")
    parser.add_argument("--threads", type=int_at_least(1), default=None,
                        help="torch CPU threads per process (default: 1 for a model under 20 M parameters, e.g. the "
                             "shipped one; else the cores this process may use, shared among processes)")
    parser.add_argument(
        "--dry-run", action="store_true",
        help="resolve the run and print it (parameters, batch per process for $WORLD_SIZE, steps, images seen, "
        "epochs, learning rate per group, outputs), then exit: builds on the meta device, reads the json only "
        "to count its images, opens no image or weight file, writes nothing; exit 1 with one line per missing path",
    )
    parser.add_argument(
        "overrides", nargs="*", metavar="key=value",
        help="config overrides after the options, values parsed as YAML, e.g. train.lr=0.0001 train.accumulate=2",
    )


def option_overrides(args: argparse.Namespace) -> list[str]:
    """The config overrides of ``--mode``, ``--max-steps`` and ``--backbone-weights``
    (they win over the ``key=value`` ones, so they come last)."""
    options = {"model.mode": args.mode, "train.max_steps": args.max_steps,
               "model.backbone.weights": args.backbone_weights}
    return [f"{key}={json.dumps(value)}" for key, value in options.items() if value is not None]


def run(args: argparse.Namespace) -> int:
    if args.allow_config_change and not args.resume:
        raise ConfigError("--allow-config-change only applies with --resume")
    source = args.config
    if source is None:
        if not args.resume:
            raise ConfigError("--config is required (unless --resume, which reads RUN/config.yaml)")
        from effowt.runs import CONFIG_FILE

        source = str(Path(args.out) / CONFIG_FILE)
    cfg = load_config(source, [*args.overrides, *option_overrides(args)])  # checked here, in well under a second
    if args.dry_run:
        return _dry_run(cfg, args)
    from effowt.distributed import env_rank
    from effowt.lockfile import refuse_if_held

    if env_rank() == 0:
        refuse_if_held(args.out)  # a folder another run holds is refused before torch is imported
    from effowt.training.trainer import train  # heavy imports only once the config is good

    train(cfg, args.data, args.images, args.out, resume=args.resume, device=args.device,
          allow_config_change=args.allow_config_change, threads=args.threads)
    return 0


def _dry_run(cfg: EffOWTConfig, args: argparse.Namespace) -> int:
    from effowt.training.dryrun import dry_run

    lines, problems = dry_run(cfg, args.data, args.images, args.out, resume=args.resume)
    print("\n".join(lines))
    for problem in problems:
        print(f"effowt train --dry-run: {problem}", file=sys.stderr)
    return 1 if problems else 0
