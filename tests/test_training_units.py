"""Unit tests of the training helpers: schedule, optimizer groups, loss weights,
resumable data order, checkpoint files and their error messages.

A tiny stand-in model implementing the EffOWT model contract keeps these
independent of the real model (which tests/test_training.py trains end to end).
"""

from __future__ import annotations

import json
import os
import stat

import pytest
import torch
from torch import nn

from effowt.config import EffOWTConfig, TrainConfig, load_config
from effowt.errors import ConfigError, EffOWTError, WeightsError
from effowt.fileio import atomic_write_text
from effowt.runs import WEIGHTS_FILE, load_weights, read_weights, save_run
from effowt.training.loader import EpochLoader
from effowt.training.optim import (
    LOSS_TERMS,
    build_optimizer,
    build_scheduler,
    lr_factor,
    per_process_batch,
    weighted_loss,
)
from effowt.training.resume import STATE_FILE, load_train_state, save_checkpoint
from effowt.training.trainer import prepare_run_dir


class StandIn(nn.Module):
    """Frozen conv 'backbone' + trainable neck/head, following the model contract."""

    def __init__(self, sha: str | None = None) -> None:
        super().__init__()
        self.backbone = nn.Conv2d(3, 4, 3, padding=1).requires_grad_(False)
        self.neck = nn.Conv2d(4, 4, 1)
        self.norm = nn.LayerNorm(4)
        self.head = nn.Linear(4, len(LOSS_TERMS))
        self.sha = sha

    def forward(self, images: torch.Tensor, targets: list[dict]) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            f = self.backbone(images)
        out = self.head(self.norm(self.neck(f).mean((2, 3))))
        return {k: out[:, i].pow(2).mean() for i, k in enumerate(LOSS_TERMS)}

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    def named_trainable_parameters(self) -> list[tuple[str, nn.Parameter]]:
        return [(n, p) for n, p in self.named_parameters() if p.requires_grad]

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        return {k: p for k, p in self.named_parameters() if p.requires_grad}

    def load_trainable_state_dict(self, sd: dict[str, torch.Tensor]) -> None:
        own = self.trainable_state_dict()
        if set(sd) != set(own):
            raise WeightsError(f"missing {sorted(set(own) - set(sd))}, unexpected {sorted(set(sd) - set(own))}")
        with torch.no_grad():
            for k, v in sd.items():
                if v.shape != own[k].shape:
                    raise WeightsError(f"{k}: shape {tuple(v.shape)} != {tuple(own[k].shape)}")
                own[k].copy_(v)

    def backbone_identity(self) -> dict:
        return {"name": "standin", "weights_sha256": self.sha}


def test_lr_warmup_then_cosine_to_zero() -> None:
    cfg = TrainConfig(max_steps=10, warmup_steps=2, schedule="cosine")
    factors = [lr_factor(s, cfg) for s in range(10)]
    assert factors[:3] == [0.5, 1.0, 1.0]
    assert all(a >= b for a, b in zip(factors[2:], factors[3:]))
    assert lr_factor(10, cfg) == pytest.approx(0.0)


def test_lr_step_schedule_milestones() -> None:
    cfg = TrainConfig(max_steps=10, warmup_steps=0, schedule="step", step_milestones=[0.5, 0.8])
    assert [lr_factor(s, cfg) for s in (0, 4, 5, 7, 8, 9)] == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])


@pytest.mark.parametrize(
    "key,value",
    [("schedule", "linear"), ("amp", "fp8"), ("accumulate", 0), ("lr", 0.0), ("backbone_lr_mult", 0.0),
     ("global_batch", 0)],
)
def test_bad_train_values_rejected(key: str, value: object) -> None:
    with pytest.raises(ConfigError, match=f"train.{key}"):
        TrainConfig(**{key: value})


def test_global_batch_splits_over_processes_and_micro_batches() -> None:
    assert per_process_batch(TrainConfig(batch_size=3), 8) == 3  # no global batch: per process as given
    cfg = TrainConfig(batch_size=3, global_batch=8)
    assert [per_process_batch(cfg, w) for w in (1, 2, 4, 8)] == [8, 4, 2, 1]
    assert per_process_batch(TrainConfig(global_batch=8, accumulate=2), 2) == 2
    with pytest.raises(ConfigError, match="train.global_batch=8 .* 3 process"):
        per_process_batch(cfg, 3)


def test_no_weight_decay_on_norms_biases_and_gates() -> None:
    model = StandIn()
    model.gate_alpha = nn.Parameter(torch.zeros(1))
    opt = build_optimizer(model.named_trainable_parameters(), TrainConfig(weight_decay=0.05))
    decayed = {id(p) for g in opt.param_groups if g["weight_decay"] > 0 for p in g["params"]}
    all_params = {id(p) for g in opt.param_groups for p in g["params"]}
    assert decayed == {id(model.neck.weight), id(model.head.weight)}
    assert id(model.gate_alpha) in all_params - decayed
    assert id(model.norm.weight) in all_params - decayed
    assert id(model.backbone.weight) not in all_params


def test_backbone_parameters_train_at_lr_times_mult() -> None:
    model = StandIn()
    model.backbone.requires_grad_(True)
    model.backbone.lora_A = nn.Parameter(torch.zeros(2, 2))  # LoRA matrices are new parts
    cfg = TrainConfig(lr=1e-3, backbone_lr_mult=0.1, weight_decay=0.05)
    opt = build_optimizer(model.named_trainable_parameters(), cfg)
    lr_of = {id(p): g["lr"] for g in opt.param_groups for p in g["params"]}
    assert lr_of[id(model.backbone.weight)] == pytest.approx(1e-4)
    assert lr_of[id(model.backbone.bias)] == pytest.approx(1e-4)
    assert lr_of[id(model.backbone.lora_A)] == pytest.approx(1e-3)
    assert lr_of[id(model.neck.weight)] == lr_of[id(model.norm.bias)] == pytest.approx(1e-3)
    names = sorted(g["name"] for g in opt.param_groups)
    assert names == ["backbone/decay", "backbone/no_decay", "new/decay", "new/no_decay"]
    scheduler = build_scheduler(opt, TrainConfig(lr=1e-3, backbone_lr_mult=0.1, warmup_steps=2, max_steps=10))
    opt.step()
    scheduler.step()  # step 1 of warm-up: factor 1.0, the ratio between groups is kept
    lr_of = {id(p): g["lr"] for g in opt.param_groups for p in g["params"]}
    assert lr_of[id(model.backbone.weight)] == pytest.approx(0.1 * lr_of[id(model.neck.weight)])


def test_full_mode_model_groups_its_backbone() -> None:
    from effowt.models.params import build_for_counting

    cfg = load_config("mini", ["model.mode=full"]).train
    model = build_for_counting(load_config("mini").model, "full")
    opt = build_optimizer(model.named_trainable_parameters(), cfg)
    backbone = {id(p) for p in model.backbone.parameters()}
    for group in opt.param_groups:
        in_backbone = {id(p) in backbone for p in group["params"]}
        assert in_backbone == {group["name"].startswith("backbone/")}
        mult = cfg.backbone_lr_mult if group["name"].startswith("backbone/") else 1.0
        assert group["lr"] == pytest.approx(cfg.lr * mult)


def test_weighted_loss_uses_the_three_weights() -> None:
    losses = {k: torch.tensor(float(i + 1)) for i, k in enumerate(LOSS_TERMS)}  # 1, 2, 3, 4, 5
    cfg = TrainConfig(det_weight=2.0, reid_weight=0.5, reid_aux_weight=0.1)
    assert weighted_loss(losses, cfg).item() == pytest.approx(2 * (1 + 2 + 3) + 0.5 * 4 + 0.1 * 5)
    with pytest.raises(KeyError, match="loss_reid_aux"):
        weighted_loss({k: v for k, v in losses.items() if k != "loss_reid_aux"}, cfg)


class _Indices(torch.utils.data.Dataset):
    def __init__(self, n: int) -> None:
        self.n = n
        self.epochs: list[int] = []

    def set_epoch(self, epoch: int) -> None:
        self.epochs.append(epoch)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> int:
        return i


def _take(loader: EpochLoader, n: int) -> list[list[int]]:
    it = iter(loader)
    return [next(it) for _ in range(n)]


def test_loader_resumes_mid_epoch_at_the_same_batch() -> None:
    def make() -> EpochLoader:
        return EpochLoader(_Indices(7), batch_size=2, collate_fn=list, seed=3)

    full = make()
    reference = _take(full, 8)  # 3 batches per epoch (drop_last): crosses two epoch boundaries
    assert sorted(i for b in reference[:3] for i in b) != sorted(range(7))  # one image dropped per epoch
    assert reference[:3] != reference[3:6]  # a new order each epoch
    assert full.dataset.epochs == [0, 1, 2]
    first = make()
    head = _take(first, 4)
    state = first.state_dict()
    assert state == {"epoch": 1, "batch_in_epoch": 1}
    second = make()
    second.load_state_dict(state)
    assert head + _take(second, 4) == reference


def test_loader_splits_ranks_disjointly() -> None:
    batches = [EpochLoader(_Indices(8), 2, list, seed=0, rank=r, world_size=2) for r in (0, 1)]
    seen = [set(i for b in _take(loader, 2) for i in b) for loader in batches]
    assert seen[0].isdisjoint(seen[1]) and len(seen[0] | seen[1]) == 8


def test_loader_rejects_set_smaller_than_a_batch() -> None:
    with pytest.raises(EffOWTError, match="fewer than one batch"):
        EpochLoader(_Indices(3), batch_size=2, collate_fn=list, seed=0, world_size=2)


def test_checkpoint_roundtrip_and_metadata(tmp_path) -> None:
    model = StandIn(sha="abc")
    opt = torch.optim.AdamW(model.trainable_parameters())
    save_checkpoint(tmp_path, model, step=7, train_state={"optimizer": opt.state_dict()})
    tensors, meta = read_weights(tmp_path / WEIGHTS_FILE)
    assert set(tensors) == set(model.trainable_state_dict())  # trainable weights only
    assert meta["step"] == "7" and json.loads(meta["backbone"]) == {"name": "standin", "weights_sha256": "abc"}
    assert load_train_state(tmp_path / STATE_FILE)["step"] == 7
    other = StandIn(sha="abc")
    assert load_weights(tmp_path / WEIGHTS_FILE, other)["step"] == 7
    for k, v in model.trainable_state_dict().items():
        assert torch.equal(v, other.trainable_state_dict()[k])


def test_nan_weights_never_overwrite_a_checkpoint(tmp_path) -> None:
    model = StandIn()
    save_run(tmp_path, model, EffOWTConfig(), step=1)
    before = (tmp_path / WEIGHTS_FILE).read_bytes()
    with torch.no_grad():
        model.head.bias[0] = float("nan")
    with pytest.raises(WeightsError, match="head.bias is not finite"):
        save_checkpoint(tmp_path, model, step=2, train_state={})
    assert (tmp_path / WEIGHTS_FILE).read_bytes() == before


def test_backbone_identity_mismatch_is_an_error(tmp_path) -> None:
    save_run(tmp_path, StandIn(sha="aaa"), EffOWTConfig())
    with pytest.raises(WeightsError, match=r"last\.safetensors.*sha256 aaa"):
        load_weights(tmp_path / WEIGHTS_FILE, StandIn(sha="bbb"))


def test_random_backbone_warns_and_says_whether_it_matches(tmp_path) -> None:
    model = StandIn()
    save_run(tmp_path, model, EffOWTConfig())
    twin = StandIn()
    twin.backbone.load_state_dict(model.backbone.state_dict())
    with pytest.warns(UserWarning, match="match the saved fingerprint"):
        load_weights(tmp_path / WEIGHTS_FILE, twin)
    with pytest.warns(UserWarning, match="DIFFER"):
        load_weights(tmp_path / WEIGHTS_FILE, StandIn())


def test_strict_load_names_file_and_keys(tmp_path) -> None:
    save_run(tmp_path, StandIn(sha="x"), EffOWTConfig())
    wider = StandIn(sha="x")
    wider.extra = nn.Linear(2, 2)
    with pytest.raises(WeightsError, match=r"last\.safetensors.*extra\.weight"):
        load_weights(tmp_path / WEIGHTS_FILE, wider)
    (tmp_path / WEIGHTS_FILE).write_bytes(b"not safetensors")
    with pytest.raises(WeightsError, match="not a readable safetensors file"):
        load_weights(tmp_path / WEIGHTS_FILE, StandIn(sha="x"))


def test_train_state_is_never_unpickled(tmp_path) -> None:
    import pickle

    (tmp_path / STATE_FILE).write_bytes(pickle.dumps({"step": 1, "thing": object}, protocol=2))
    with pytest.raises(WeightsError, match="not a readable training state"):
        load_train_state(tmp_path / STATE_FILE)


def test_run_dir_checks(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(EffOWTError, match="cannot create the output folder"):
        prepare_run_dir(blocker / "run", resume=False)
    with pytest.raises(EffOWTError, match="no checkpoint"):
        prepare_run_dir(tmp_path / "empty", resume=True)
    save_run(tmp_path / "done", StandIn(), EffOWTConfig())
    with pytest.raises(EffOWTError, match="already holds a checkpoint"):
        prepare_run_dir(tmp_path / "done", resume=False)


def test_a_second_training_into_a_folder_in_use_is_refused(tmp_path) -> None:
    from effowt.lockfile import LOCK_FILE, folder_lock
    from effowt.training.trainer import train
    from test_training import make_coco

    ann, images = make_coco(tmp_path / "coco", 2)  # good inputs: they are checked before the folder
    run = tmp_path / "run"
    run.mkdir()
    with folder_lock(run):  # this process is "the first training"
        with pytest.raises(EffOWTError, match="in use by another effowt run"):
            train(load_config("mini"), ann, images, run, device="cpu")
    assert not (run / LOCK_FILE).exists() and not (run / "config.yaml").exists()


def test_atomic_writes_get_plain_file_permissions_without_touching_the_umask(tmp_path) -> None:
    previous = os.umask(0o027)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
        assert os.umask(0o027) == 0o027  # writing did not change the process's umask
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]
