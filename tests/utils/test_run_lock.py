import subprocess
import sys

import pytest

from ddw_detectron.utils.run_lock import OutputDirBusyError, lock_output_dir

HOLD = """
import sys, time
from ddw_detectron.utils.run_lock import lock_output_dir
lock_output_dir(sys.argv[1])
print("locked", flush=True)
time.sleep(60)
"""


def test_a_second_process_is_refused_naming_the_first(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(OutputDirBusyError, match=f"process {holder.pid} on"):
            lock_output_dir(str(tmp_path))
    finally:
        holder.kill()
        holder.wait()
    lock_output_dir(str(tmp_path))  # free once the holder is gone (even killed)
    lock_output_dir(str(tmp_path))  # and this process may use it again
