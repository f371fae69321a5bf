"""``DDWTrainer``: Detectron2's ``DefaultTrainer`` for DDW models."""

import logging
import os
import weakref
from typing import Dict, List

import torch
from detectron2.data import (
    DatasetCatalog,
    DatasetFromList,
    DatasetMapper,
    build_detection_test_loader,
    build_detection_train_loader,
    get_detection_dataset_dicts,
)
from detectron2.data.samplers import RepeatFactorTrainingSampler
from detectron2.engine import AMPTrainer, DefaultTrainer, SimpleTrainer, TrainerBase
from detectron2.solver import get_default_optimizer_params
from detectron2.solver.build import maybe_add_gradient_clipping
from detectron2.utils import comm
from detectron2.utils.logger import setup_logger
from torch.nn.parallel import DistributedDataParallel

from ..checkpoint import DDWCheckpointer, consumer_facts
from ..compat import build_coco_evaluator
from ..data.check import (
    DatasetNotFoundError,
    check_datasets,
    count_unusable_boxes,
    image_problem,
)
from ..data.unreadable import ExcludeUnreadable, MapReadable, refresh_exclusion_log
from ..layers import is_router_parameter
from ..utils.run_lock import lock_output_dir
from .compile import compile_from_config
from .hooks import ThresholdWarmupHook, UnreadableImagesHook, WiringHook, attach_sparsity_loss
from .resume import ResumableTrainingSampler, restore_rng_states

__all__ = [
    "DDWTrainer",
    "DatasetNotFoundError",
    "check_datasets",
    "check_replicas_agree",
    "create_ddp_model",
    "scale_router_groups",
]


def create_ddp_model(
    model: torch.nn.Module, fp16_compression: bool = False, **ddp_kwargs
) -> torch.nn.Module:
    """DDP when there is more than one process: on the local GPU with CUDA, on CPU (gloo)
    otherwise, with ``ddp_kwargs`` for ``DistributedDataParallel`` (LazyConfig's
    ``train.ddp``; ``broadcast_buffers`` off unless given) and, with ``fp16_compression``,
    gradients sent in fp16. Every DDW parameter receives a gradient in every step (dropped edges
    too, through the straight-through gate), so ``find_unused_parameters`` can stay off."""
    if comm.get_world_size() == 1:
        return model
    device_ids = [comm.get_local_rank()] if next(model.parameters()).is_cuda else None
    ddp_kwargs.setdefault("broadcast_buffers", False)
    ddp = DistributedDataParallel(model, device_ids=device_ids, **ddp_kwargs)
    if fp16_compression:
        from torch.distributed.algorithms.ddp_comm_hooks import default as comm_hooks

        ddp.register_comm_hook(state=None, hook=comm_hooks.fp16_compress_hook)
    return ddp


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
            raise RuntimeError(
                f"process {rank} ended with other weights than process 0 (first: {names[index]})"
            )
    if comm.is_main_process():
        print(f"weights identical across {comm.get_world_size()} processes", flush=True)


def build_train_sampler(cfg, dataset: List[Dict]):
    """``DATALOADER.SAMPLER_TRAIN`` over ``dataset`` as Detectron2 builds it, the plain
    ``TrainingSampler`` in its resumable form."""
    name = cfg.DATALOADER.SAMPLER_TRAIN
    if name == "TrainingSampler":
        return ResumableTrainingSampler(len(dataset))
    if name == "RepeatFactorTrainingSampler":
        factors = RepeatFactorTrainingSampler.repeat_factors_from_category_frequency(
            dataset, cfg.DATALOADER.REPEAT_THRESHOLD
        )
        return RepeatFactorTrainingSampler(factors)
    raise ValueError(
        f"DATALOADER.SAMPLER_TRAIN = {name!r} is invalid: allowed values are TrainingSampler, "
        "RepeatFactorTrainingSampler"
    )


def exclusion_log_path(cfg) -> str:
    """Where the training loader logs the images it excluded as unreadable."""
    return os.path.join(cfg.OUTPUT_DIR, "unreadable_images.jsonl")


def scale_router_groups(groups: List[Dict], model: torch.nn.Module, factor: float) -> List[Dict]:
    """Optimizer parameter groups with every router parameter moved into a group of its own
    kind whose learning rate is ``factor`` times its former group's."""
    routers = {id(p) for name, p in model.named_parameters() if is_router_parameter(name)}
    result = []
    for group in groups:
        params = list(group["params"])
        for subset, scale in (
            ([p for p in params if id(p) not in routers], 1.0),
            ([p for p in params if id(p) in routers], factor),
        ):
            if subset:
                result.append(
                    {
                        **group,
                        "params": subset,
                        **({"lr": group["lr"] * scale} if "lr" in group else {}),
                    }
                )
    return result


def _say_unusable_boxes(names, records) -> None:
    """Say once (main process) how many boxes training will drop as unusable."""
    if not comm.is_main_process():
        return
    boxes, images = count_unusable_boxes(records)
    if boxes:
        logging.getLogger(__name__).warning(
            f"{boxes} boxes in {images} images of DATASETS.TRAIN {list(names)} are NaN, missing "
            "or of zero or negative size: training drops them (scripts/check_dataset.py lists "
            "them)"
        )


class DDWTrainer(DefaultTrainer):
    """``DefaultTrainer`` with: the COCO evaluator (pycocotools path when Detectron2's kernels
    are absent), ``loss_ddw_sparsity`` when ``MODEL.DDW.SPARSITY_LOSS_WEIGHT > 0``, the
    :class:`WiringHook`, and DDP that works on CPU (gloo) as well as on GPUs."""

    def __init__(self, cfg):
        """``DefaultTrainer.__init__`` step by step (it has no hook for these), differing in:
        the datasets are checked before anything is built; DDP comes from
        :func:`create_ddp_model` (Detectron2's passes ``device_ids``, which DDP refuses for a
        CPU model, in v0.6 and on its main branch); the loader's resumable sampler is kept; the
        checkpointer is :class:`DDWCheckpointer`."""
        TrainerBase.__init__(self)
        logger = logging.getLogger("detectron2")
        if not logger.isEnabledFor(logging.INFO):
            setup_logger()
        if comm.is_main_process() and cfg.OUTPUT_DIR:
            lock_output_dir(cfg.OUTPUT_DIR)
        check_datasets(cfg)
        cfg = DefaultTrainer.auto_scale_workers(cfg, comm.get_world_size())
        model = self.build_model(cfg)
        optimizer = self.build_optimizer(cfg, model)
        data_loader = self.build_train_loader(cfg)
        self.train_sampler = getattr(data_loader, "resumable_sampler", None)
        self.train_dataset_size = getattr(data_loader, "dataset_size", None)
        model = create_ddp_model(model)
        self._trainer = (AMPTrainer if cfg.SOLVER.AMP.ENABLED else SimpleTrainer)(
            model, data_loader, optimizer
        )
        self.scheduler = self.build_lr_scheduler(cfg, optimizer)
        self.checkpointer = DDWCheckpointer(
            model, cfg.OUTPUT_DIR, facts=consumer_facts(cfg), trainer=weakref.proxy(self)
        )
        self.start_iter = 0
        self.max_iter = cfg.SOLVER.MAX_ITER
        self.cfg = cfg
        self.register_hooks(self.build_hooks())

    def state_dict(self):
        """Detectron2's trainer state with the optimizer's (``_trainer``), which Detectron2
        v0.6's ``DefaultTrainer`` leaves out (a resumed v0.6 run restarts its momentum and its
        first learning rate); later Detectron2 versions already store it."""
        ret = super().state_dict()
        ret.setdefault("_trainer", self._trainer.state_dict())
        return ret

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        if "_trainer" in state_dict:
            self._trainer.load_state_dict(state_dict["_trainer"])

    def resume_or_load(self, resume=True):
        """Detectron2's, plus: on resume, the random generators and the training sampler go on
        from the checkpoint, so that with deterministic settings (``SEED >= 0``,
        ``DATALOADER.NUM_WORKERS 0``, one process, and no aspect-ratio grouping or images of
        one orientation) the resumed run computes what the uninterrupted run would have."""
        if comm.is_main_process():
            self._refresh_exclusion_log(resume and self.checkpointer.has_checkpoint())
        checkpoint = self.checkpointer.resume_or_load(self.cfg.MODEL.WEIGHTS, resume=resume)
        if resume and self.checkpointer.has_checkpoint():
            self.start_iter = self.iter + 1
            if self.train_sampler is None:
                restore_rng_states(checkpoint.get("rng_states"))
            else:
                consumed = self.start_iter * self.cfg.SOLVER.IMS_PER_BATCH // comm.get_world_size()
                self.train_sampler.resume(consumed, checkpoint.get("rng_states"))

    def _refresh_exclusion_log(self, resume: bool) -> None:
        """Start the unreadable-image count afresh, or on resume re-check the images it lists
        (a file fixed since is counted no more)."""

        def sizes():
            records = get_detection_dataset_dicts(self.cfg.DATASETS.TRAIN)
            return {r["file_name"]: (r.get("width"), r.get("height")) for r in records}

        path = exclusion_log_path(self.cfg)
        earlier = os.path.join(self.cfg.OUTPUT_DIR, "skipped_images.jsonl")  # its name in 0.1
        if os.path.isfile(earlier) and not os.path.exists(path):
            os.replace(earlier, path)
        message = refresh_exclusion_log(path, resume, sizes)
        if message:
            logging.getLogger(__name__).warning(message)
            print(message, flush=True)

    @classmethod
    def build_model(cls, cfg):
        model = super().build_model(cfg)
        if cfg.MODEL.DDW.SPARSITY_LOSS_WEIGHT > 0:
            attach_sparsity_loss(model, cfg.MODEL.DDW.SPARSITY_LOSS_WEIGHT)
        return compile_from_config(cfg, model)

    @classmethod
    def build_optimizer(cls, cfg, model):
        """Detectron2's default optimizer; with ``MODEL.DDW.ROUTER_LR_FACTOR != 1`` the router
        parameters get their own groups at that multiple of each group's learning rate."""
        factor = cfg.MODEL.DDW.ROUTER_LR_FACTOR
        if factor == 1.0:
            return super().build_optimizer(cfg, model)
        params = get_default_optimizer_params(
            model,
            base_lr=cfg.SOLVER.BASE_LR,
            weight_decay_norm=cfg.SOLVER.WEIGHT_DECAY_NORM,
            bias_lr_factor=cfg.SOLVER.BIAS_LR_FACTOR,
            weight_decay_bias=cfg.SOLVER.WEIGHT_DECAY_BIAS,
        )
        return maybe_add_gradient_clipping(cfg, torch.optim.SGD)(
            scale_router_groups(params, model, factor),
            lr=cfg.SOLVER.BASE_LR,
            momentum=cfg.SOLVER.MOMENTUM,
            nesterov=cfg.SOLVER.NESTEROV,
            weight_decay=cfg.SOLVER.WEIGHT_DECAY,
        )

    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_folder=None):
        if output_folder is None:
            output_folder = os.path.join(cfg.OUTPUT_DIR, "inference")
        return build_coco_evaluator(dataset_name, output_dir=output_folder)

    @classmethod
    def train_mapper(cls, cfg):
        """The mapper of training records: Detectron2's ``DatasetMapper``. Override it to use a
        project's own; :meth:`build_train_loader` wraps it in :class:`ExcludeUnreadable`."""
        return DatasetMapper(cfg, is_train=True)

    @classmethod
    def build_train_loader(cls, cfg):
        """Detectron2's training loader, with unreadable images excluded, named and logged."""
        share = cfg.DATALOADER.MAX_UNREADABLE_IMAGE_SHARE
        if not 0.0 <= share <= 1.0:
            raise ValueError(
                f"DATALOADER.MAX_UNREADABLE_IMAGE_SHARE = {share!r} is invalid: must be in [0, 1]"
            )
        mapper = ExcludeUnreadable(cls.train_mapper(cfg), exclusion_log_path(cfg))
        dataset = get_detection_dataset_dicts(
            cfg.DATASETS.TRAIN,
            filter_empty=cfg.DATALOADER.FILTER_EMPTY_ANNOTATIONS,
            min_keypoints=cfg.MODEL.ROI_KEYPOINT_HEAD.MIN_KEYPOINTS_PER_IMAGE
            if cfg.MODEL.KEYPOINT_ON
            else 0,
            proposal_files=cfg.DATASETS.PROPOSAL_FILES_TRAIN if cfg.MODEL.LOAD_PROPOSALS else None,
        )
        _say_unusable_boxes(cfg.DATASETS.TRAIN, dataset)
        sampler = build_train_sampler(cfg, dataset)
        loader = build_detection_train_loader(
            MapReadable(DatasetFromList(dataset, copy=False), mapper),
            mapper=None,
            sampler=sampler,
            total_batch_size=cfg.SOLVER.IMS_PER_BATCH,
            aspect_ratio_grouping=cfg.DATALOADER.ASPECT_RATIO_GROUPING,
            num_workers=cfg.DATALOADER.NUM_WORKERS,
        )
        loader.dataset_size = len(dataset)  # read by __init__ for the excluded-image share
        if isinstance(sampler, ResumableTrainingSampler):
            loader.resumable_sampler = sampler  # read by __init__ for resuming
        return loader

    @classmethod
    def build_test_loader(cls, cfg, dataset_name):
        """Detectron2's test loader; an unreadable image stops evaluation naming the file,
        unless ``TEST.EXCLUDE_UNREADABLE_IMAGES`` leaves such images out beforehand."""
        mapper = ExcludeUnreadable(DatasetMapper(cfg, is_train=False), exclude=False)
        if not cfg.TEST.EXCLUDE_UNREADABLE_IMAGES:
            return build_detection_test_loader(cfg, dataset_name, mapper=mapper)
        records, excluded = [], {}
        for record in DatasetCatalog.get(dataset_name):
            problem = image_problem(
                record["file_name"], record.get("width"), record.get("height"), full_decode=True
            )
            if problem is None:
                records.append(record)
            else:
                excluded[record["file_name"]] = problem[1]
        cls.excluded_in_test[dataset_name] = excluded
        return build_detection_test_loader(
            records, mapper=mapper, num_workers=cfg.DATALOADER.NUM_WORKERS
        )

    excluded_in_test: Dict[str, Dict[str, str]] = {}

    @classmethod
    def test(cls, cfg, model, evaluators=None):
        results = super().test(cfg, model, evaluators)
        for name, excluded in cls.excluded_in_test.items():
            if name in cfg.DATASETS.TEST and excluded:
                message = (
                    f"{name}: {len(excluded)} unreadable images were left out of inference "
                    "(TEST.EXCLUDE_UNREADABLE_IMAGES) and count as images without detections: "
                    f"{', '.join(list(excluded)[:10])}"
                )
                logging.getLogger(__name__).warning(message)
                if comm.is_main_process():
                    print(message, flush=True)
        return results

    def build_hooks(self):
        hooks = super().build_hooks()
        wiring = WiringHook.from_config(self.cfg)
        hooks.insert(len(hooks) - 1 if comm.is_main_process() else len(hooks), wiring)
        cfg = self.cfg
        size = self.train_dataset_size
        unreadable = UnreadableImagesHook(
            exclusion_log_path(cfg),
            (lambda: size)
            if size is not None
            else (lambda: len(get_detection_dataset_dicts(cfg.DATASETS.TRAIN))),
            cfg.DATALOADER.MAX_UNREADABLE_IMAGE_SHARE,
        )
        hooks.insert(len(hooks) - 1 if comm.is_main_process() else len(hooks), unreadable)
        if cfg.MODEL.DDW.THRESHOLD_WARMUP_ITERS > 0:
            hooks.insert(0, ThresholdWarmupHook(cfg.MODEL.DDW.THRESHOLD_WARMUP_ITERS))
        return hooks
