"""ImageNet-style pretraining of DDW backbones: one process, ``torchrun`` DDP (NCCL on GPUs,
gloo on CPUs), resumable, with tqdm progress, TensorBoard scalars and a JSON line per epoch."""

import json
import logging
import os
import random
import time
from typing import Dict, Optional

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm import tqdm

from ..checkpoint import (
    DDWCheckpointer,
    convert_ddw,
    model_facts,
    save_detectron2_checkpoint,
)
from ..engine.compile import compile_from_config
from ..engine.resume import restore_rng_states, rng_states
from ..engine.trainer import check_replicas_agree
from ..layers import set_threshold_warmup
from ..modeling.classifier import build_classifier
from ..utils.run_lock import lock_output_dir
from .data import build_loaders
from .evaluation import classification_counts
from .optim import build_optimizer, parameter_groups, warmup_cosine
from .state import align_log, architecture, read_checkpoint, write_checkpoint
from .wiring_log import WiringLog, disconnected_images

__all__ = ["Pretrainer"]

logger = logging.getLogger("ddw_detectron.pretrain")


class Pretrainer:
    """Trains ``build_classifier(cfg)`` on ``CLS.DATA_ROOT``. Call :meth:`train`.

    Starts from ``OUTPUT_DIR/last.pth`` when ``resume`` and it exists (all state), otherwise
    from ``MODEL.WEIGHTS`` when set (weights only; e.g. a torchvision checkpoint converted by
    ``scripts/convert_pretrained.py``), otherwise from scratch, as Detectron2's
    ``resume_or_load`` does.
    """

    def __init__(self, cfg, resume: bool = False):
        self.cfg = cfg
        self._setup_processes()
        self._seed(cfg.CLS.SEED + self.rank)
        self._build_data(cfg)
        self._build_model(cfg)
        self._build_optimizer(cfg, self.model)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.cuda_extras and cfg.CLS.AMP)
        self.criterion = nn.CrossEntropyLoss(label_smoothing=cfg.CLS.LABEL_SMOOTHING)
        self.start_epoch = 0
        self.best_top1 = 0.0
        self.output_dir = cfg.OUTPUT_DIR
        if self.rank == 0:
            lock_output_dir(self.output_dir)
        os.makedirs(self.output_dir, exist_ok=True)
        self.writer = None
        if self.rank == 0:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(self.output_dir)
        self.wiring_log = WiringLog(cfg, self.output_dir, self.writer)
        self.step = 0
        if resume and os.path.isfile(self.checkpoint_path):
            self.resume()
        elif cfg.MODEL.WEIGHTS:
            self.load_weights(cfg.MODEL.WEIGHTS)
        elif resume:
            logger.info(f"no checkpoint at {self.checkpoint_path}; starting from scratch")

    def _setup_processes(self) -> None:
        self.distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
        if self.distributed and not dist.is_initialized():
            dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
        self.rank = dist.get_rank() if self.distributed else 0
        self.world_size = dist.get_world_size() if self.distributed else 1
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.device = torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        self.cuda_extras = self.device.type == "cuda"

    def _build_data(self, cfg) -> None:
        self.train_sampler, self.train_loader, self.val_loader = build_loaders(
            cfg, self.rank, self.world_size, pin_memory=self.cuda_extras
        )

    def _build_model(self, cfg) -> None:
        model = build_classifier(cfg).to(self.device)
        if self.cuda_extras and cfg.CLS.CHANNELS_LAST:
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        device_ids = [self.device.index] if self.cuda_extras else None
        self.ddp = (
            DistributedDataParallel(model, device_ids=device_ids) if self.distributed else model
        )
        self.ema = None
        if cfg.CLS.EMA.ENABLED:
            if not 0.0 < cfg.CLS.EMA.DECAY < 1.0:
                raise ValueError(
                    f"CLS.EMA.DECAY = {cfg.CLS.EMA.DECAY} is invalid: it must be in (0, 1)"
                )
            self.ema = AveragedModel(
                model, multi_avg_fn=get_ema_multi_avg_fn(cfg.CLS.EMA.DECAY), use_buffers=True
            )
        # After the EMA's copy, which stays eager (it is only evaluated).
        compile_from_config(cfg, model)

    def load_weights(self, path: str) -> None:
        """Load ``path`` (``MODEL.WEIGHTS``) into the model with Detectron2's checkpointer and
        print what it left out: missing keys keep their initialisation (routers, or a head of
        another class count), unexpected keys are not used."""
        if not os.path.isfile(path):
            raise FileNotFoundError(f"MODEL.WEIGHTS = {path!r} does not exist")
        checkpointer = DDWCheckpointer(self.model, facts=model_facts(self.cfg))
        checkpointer.load(path)
        incompatible = checkpointer.last_incompatible
        if self.rank != 0 or incompatible is None:
            return
        mismatched = [key for key, _, _ in incompatible.incorrect_shapes]
        print(f"loaded MODEL.WEIGHTS {path}", flush=True)
        for title, keys in (
            ("missing (left at their initialisation)", incompatible.missing_keys + mismatched),
            ("unexpected (not used)", incompatible.unexpected_keys),
        ):
            print(f"  {title}: {len(keys)}", flush=True)
            for key in keys:
                print(f"    {key}", flush=True)

    def _build_optimizer(self, cfg, model: nn.Module) -> None:
        """``CLS.OPTIMIZER`` at ``CLS.BASE_LR`` per 256 images (routers at
        ``MODEL.DDW.ROUTER_LR_FACTOR`` times it), linear warmup then cosine per iteration."""
        self.base_lr = cfg.CLS.BASE_LR * cfg.CLS.BATCH_SIZE * self.world_size / 256
        groups = parameter_groups(
            model, cfg.CLS.WEIGHT_DECAY, cfg.CLS.WEIGHT_DECAY_ALL, cfg.MODEL.DDW.ROUTER_LR_FACTOR
        )
        for group in groups:
            group["lr"] = self.base_lr * group["lr_factor"]
        self.optimizer = build_optimizer(cfg, groups, self.base_lr)
        iters = len(self.train_loader)
        warmup, total = cfg.CLS.WARMUP_EPOCHS * iters, cfg.CLS.EPOCHS * iters
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, warmup_cosine(warmup, total, cfg.CLS.WARMUP_FACTOR)
        )

    @staticmethod
    def _seed(seed: int) -> None:
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)

    # --- checkpoints -------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> str:
        return os.path.join(self.output_dir, "last.pth")

    def save(self, epoch: int, result: Optional[Dict[str, float]] = None) -> None:
        """Write ``last.pth`` atomically, with ``result``, the epoch's log line (so that a kill
        between the checkpoint and the log loses no line: :meth:`resume` restores it)."""
        if self.rank != 0:
            return
        state = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "epoch": epoch,
            "best_top1": self.best_top1,
            "backbone": self.cfg.MODEL.BACKBONE.NAME,
            "architecture": architecture(self.model),
            "rng": rng_states(),
            "result": result,
        }
        write_checkpoint(state, self.checkpoint_path, epoch)

    def resume(self) -> None:
        path = self.checkpoint_path
        if not os.path.isfile(path):
            logger.info(f"no checkpoint at {path}; starting from scratch")
            return
        state = read_checkpoint(path, self.model, self.cfg.MODEL.BACKBONE.NAME)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        if self.ema is not None and state.get("ema") is not None:
            self.ema.load_state_dict(state["ema"])
        self.start_epoch = state["epoch"]
        self.best_top1 = state["best_top1"]
        if self.world_size == 1:
            restore_rng_states(state["rng"])
        logger.info(
            f"resumed from {path}: {self.start_epoch} epochs done, best top-1 {self.best_top1:.2f}"
        )
        if self.rank == 0:
            align_log(
                os.path.join(self.output_dir, "log.jsonl"), self.start_epoch, state.get("result")
            )
            print(f"resumed from {path} after epoch {self.start_epoch}", flush=True)

    def export_backbone(self, model: Optional[nn.Module] = None) -> Optional[str]:
        """Write ``OUTPUT_DIR/backbone_detectron2.pth`` for ``MODEL.WEIGHTS`` (rank 0) from
        ``model`` (default: the trained model)."""
        if self.rank != 0:
            return None
        weights, _ = convert_ddw({"model": (model or self.model).state_dict()})
        path = os.path.join(self.output_dir, "backbone_detectron2.pth")
        save_detectron2_checkpoint(
            weights, path, author="ddw_detectron pretrain_imagenet", facts=model_facts(self.cfg)
        )
        return path

    # --- loops -------------------------------------------------------------------------
    def _to_device(self, images, targets):
        images = images.to(self.device, non_blocking=True)
        if self.cuda_extras and self.cfg.CLS.CHANNELS_LAST:
            images = images.contiguous(memory_format=torch.channels_last)
        return images, targets.to(self.device, non_blocking=True)

    def train_one_epoch(self, epoch: int) -> Dict[str, float]:
        """One pass over the training set. Returns the mean loss, images per second and the mean
        seconds per iteration spent waiting for data (``data_time``) and in all (``time``)."""
        self.ddp.train()
        self.train_sampler.set_epoch(epoch)
        bar = tqdm(
            total=len(self.train_loader),
            desc=f"epoch {epoch + 1}/{self.cfg.CLS.EPOCHS}",
            disable=self.rank != 0,
            dynamic_ncols=True,
            unit="it",
        )
        totals = {"loss": 0.0, "seen": 0, "excluded": 0, "data_time": 0.0, "iters": 0}
        loss, start = float("nan"), time.perf_counter()
        tick = start
        for images, targets, n_excluded in self.train_loader:
            data_time = time.perf_counter() - tick
            totals["excluded"] += n_excluded
            if len(targets) > 0:
                loss = self._train_step(images, targets, epoch)
                totals["loss"] += loss * len(targets)
                totals["seen"] += len(targets)
            totals["data_time"] += data_time
            totals["iters"] += 1
            elapsed = time.perf_counter() - start
            bar.update()
            bar.set_postfix(
                loss=f"{loss:.3f}",
                img_s=f"{totals['seen'] * self.world_size / elapsed:.1f}",
                data=f"{totals['data_time'] / totals['iters']:.3f}s",
                lr=f"{self.scheduler.get_last_lr()[0]:.4f}",
            )
            tick = time.perf_counter()
        bar.close()
        return self._epoch_train_stats(totals, time.perf_counter() - start)

    def _train_step(self, images: torch.Tensor, targets: torch.Tensor, epoch: int) -> float:
        images, targets = self._to_device(images, targets)
        warmup = self.cfg.MODEL.DDW.THRESHOLD_WARMUP_ITERS
        if self.step <= warmup:
            set_threshold_warmup(self.model, self.step, warmup)
        with torch.autocast(self.device.type, enabled=self.scaler.is_enabled()):
            loss = self.criterion(self.ddp(images), targets)
        if not torch.isfinite(loss):
            last = (
                f"last complete checkpoint: {self.checkpoint_path} (after epoch {epoch})"
                if epoch > 0 and os.path.isfile(self.checkpoint_path)
                else "no checkpoint was written yet (the run diverged in its first epoch); "
                "lower CLS.BASE_LR or set CLS.CLIP_GRAD_NORM"
            )
            raise FloatingPointError(f"loss became {loss.item()} at epoch {epoch + 1}; {last}")
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.cfg.CLS.CLIP_GRAD_NORM > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.CLS.CLIP_GRAD_NORM)
        self.scaler.step(self.optimizer)  # unscales the gradients first, in place
        self.scaler.update()
        self.scheduler.step()
        if self.ema is not None:
            self.ema.update_parameters(self.model)
        value = loss.item()
        self.wiring_log.after_step(self.step, self.model, value)
        self.step += 1
        return value

    def _epoch_train_stats(self, totals: Dict[str, float], elapsed: float) -> Dict[str, float]:
        keys = ("loss", "seen", "excluded", "data_time", "iters")
        stats = torch.tensor([totals[k] for k in keys], dtype=torch.float64, device=self.device)
        if self.distributed:
            dist.all_reduce(stats)
        loss, seen, excluded, data_time, iters = stats.tolist()
        return {
            "train_loss": loss / max(1, seen),
            "images_per_sec": seen / elapsed,
            "unreadable_images": int(excluded),
            "data_time": data_time / max(1, iters),
            "time": elapsed * self.world_size / max(1, iters),
        }

    @torch.no_grad()
    def evaluate(self, model: Optional[nn.Module] = None) -> Dict[str, float]:
        """Top-1 and top-5 (%), the mean cross-entropy (``val_loss``, no label smoothing) and the
        share (%) of images some stage's wiring cut off (``val_disconnected``: their prediction
        does not depend on the image) of ``model`` (default: the trained model) on the val set."""
        model = model or self.ddp
        model.eval()
        # top1, top5, summed loss, n, excluded, disconnected
        counts = torch.zeros(6, dtype=torch.float64, device=self.device)
        for images, targets, n_excluded in self.val_loader:
            counts[4] += n_excluded
            if len(targets) == 0:
                continue
            images, targets = self._to_device(images, targets)
            with torch.autocast(self.device.type, enabled=self.scaler.is_enabled()):
                logits = model(images)
            batch = classification_counts(logits, targets)
            counts[:4] += torch.tensor(batch, dtype=torch.float64, device=self.device)
            counts[5] += disconnected_images(model)
        if self.distributed:
            dist.all_reduce(counts)
        n = max(1.0, float(counts[3]))
        return {
            "top1": 100.0 * float(counts[0]) / n,
            "top5": 100.0 * float(counts[1]) / n,
            "val_loss": float(counts[2]) / n,
            "val_unreadable_images": int(counts[4]),
            "val_disconnected": 100.0 * float(counts[5]) / n,
        }

    def _evaluate_epoch(self) -> Dict[str, float]:
        result = self.evaluate()
        if self.ema is not None:
            ema = self.evaluate(self.ema.module)
            result.update(ema_top1=ema["top1"], ema_top5=ema["top5"])
        return result

    def _log_epoch(self, result: Dict[str, float]) -> None:
        line = json.dumps(result)
        print(line, flush=True)
        with open(os.path.join(self.output_dir, "log.jsonl"), "a") as f:
            f.write(line + "\n")
        for key, value in result.items():
            if key != "epoch":
                self.writer.add_scalar(f"pretrain/{key}", value, result["epoch"])
        self.writer.flush()

    def train(self) -> Dict[str, float]:
        """Train the remaining epochs (an evaluation and a checkpoint after each), then export the
        backbone. Returns the last epoch's figures."""
        result: Dict[str, float] = {}
        self.step = self.start_epoch * len(self.train_loader)
        for epoch in range(self.start_epoch, self.cfg.CLS.EPOCHS):
            start = time.perf_counter()
            result = {"epoch": epoch + 1, **self.train_one_epoch(epoch), **self._evaluate_epoch()}
            self.best_top1 = max(self.best_top1, result["top1"])
            result.update(
                best_top1=self.best_top1,
                lr=self.scheduler.get_last_lr()[0],
                seconds=time.perf_counter() - start,
            )
            excluded = result["unreadable_images"] + result["val_unreadable_images"]
            if excluded:
                logger.warning(f"epoch {epoch + 1}: {excluded} unreadable images were excluded")
            self.save(epoch + 1, result)
            if self.rank == 0:
                self._log_epoch(result)
        check_replicas_agree(self.model)
        self._export_better(result)
        if self.writer is not None:
            self.writer.close()
        return result

    def _export_better(self, result: Dict[str, float]) -> None:
        """Export the EMA weights when their last top-1 beats the raw weights', else the raw."""
        use_ema = self.ema is not None and result.get("ema_top1", -1.0) > result.get("top1", 0.0)
        path = self.export_backbone(self.ema.module if use_ema else None)
        if path:
            if self.ema is not None and "top1" in result:
                which = "EMA" if use_ema else "raw"
                print(
                    f"exported the {which} weights (top-1: EMA {result['ema_top1']:.2f}, raw "
                    f"{result['top1']:.2f})",
                    flush=True,
                )
            print(f"backbone for Detectron2 (MODEL.WEIGHTS): {path}", flush=True)
