"""``DDWTrainer``: Detectron2's ``DefaultTrainer`` for DDW models."""

import logging
import os
import weakref

import torch
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.engine import AMPTrainer, DefaultTrainer, SimpleTrainer, TrainerBase
from detectron2.utils import comm
from detectron2.utils.logger import setup_logger
from torch.nn.parallel import DistributedDataParallel

from ..compat import build_coco_evaluator
from ..data import ensure_shapes_split
from .checkpoint import DDWCheckpointer
from .hooks import WiringHook, attach_sparsity_loss

__all__ = ["DDWTrainer", "check_datasets", "check_replicas_agree", "create_ddp_model"]


def create_ddp_model(model: torch.nn.Module) -> torch.nn.Module:
    """DDP when there is more than one process: on the local GPU with CUDA, on CPU (gloo)
    otherwise. Every DDW parameter receives a gradient in every step (dropped edges too, through
    the straight-through gate), so ``find_unused_parameters`` stays off."""
    if comm.get_world_size() == 1:
        return model
    device_ids = [comm.get_local_rank()] if next(model.parameters()).is_cuda else None
    return DistributedDataParallel(model, device_ids=device_ids, broadcast_buffers=False)


def check_replicas_agree(model: torch.nn.Module) -> None:
    """In a distributed run, check that every process holds the same parameters (DDP keeps
    them in step); log the result, raise RuntimeError naming the first differing parameter."""
    if comm.get_world_size() == 1:
        return
    model = model.module if hasattr(model, "module") else model
    names = [n for n, _ in model.named_parameters()]
    sums = torch.stack([p.detach().double().sum().cpu() for p in model.parameters()])
    gathered = comm.all_gather(sums)
    for rank, other in enumerate(gathered):
        if not torch.equal(other, gathered[0]):
            index = int((other != gathered[0]).nonzero()[0])
            raise RuntimeError(f"process {rank} ended with other weights than process 0 (first: {names[index]})")
    if comm.is_main_process():
        print(f"weights identical across {comm.get_world_size()} processes", flush=True)


def check_datasets(cfg) -> None:
    """Fail early, naming the dataset and the path, when a dataset's files are missing."""
    for name in list(cfg.DATASETS.TRAIN) + list(cfg.DATASETS.TEST):
        if name not in DatasetCatalog.list():
            raise SystemExit(f"dataset {name!r} is not registered (known: {', '.join(sorted(DatasetCatalog.list())[:20])}, ...)")
        if name.startswith("ddw_shapes_"):
            ensure_shapes_split(name[len("ddw_shapes_"):])
            continue
        metadata = MetadataCatalog.get(name).as_dict()
        for attribute in ("json_file", "image_root"):
            path = metadata.get(attribute)
            if path and not os.path.exists(path):
                raise SystemExit(
                    f"dataset {name!r}: {attribute} {path} does not exist. Put the dataset under "
                    f"$DETECTRON2_DATASETS (now {os.environ.get('DETECTRON2_DATASETS', 'unset, so ./datasets')}) "
                    "in Detectron2's layout, e.g. coco/annotations/instances_train2017.json and coco/train2017/"
                )


class DDWTrainer(DefaultTrainer):
    """``DefaultTrainer`` with: the COCO evaluator (pycocotools path when Detectron2's kernels
    are absent), ``loss_ddw_sparsity`` when ``MODEL.DDW.SPARSITY_LOSS_WEIGHT > 0``, the
    :class:`WiringHook`, and DDP that works on CPU (gloo) as well as on GPUs."""

    def __init__(self, cfg):
        TrainerBase.__init__(self)
        logger = logging.getLogger("detectron2")
        if not logger.isEnabledFor(logging.INFO):
            setup_logger()
        check_datasets(cfg)
        cfg = DefaultTrainer.auto_scale_workers(cfg, comm.get_world_size())
        model = self.build_model(cfg)
        optimizer = self.build_optimizer(cfg, model)
        data_loader = self.build_train_loader(cfg)
        model = create_ddp_model(model)
        self._trainer = (AMPTrainer if cfg.SOLVER.AMP.ENABLED else SimpleTrainer)(model, data_loader, optimizer)
        self.scheduler = self.build_lr_scheduler(cfg, optimizer)
        self.checkpointer = DDWCheckpointer(model, cfg.OUTPUT_DIR, trainer=weakref.proxy(self))
        self.start_iter = 0
        self.max_iter = cfg.SOLVER.MAX_ITER
        self.cfg = cfg
        self.register_hooks(self.build_hooks())

    @classmethod
    def build_model(cls, cfg):
        model = super().build_model(cfg)
        if cfg.MODEL.DDW.SPARSITY_LOSS_WEIGHT > 0:
            attach_sparsity_loss(model, cfg.MODEL.DDW.SPARSITY_LOSS_WEIGHT)
        return model

    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_folder=None):
        if output_folder is None:
            output_folder = os.path.join(cfg.OUTPUT_DIR, "inference")
        return build_coco_evaluator(dataset_name, output_dir=output_folder)

    def build_hooks(self):
        hooks = super().build_hooks()
        wiring = WiringHook(period=20, eval_period=self.cfg.TEST.EVAL_PERIOD)
        hooks.insert(len(hooks) - 1 if comm.is_main_process() else len(hooks), wiring)
        return hooks
