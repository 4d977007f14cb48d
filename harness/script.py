"""What a script that starts servers needs around them: progress lines, and SIGTERM as Ctrl-C.

    progress = Progress("bench")
    progress("matrix: 12 rows warmed")   # [bench 03:12] matrix: 12 rows warmed
    stop_on_sigterm()                    # a `kill` unwinds the finally blocks that stop the servers
"""

import signal
import time


class Progress:
    """Print progress lines headed by a label and the minutes and seconds since it was made."""

    def __init__(self, label):
        self.label = label
        self.started = time.monotonic()

    def __call__(self, message):
        elapsed = int(time.monotonic() - self.started)
        print(f"[{self.label} {elapsed // 60:02d}:{elapsed % 60:02d}] {message}", flush=True)


def _interrupt(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


def stop_on_sigterm():
    """Turn SIGTERM into KeyboardInterrupt, so the script stops its servers as it does on Ctrl-C."""
    signal.signal(signal.SIGTERM, _interrupt)
