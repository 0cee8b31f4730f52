"""Simulated instruments that log every submitted key to a file: a plug-in loaded by import path,
used to check that nothing is dispatched twice across crashes."""

from pathlib import Path

from nanoloop.adapters.simulated.dissolution import SimulatedDissolution
from nanoloop.adapters.simulated.synthesis import SimulatedSynthesis


class _Counting:
    def submit(self, items, timeout_s=30.0):
        log = Path(self.state_dir) / f"submitted-{self.kind}.log"
        with open(log, "a") as handle:
            handle.write("".join(f"{item.key}\n" for item in items))
        return super().submit(items, timeout_s=timeout_s)


class CountingSynthesis(_Counting, SimulatedSynthesis):
    pass


class CountingDissolution(_Counting, SimulatedDissolution):
    pass
