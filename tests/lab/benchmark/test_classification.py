def test_the_gpu_group_holds_the_batch_sizes_and_format_gpu_users_pretrain_with():
    from ddw_lab.benchmark.classification import GROUPS, SETTINGS

    gpu = {SETTINGS[name][1:] for name in GROUPS["gpu"]}
    assert gpu == {(224, 128, True), (224, 256, True)} and len(GROUPS["gpu"]) == 3
    assert all(not SETTINGS[name][3] and SETTINGS[name][2] <= 64 for name in GROUPS["cpu"])
