"""``launch`` for more than one process, on GPUs (Detectron2's NCCL launch) or on CPUs (gloo).

Detectron2's ``launch`` is used whenever it can run the processes: on CUDA, for one process, and
on CPUs with a Detectron2 that starts gloo groups itself (its current main branch, which has the
public ``comm.create_local_process_group``). Detectron2 v0.6's ``launch`` always initialises NCCL;
with it and without CUDA, this module starts ``num_gpus_per_machine`` CPU processes per machine,
each joining a gloo group. ``num_machines``, ``machine_rank`` and ``dist_url`` mean what they mean
in Detectron2.
"""

import logging

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from detectron2.engine import default_setup
from detectron2.engine import launch as detectron2_launch
from detectron2.utils import comm

from ..utils.run_lock import lock_output_dir

__all__ = ["launch", "launch_from_args", "setup_run"]


def setup_run(cfg, args, output_dir: str) -> None:
    """Detectron2's ``default_setup`` (logger, ``config.yaml``, environment) after the main
    process has taken ``output_dir``'s lock: a run refused because another one holds the folder
    writes nothing into it (``default_setup`` alone would overwrite its config and log)."""
    if comm.is_main_process() and output_dir:
        lock_output_dir(output_dir)
    default_setup(cfg, args)


def _find_free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch(main_func, num_gpus_per_machine, num_machines=1, machine_rank=0, dist_url=None, args=()):
    world_size = num_machines * num_gpus_per_machine
    detectron2_supports_cpu = hasattr(comm, "create_local_process_group")
    if torch.cuda.is_available() or world_size <= 1 or detectron2_supports_cpu:
        return detectron2_launch(
            main_func,
            num_gpus_per_machine,
            num_machines=num_machines,
            machine_rank=machine_rank,
            dist_url=dist_url,
            args=args,
        )
    if dist_url == "auto":
        if num_machines != 1:
            raise ValueError(
                "dist_url=auto is not supported for more than one machine; give tcp://HOST:PORT"
            )
        dist_url = f"tcp://127.0.0.1:{_find_free_port()}"
    mp.start_processes(
        _cpu_worker,
        nprocs=num_gpus_per_machine,
        args=(main_func, world_size, num_gpus_per_machine, machine_rank, dist_url, args),
        daemon=False,
    )


def launch_from_args(main_func, args) -> None:
    """``launch(main_func, ...)`` with the process options of Detectron2's
    ``default_argument_parser`` (``--num-gpus``, ``--num-machines``, ``--machine-rank``,
    ``--dist-url``); ``main_func`` gets ``args``."""
    launch(
        main_func,
        args.num_gpus,
        num_machines=args.num_machines,
        machine_rank=args.machine_rank,
        dist_url=args.dist_url,
        args=(args,),
    )


def _cpu_worker(local_rank, main_func, world_size, per_machine, machine_rank, dist_url, args):
    rank = machine_rank * per_machine + local_rank
    try:
        dist.init_process_group(
            backend="gloo", init_method=dist_url, world_size=world_size, rank=rank
        )
    except Exception:
        logging.getLogger(__name__).error(f"process group initialisation failed at {dist_url}")
        raise
    # Detectron2 v0.6 has no public way to set its local process group (used by
    # comm.get_local_rank and SyncBN); every process creates every group, as new_group requires.
    for machine in range(world_size // per_machine):
        ranks = list(range(machine * per_machine, (machine + 1) * per_machine))
        group = dist.new_group(ranks)
        if machine == machine_rank:
            comm._LOCAL_PROCESS_GROUP = group
    comm.synchronize()
    try:
        main_func(*args)
    finally:
        dist.destroy_process_group()
