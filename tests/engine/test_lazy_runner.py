"""``scripts/lazyconfig_train_net.py`` (``engine.lazy_runner``): a LazyConfig trains and is
evaluated with its wiring logged, and ``train.ddp`` reaches DDP (two processes, gloo)."""

import json

import pytest
import torch
import torch.multiprocessing as mp

from tests.helpers import ROOT, run_python

pytestmark = pytest.mark.long(60)


def test_lazyconfig_training_logs_the_wiring_and_evaluates(cache, tmp_path):
    result = run_python(
        "scripts/lazyconfig_train_net.py", "--config-file",
        ROOT / "configs" / "Demo" / "faster_rcnn_DDW_R_18_FPN_shapes.py",
        "train.max_iter=3", "train.log_period=1", f"train.output_dir={tmp_path}",
        "dataloader.train.total_batch_size=2", "dataloader.train.dataset.names=ddw_shapes_tiny",
        "dataloader.test.dataset.names=ddw_shapes_tiny",
        "model.roi_heads.box_predictor.test_score_thresh=0.0",
        env={"DDW_DATASETS_CACHE": cache},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    assert "box AP = " in result.stdout
    lines = [json.loads(line) for line in (tmp_path / "metrics.json").read_text().splitlines()]
    assert {"ddw/res2/mean_edge_weight", "ddw/res5/diversity", "total_loss"} <= set().union(*lines)
    assert (tmp_path / "model_final.pth").is_file()


def _ddp_worker(rank, port, queue):
    import torch.distributed as dist

    from ddw_detectron.engine import create_ddp_model

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        model = create_ddp_model(
            torch.nn.Linear(2, 2), find_unused_parameters=True, fp16_compression=True
        )
        queue.put((rank, type(model).__name__, model.find_unused_parameters))
    finally:
        dist.destroy_process_group()


def test_train_ddp_keys_reach_distributed_data_parallel():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    context = mp.get_context("spawn")
    queue = context.Queue()
    mp.start_processes(_ddp_worker, args=(port, queue), nprocs=2, start_method="spawn")
    seen = sorted(queue.get(timeout=60) for _ in range(2))
    assert seen == [(0, "DistributedDataParallel", True), (1, "DistributedDataParallel", True)]
