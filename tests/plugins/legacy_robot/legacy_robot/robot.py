"""A plug-in written exactly as an earlier release's README showed (old import path, old argument name)."""

from nanoloop.loop.instruments import Characterization, JobResult, JobState, PermanentInstrumentError


class NominalSynthesisRobot:
    """Makes every recipe; reports nominal size (nm) and an assumed encapsulation efficiency (%)."""

    kind = "synthesis"

    def __init__(self, name: str = "nominal-robot", encapsulation_efficiency_pct: float = 70.0):
        self.name = name
        self.efficiency_pct = encapsulation_efficiency_pct
        self._results: dict[str, JobResult] = {}

    def describe(self) -> dict:
        return {"name": self.name, "kind": self.kind, "vendor": "our workshop"}

    def submit(self, items, timeout_s: float = 30.0) -> None:
        for item in items:
            if item.key in self._results:  # the same idempotency key is made once
                continue
            if "particle_size_nm" not in item.recipe:
                raise PermanentInstrumentError(self.name, "recipe has no particle_size_nm", item_key=item.key)
            made = Characterization(
                size_nm=float(item.recipe["particle_size_nm"]),
                pdi=0.1,
                zeta_mv=-20.0,
                encapsulation_efficiency_pct=self.efficiency_pct,
                drug_loading_pct=float(item.recipe["drug_loading_pct"]) * self.efficiency_pct / 100,
            )
            self._results[item.key] = JobResult(item.key, JobState.DONE, characterization=made)

    def status(self, keys, timeout_s: float = 30.0) -> dict:
        return {key: self._results[key].state if key in self._results else JobState.UNKNOWN for key in keys}

    def collect(self, keys, timeout_s: float = 30.0) -> list:
        return [self._results[key] for key in keys if key in self._results]

    def cancel(self, keys, timeout_s: float = 30.0) -> None:
        pass  # every job finishes at once
