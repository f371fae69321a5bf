import pytest

from ddw_detectron.utils.run_lock import OutputDirBusyError, lock_output_dir
from tests.helpers import output_dir_held


def test_a_second_process_is_refused_naming_the_first(tmp_path):
    with output_dir_held(tmp_path) as pid:
        with pytest.raises(OutputDirBusyError, match=f"process {pid} on"):
            lock_output_dir(str(tmp_path))
    lock_output_dir(str(tmp_path))  # free once the holder is gone (even killed)
    lock_output_dir(str(tmp_path))  # and this process may use it again
