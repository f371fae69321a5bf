"""ddw_detectron.engine.runner: the summary lines every train_net.py prints."""

from ddw_detectron.engine.runner import print_summary, summary_lines

RESULTS = {
    "bbox": {"AP": 70.123, "AP50": 91.3, "AP75": 83.6, "APs": 12.0},
    "segm": {"AP": 50.0, "AP50": 60.0, "AP75": 55.5},
}


def test_summary_lines_give_box_then_mask_ap_with_two_decimals():
    assert summary_lines(RESULTS) == [
        "box AP = 70.12, AP50 = 91.30, AP75 = 83.60",
        "mask AP = 50.00, AP50 = 60.00, AP75 = 55.50",
    ]
    assert summary_lines({"segm": RESULTS["segm"]}) == [
        "mask AP = 50.00, AP50 = 60.00, AP75 = 55.50"
    ]


def test_no_summary_line_without_results():
    # Detectron2's evaluators return {} (or nothing) outside the main process.
    assert (
        summary_lines(None) == [] and summary_lines({}) == [] and summary_lines({"bbox": {}}) == []
    )


def test_print_summary_prints_the_lines(capsys):
    print_summary(RESULTS)
    assert capsys.readouterr().out.splitlines() == summary_lines(RESULTS)
