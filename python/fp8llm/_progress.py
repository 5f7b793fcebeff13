"""A progress bar for generate(): tqdm when it is installed, else one status line on stderr."""

import sys
import time


class Progress:
    def __init__(self, total: int, desc: str = "Processed prompts"):
        self._total = total
        self._desc = desc
        self._bar = None
        self._start = time.monotonic()
        try:
            from tqdm.auto import tqdm  # optional

            self._bar = tqdm(total=total, desc=desc, dynamic_ncols=True)
        except ImportError:
            pass

    def __call__(self, done: int, total: int) -> None:
        if self._bar is not None:
            self._bar.update(done - self._bar.n)
            return
        rate = done / max(time.monotonic() - self._start, 1e-9)
        end = "\n" if done >= total else ""
        sys.stderr.write(f"\r{self._desc}: {done}/{total} ({rate:.2f} it/s){end}")
        sys.stderr.flush()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
