"""The dashboard's data and figures for a campaign that so far holds only imported formulations (round -1)."""

from pathlib import Path

from nanoloop.dashboard import data, figures, insights
from nanoloop.flows.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "loop" / "examples"


def test_imports_are_shown_apart_and_no_round_view_breaks(tmp_path, capsys):
    store = str(tmp_path / "store")
    assert main(["import", store, str(EXAMPLES / "earlier_formulations.csv"), "--config", str(EXAMPLES / "demo.toml"),
                 "--map-file", str(EXAMPLES / "earlier_formulations_map.toml")]) == 0
    snap = data.load_snapshot(store)
    k = data.key_numbers(snap)
    assert k["rounds"] == 0 and k["experiments"] == 0 and k["imported"] == 24
    assert k["imported_note"].startswith("imported: 24 formulations from earlier_formulations.csv")
    assert k["best_where"] == "imported"
    assert list(data.rounds_table(snap).columns)[:2] == ["round", "proposed"] and data.rounds_table(snap).empty
    assert {t.name for t in figures.best_f2_figure(snap).data} == {"imported", "best so far"}
    assert "round -1" not in {t.name for t in insights.characterization_figure(snap).data}
    assert data.model_quality(snap).empty  # no model-made proposals: no prospective error
