"""The feature view's signed effects and partial dependence, in a real browser (Debian's chromium, Playwright)."""

from __future__ import annotations

import shutil

import pytest

from nanoloop.adapters.registry import build_instruments
from nanoloop.loop.campaign.campaign import Campaign
from nanoloop.loop.explain.importance import explain_round, read_explanations
from nanoloop.loop.store.ledger import Ledger
from test_dashboard_browser import CHROMIUM, _shot, dashboard, page  # noqa: F401  (fixtures: the served store, the page)

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium")]


def _ticks(page, graph: str, axis: str) -> list[tuple[float, str]]:
    """(screen position, text) of an axis' tick labels in one graph."""
    return page.evaluate(f"""() => Array.from(document.querySelectorAll('#{graph} .{axis}tick text'))
        .map(t => [t.getBoundingClientRect().{'top' if axis == 'y' else 'left'}, t.textContent])""")


def test_feature_view_shows_signed_effects_and_partial_dependence(dashboard, page, campaign_store, tmp_path):
    url, store = dashboard
    template, _ = campaign_store
    shutil.copytree(template, store)
    campaign = Campaign(Campaign.open(str(store)).config, Ledger(str(store)), build_instruments)
    explain_round(campaign, 2)
    _, wide = read_explanations(Ledger(str(store), create=False), 2)
    signed = wide.attrs["signed"]
    by_size = list(dict.fromkeys(signed["feature"]))
    times = sorted(signed["time_hours"].unique())

    page.goto(url + "#importance")
    page.click("#tab-importance")
    page.wait_for_selector("#fig-effects .barlayer .trace", timeout=30_000)
    # panels in time order, left to right (numeric: 24 h before 168 h)
    titles = page.evaluate("""() => Array.from(document.querySelectorAll('#fig-effects .annotation-text'))
        .map(t => [t.getBoundingClientRect().left, t.textContent])""")
    shown = [text for _, text in sorted(titles) if text.startswith("release at")]
    assert shown == [f"release at {t:g} h" for t in times]
    # variables sorted by size, largest on top
    rows = [text for _, text in sorted(_ticks(page, "fig-effects", "y"))]
    assert rows[: len(by_size)] == by_size
    # the direction is in the legend and the colours
    legend = page.text_content("#fig-effects .legend")
    directions = set(signed["direction"])
    if "+" in directions:
        assert "+ more speeds release" in legend
    if "-" in directions:
        assert "- more slows release" in legend
    # the magnitude bars' legend is in time order too
    legend = page.text_content("#fig-importance .legend")
    assert legend.index("permutation") < legend.index("@24h") < legend.index("@168h") < legend.index("@672h")

    # partial dependence of the default variable, with its band; then another variable chosen in the dropdown
    page.wait_for_selector("#fig-pd .scatterlayer .trace", timeout=30_000)
    first = page.text_content("#fig-pd .gtitle")
    assert "against drug_loading_pct" in first and "at 24 h" in first
    assert "band (5-95 % of ensemble members)" in page.text_content("#fig-pd .legend")
    page.click("#pd-variable")
    page.get_by_role("option", name="polymer_mw_kda").click()
    page.wait_for_function("() => document.querySelector('#fig-pd .gtitle').textContent.includes('polymer_mw_kda')", timeout=20_000)
    assert len(page.query_selector_all("#fig-pd .scatterlayer .trace")) == 2  # the band and the curve
    _shot(page, tmp_path, "dashboard-signed-effects")
