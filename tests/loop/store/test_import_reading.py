"""Reading a lab's earlier experiments (nanoloop.loop.store.experiments): layouts, units, mapping, replicates, the space."""

import numpy as np
import pandas as pd
import pytest

from nanoloop.loop.config import default_config, parse_config
from nanoloop.loop.errors import InputError
from nanoloop.loop.store.experiments import read_experiments, read_mapping

SPACE = default_config().design_space()
RECIPE = {"polymer": "PLGA 50:50", "polymer_mw_kda": 40, "drug_logp": 2.0, "drug_loading_pct": 10, "particle_size_nm": 200,
          "peg_fraction": 0.1, "ph_responsive_fraction": 0.1, "medium_ph": 7.4}


def _wide(path, rows, times=("1 h", "24 h", "7 d"), sep=","):
    header = [*RECIPE, *times]
    lines = [sep.join(header)] + [sep.join(str(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def _row(release, **changes):
    return [*{**RECIPE, **changes}.values(), *release]


def test_wide_rows_with_the_same_recipe_are_replicates_of_one_formulation(tmp_path):
    f = _wide(tmp_path / "w.csv", [_row([5, 30, 80]), _row([7, 34, 84]), _row([2, 10, 40], polymer="PLA")])
    ex = read_experiments(f, SPACE)
    assert len(ex.recipes) == 2
    first = ex.keys[0]
    curve = ex.curves[ex.curves["key"] == first]
    assert sorted(curve["replicate"].unique()) == [1, 2]
    assert curve[curve["replicate"] == 2]["time_hours"].tolist() == [1.0, 24.0, 168.0]  # "7 d" -> 168 h
    assert curve[curve["replicate"] == 2]["release_pct"].tolist() == [7, 34, 84]
    assert ex.source_rows[first] == ["line 2", "line 3"]
    assert ex.recipe(first) == {**RECIPE, "polymer_mw_kda": 40.0, "drug_loading_pct": 10.0, "particle_size_nm": 200.0}
    assert any("wide layout" in n and "converted to h" in n for n in ex.notes)
    assert any("release read as percent" in n for n in ex.notes)
    assert len(ex.sha256) == 64 and not ex.bad_rows and not ex.outside_space


def test_long_semicolons_decimal_commas_minutes_fraction_unsorted(tmp_path):
    f = tmp_path / "long.csv"
    values = {k: str(v).replace(".", ",") for k, v in RECIPE.items()}
    lines = [";".join([*RECIPE, "Time (min)", "Cumulative release"])]
    for t, r in ((1440, "0,40"), (60, "0,05"), (600, "0,22")):  # out of order, as fraction of the dose
        lines.append(";".join([*values.values(), str(t), r]))
    f.write_text("\n".join(lines) + "\n")
    ex = read_experiments(f, SPACE)
    curve = ex.curves.sort_values("time_hours")
    assert curve["time_hours"].tolist() == [1.0, 10.0, 24.0]
    assert np.allclose(curve["release_pct"], [5.0, 22.0, 40.0])
    notes = " | ".join(ex.notes)
    assert "decimal commas" in notes and "semicolon" in notes and "time in min" in notes
    assert "fraction of the dose" in notes and "times sorted" in notes
    assert ex.recipe(ex.keys[0])["peg_fraction"] == 0.1


def test_time_and_release_units_given_by_options(tmp_path):
    f = _wide(tmp_path / "t.csv", [_row([0.1, 0.3, 0.5])], times=("t=1", "t=3", "t=7"))
    ex = read_experiments(f, SPACE, time_unit="d", release_unit="pct")
    assert ex.curves["time_hours"].tolist() == [24.0, 72.0, 168.0]
    assert ex.curves["release_pct"].tolist() == [0.1, 0.3, 0.5]  # given as %, not scaled
    with pytest.raises(InputError, match="names its unit but --time-unit min"):
        read_experiments(_wide(tmp_path / "h.csv", [_row([1, 2, 3])]), SPACE, time_unit="min")


def test_days_headers_and_no_unit_defaults_to_hours_and_says_so(tmp_path):
    ex = read_experiments(_wide(tmp_path / "d.csv", [_row([10, 20, 30])], times=("day 1", "day 3", "day 7")), SPACE)
    assert ex.curves["time_hours"].tolist() == [24.0, 72.0, 168.0]
    bare = read_experiments(_wide(tmp_path / "b.csv", [_row([10, 20, 30])], times=("t=1", "t=2", "t=4")), SPACE)
    assert bare.curves["time_hours"].tolist() == [1.0, 2.0, 4.0]
    assert any("headers name no unit" in n for n in bare.notes)


@pytest.mark.parametrize("layout", ["wide", "long"])
def test_excel_sheets_are_read(tmp_path, layout):
    if layout == "wide":
        frame = pd.DataFrame([{**RECIPE, "1 h": 4.0, "24 h": 30.0, "7 d": 70.0}, {**RECIPE, "1 h": 6.0, "24 h": 32.0, "7 d": 72.0}])
    else:
        frame = pd.DataFrame([{**RECIPE, "time_hours": t, "release_pct": r} for t, r in ((1, 4.0), (24, 30.0), (168, 70.0))])
    frame.to_excel(tmp_path / "x.xlsx", index=False)
    ex = read_experiments(tmp_path / "x.xlsx", SPACE)
    assert len(ex.recipes) == 1 and ex.curves["time_hours"].max() == 168.0
    assert ex.source_rows[ex.keys[0]][0] == "row 2"
    assert any("Excel" in n for n in ex.notes)


def test_mapping_flag_and_mapping_files(tmp_path):
    renamed = {"polymer_mw_kda": "Polymer MW (kDa)", "particle_size_nm": "Size (nm)"}
    header = [renamed.get(k, k) for k in RECIPE] + ["1 h", "24 h"]
    f = tmp_path / "m.csv"
    f.write_text(",".join(header) + "\n" + ",".join(str(v) for v in [*RECIPE.values(), 5, 40]) + "\n")
    with pytest.raises(InputError, match="no column for the space variable.*polymer_mw_kda, particle_size_nm"):
        read_experiments(f, SPACE)
    by_flag = read_experiments(f, SPACE, {"Polymer MW (kDa)": "polymer_mw_kda", "size (NM)": "particle_size_nm"})
    (tmp_path / "map.toml").write_text('"Polymer MW (kDa)" = "polymer_mw_kda"\n"Size (nm)" = "particle_size_nm"\n')
    (tmp_path / "map.csv").write_text("header,variable\nPolymer MW (kDa),polymer_mw_kda\nSize (nm),particle_size_nm\n")
    for mapping in (read_mapping(tmp_path / "map.toml"), read_mapping(tmp_path / "map.csv")):
        assert read_experiments(f, SPACE, mapping).keys == by_flag.keys
    assert by_flag.recipe(by_flag.keys[0])["particle_size_nm"] == 200.0
    with pytest.raises(InputError, match="'nope' is neither a variable"):
        read_experiments(f, SPACE, {"Size (nm)": "nope"})


def test_missing_variables_are_named_unless_set_and_extra_columns_are_said(tmp_path):
    recipe = {k: v for k, v in RECIPE.items() if k != "medium_ph"}
    f = tmp_path / "s.csv"
    f.write_text(",".join([*recipe, "Operator", "1 h", "24 h"]) + "\n" + ",".join([*(str(v) for v in recipe.values()), "ann", "5", "40"]) + "\n")
    with pytest.raises(InputError, match=r"no column for the space variable\(s\) medium_ph.*--set"):
        read_experiments(f, SPACE)
    ex = read_experiments(f, SPACE, fixed={"medium_ph": "6.8"})
    assert ex.recipe(ex.keys[0])["medium_ph"] == 6.8
    assert any("not in the space, ignored: Operator" in n for n in ex.notes)
    with pytest.raises(InputError, match="has a column for it"):
        read_experiments(f, SPACE, fixed={"medium_ph": "6.8", "polymer": "PLA"})


def test_characterization_columns_are_averaged_over_replicates(tmp_path):
    f = tmp_path / "c.csv"
    f.write_text(",".join([*RECIPE, "size_nm", "PDI", "1 h", "24 h"]) + "\n"
                 + ",".join([*(str(v) for v in RECIPE.values()), "210", "0.1", "5", "40"]) + "\n"
                 + ",".join([*(str(v) for v in RECIPE.values()), "230", "0.2", "6", "42"]) + "\n")
    ex = read_experiments(f, SPACE)
    row = ex.characterization.loc[ex.keys[0]]
    assert row["size_nm"] == 220.0 and row["pdi"] == pytest.approx(0.15)


def test_outside_the_space_is_kept_and_said_an_unknown_category_is_a_bad_row(tmp_path):
    data = default_config().model_dump(mode="json")
    data["space"]["polymer_mw_kda"] = {"min": 10, "max": 60}
    space = parse_config(data).design_space()
    f = _wide(tmp_path / "o.csv", [_row([5, 30, 60], polymer_mw_kda=90), _row([5, 30, 60], peg_fraction=0.3, ph_responsive_fraction=0.3),
                                    _row([5, 30, 60], polymer="Chitosan")])
    ex = read_experiments(f, space)
    assert len(ex.recipes) == 2
    reasons = list(ex.outside_space.values())
    assert reasons[0] == ["polymer_mw_kda = 90 is outside [10, 60]"]
    assert "peg_fraction + ph_responsive_fraction <= 0.4 is not met (0.6)" in reasons[1][0]
    assert [(b.row, b.column) for b in ex.bad_rows] == [("line 4", "polymer")] and "Chitosan" in ex.bad_rows[0].message
    encoded = space.encode(ex.recipes)  # beyond the bounds: encoded beyond [0, 1], no clipping error
    assert encoded.max() > 1.0


def test_space_outside_reasons_is_empty_inside():
    assert SPACE.outside_reasons(RECIPE) == []
    assert SPACE.outside_reasons({**RECIPE, "medium_ph": 8.0}) == ["medium_ph = 8 is outside [5, 7.4]"]
