"""The training loop: steps, validation, best-on-validation selection, checkpoints, export.

Selection uses the validation split only; the test split, when configured, is scored once
with the selected weights at the end and recorded, never compared.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from pycrl.losses import create_loss
from pycrl.models import create_model
from pycrl.train.config import constructor_args, dump_config
from pycrl.train.engine import checkpoint as ckpt
from pycrl.train.engine.data import (
    build_dataset,
    describe,
    eval_loader,
    set_epoch,
    steps_per_epoch,
    train_loader,
)
from pycrl.train.engine.evaluation import better, choose_threshold, metrics, predict
from pycrl.train.engine.export import export_model
from pycrl.train.engine.logs import JsonlLog, progress_bar
from pycrl.train.engine.optim import build_optimizer, build_schedule
from pycrl.train.engine.runtime import amp_dtype_for, autocast, configure, pick_device

METRICS = ("auc", "eer", "ap", "acc", "video_auc")


@dataclass
class Progress:
    """Where the run stands; saved in every checkpoint."""

    epoch: int = 0  # the epoch in progress (0-based)
    batch: int = 0  # batches done within it
    step: int = 0  # optimiser steps done in all
    last_eval_step: int = -1
    best: dict | None = None  # {metric, value, step, epoch, val: metrics, threshold}
    last_val: dict | None = None


class Trainer:
    """``Trainer(cfg).fit()`` trains as configured and returns a summary dict.

    Outputs under ``output.dir``: ``config.yaml``, ``log.jsonl``, ``checkpoints/{last,best}.pt``
    and the model folder (``output.model_dir``, default ``<dir>/model``).
    """

    def __init__(self, cfg: dict):
        self.cfg = cfg
        t, data = cfg["train"], cfg["data"]
        if t["select_metric"] not in METRICS:
            raise ValueError(f"train.select_metric must be one of {METRICS}, got {t['select_metric']!r}")
        self.out = Path(cfg["output"]["dir"])
        self._check_existing_run()
        self.seed = int(t["seed"])
        configure(self.seed, bool(t["deterministic"]), t["threads"])
        self.device = pick_device(str(t["device"]))
        self.amp_dtype = amp_dtype_for(t["amp"], t["amp_dtype"], self.device)

        name, args = constructor_args(cfg["model"])
        self.model = create_model(name, **args).to(self.device)
        loss_name, loss_args = constructor_args(cfg["loss"])
        self.loss = create_loss(loss_name, **loss_args)
        self.loss.attach(self.model)

        self.train_set = build_dataset(data, "train", True, self.seed)
        self.val_set = build_dataset(data, "val", False, self.seed)
        if self.train_set is None or self.val_set is None:
            raise ValueError("data.train and data.val are both required: the best weights and the "
                             "decision threshold are chosen on validation (never on test)")
        self.test_set = build_dataset(data, "test", False, self.seed)
        self.steps_per_epoch = steps_per_epoch(self.train_set, data)
        epochs = int(t["epochs"])
        self.total_steps = epochs * self.steps_per_epoch
        if t["max_steps"]:
            self.total_steps = min(self.total_steps, int(t["max_steps"]))

        self.optimizer = build_optimizer([*self.model.parameters(), *self.loss.parameters()], cfg["optim"])
        self.schedule = build_schedule(self.optimizer, cfg["scheduler"], epochs, self.total_steps)
        # fp16 needs loss scaling against underflow; bf16 has float32's range and does not
        self.scaler = torch.amp.GradScaler("cuda") if self.amp_dtype == torch.float16 else None
        self.progress = Progress()
        self.log = JsonlLog(self.out / "log.jsonl")
        self._resume()

    # -- setup

    @property
    def ckpt_dir(self) -> Path:
        return self.out / "checkpoints"

    def _check_existing_run(self) -> None:
        last = self.ckpt_dir / ckpt.LAST
        if self.cfg["output"]["resume"] is None and last.is_file():
            raise FileExistsError(f"{self.out} already holds a run ({last}); continue it with output.resume=auto "
                                  f"(fit --resume) or pick another output.dir")

    def _resume(self) -> None:
        resume = self.cfg["output"]["resume"]
        if resume == "auto":
            last = self.ckpt_dir / ckpt.LAST
            resume = last if last.is_file() else None
        if resume is None:
            return
        state = ckpt.read(resume)
        saved = ckpt.restore_training_state(state, model=self.model, loss=self.loss, optimizer=self.optimizer,
                                            schedule=self.schedule, scaler=self.scaler)
        self.progress = Progress(**saved)
        self.log.write("resume", checkpoint=str(resume), step=self.progress.step, epoch=self.progress.epoch)

    # -- one step

    def train_step(self, batch: dict) -> dict:
        self.model.train()
        batch = {**batch, "image": batch["image"].to(self.device, non_blocking=True),
                 "label": batch["label"].to(self.device, non_blocking=True)}
        batch = self.loss.prepare_batch(batch)
        with autocast(self.device, self.amp_dtype):
            out = self.model(batch["image"])
        terms = self.loss(out, batch)
        overall = terms["overall"]
        if not torch.isfinite(overall):
            raise FloatingPointError(f"step {self.progress.step + 1}: the loss is {overall.item()} "
                                     f"({ {k: float(v) for k, v in terms.items()} }); lower optim.lr or set "
                                     f"train.grad_clip")
        self.optimizer.zero_grad(set_to_none=True)
        clip = self.cfg["train"]["grad_clip"]
        if self.scaler is not None:
            self.scaler.scale(overall).backward()
            self.scaler.unscale_(self.optimizer)
        else:
            overall.backward()
        logged = {k: float(v.detach()) for k, v in terms.items()}
        logged.update(self.model.after_backward(self.progress.step) or {})
        if clip:  # over everything optimised: the model's and the loss's own parameters
            params = [p for group in self.optimizer.param_groups for p in group["params"]]
            torch.nn.utils.clip_grad_norm_(params, float(clip))
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        return logged

    # -- validation and selection

    def validate(self) -> dict:
        p = self.progress
        pred = predict(self.model, eval_loader(self.val_set, self.cfg["data"], self.seed), self.device, self.amp_dtype)
        threshold = choose_threshold(pred, self.cfg["threshold"])
        m = metrics(pred, threshold["value"])
        metric = self.cfg["train"]["select_metric"]
        is_best = better(metric, m[metric], p.best["value"] if p.best else None)
        if is_best:
            p.best = {"metric": metric, "value": m[metric], "step": p.step, "epoch": p.epoch,
                      "val": m, "threshold": threshold}
            ckpt.save_weights(self.ckpt_dir / ckpt.BEST, self.model)
        p.last_eval_step, p.last_val = p.step, m
        self.log.write("eval", split="val", step=p.step, epoch=p.epoch, best=is_best, **m)
        return m

    def _report_step(self, terms: dict, seconds: float, bar) -> None:
        p = self.progress
        if p.step % int(self.cfg["train"]["log_every"]) == 0 or p.step == 1:
            self.log.write("step", step=p.step, epoch=p.epoch, lr=self.optimizer.param_groups[0]["lr"],
                           seconds=round(seconds, 4), **terms)
        bar.update(1)
        bar.set_postfix(loss=f"{terms['overall']:.4f}", auc=f"{p.last_val['auc']:.4f}" if p.last_val else "-",
                        refresh=False)

    def save(self) -> None:
        ckpt.save_training_state(self.ckpt_dir / ckpt.LAST, model=self.model, loss=self.loss, optimizer=self.optimizer,
                                 schedule=self.schedule, scaler=self.scaler, progress=asdict(self.progress),
                                 config=self.cfg)

    # -- the loop

    def fit(self) -> dict:
        t, p = self.cfg["train"], self.progress
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "config.yaml").write_text(dump_config(self.cfg), encoding="utf-8")
        epochs, eval_every = int(t["epochs"]), t["eval_every"]
        limit = t["time_limit_minutes"]
        started = time.monotonic()
        bar = progress_bar(self.total_steps, p.step, bool(t["progress"]), "train")
        self.log.write("start", step=p.step, epoch=p.epoch, total_steps=self.total_steps,
                       steps_per_epoch=self.steps_per_epoch, device=str(self.device),
                       amp=str(self.amp_dtype) if self.amp_dtype else None)
        stop = p.step >= self.total_steps
        try:
            while not stop and p.epoch < epochs:
                set_epoch(self.train_set, p.epoch)
                loader = train_loader(self.train_set, self.cfg["data"], self.seed, p.epoch, skip_batches=p.batch)
                tick = time.monotonic()
                for batch in loader:
                    terms = self.train_step(batch)
                    p.batch, p.step = p.batch + 1, p.step + 1
                    self.schedule.after_step()
                    self._report_step(terms, time.monotonic() - tick, bar)
                    stop = p.step >= self.total_steps or (limit is not None
                                                         and time.monotonic() - started > 60 * float(limit))
                    if p.batch >= self.steps_per_epoch:
                        break
                    if eval_every and p.step % int(eval_every) == 0:
                        self.validate()
                        self.save()
                    elif t["checkpoint_every"] and p.step % int(t["checkpoint_every"]) == 0:
                        self.save()
                    if stop:
                        break
                    tick = time.monotonic()
                if p.batch >= self.steps_per_epoch:  # the epoch is complete
                    self.schedule.after_epoch()
                    p.epoch, p.batch = p.epoch + 1, 0
                    if not eval_every or p.step % int(eval_every) == 0:
                        self.validate()
                    self.save()
            if p.last_eval_step != p.step:  # the run stopped between validations
                self.validate()
                self.save()
        finally:
            bar.close()
        return self.finish(time.monotonic() - started)

    def finish(self, seconds: float) -> dict:
        p = self.progress
        if p.best is None:
            raise RuntimeError("no validation produced a usable value of "
                               f"{self.cfg['train']['select_metric']} (does the val split hold both classes?)")
        ckpt.load_model_state(self.model, ckpt.read(self.ckpt_dir / ckpt.BEST)["model"])
        test = None
        if self.test_set is not None:
            pred = predict(self.model, eval_loader(self.test_set, self.cfg["data"], self.seed), self.device,
                           self.amp_dtype)
            test = metrics(pred, p.best["threshold"]["value"])
            self.log.write("eval", split="test", step=p.best["step"], epoch=p.best["epoch"], **test)
        data = self.cfg["data"]
        training = {"config": self.cfg,
                    "data": {s: describe(ds, data[s]) for s, ds in
                             (("train", self.train_set), ("val", self.val_set), ("test", self.test_set))},
                    "metrics": {"val": p.best["val"], "test": test},
                    "selection": {k: p.best[k] for k in ("metric", "value", "step", "epoch")},
                    "steps": p.step, "epochs_completed": p.epoch, "seconds_this_session": round(seconds, 1),
                    "device": str(self.device)}
        folder = self.cfg["output"]["model_dir"] or self.out / "model"
        export_model(self.model, folder, self.cfg, p.best["threshold"], training)
        self.log.write("end", step=p.step, model_dir=str(folder), best=p.best, test=test)
        return {"model_dir": str(folder), "best": p.best, "test": test, "steps": p.step,
                "seconds": round(seconds, 1)}


def fit(cfg: dict) -> dict:
    return Trainer(cfg).fit()
