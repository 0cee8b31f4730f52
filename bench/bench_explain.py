"""Cost of the signed explanations per round: captum Shapley values and partial dependence.

For every surrogate stored in a campaign (one per round), times what the round
flow adds to a round's explanation (:mod:`nanoloop.loop.explain.effects`) on the
formulations that model was trained on, and prints the signed effect of each
variable at the last target time. ``--blend`` also refits the campaign's data
with the blended model (``model = "blend"``: network + gradient-boosted trees)
and times the same on it. Nothing is written to the store.

    nice .venv/bin/python bench/bench_explain.py --store nanoloop-demo [--blend]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from nanoloop.loop.models.blend import BlendedRelease
from nanoloop.loop.campaign.campaign import Campaign
from nanoloop.loop.explain.effects import categories_of, partial_dependence_rows, shapley_values, summarize_effects
from nanoloop.loop.explain.importance import variable_columns


def _time(model, features, campaign, times) -> tuple[float, float, object]:
    names = list(campaign.space.feature_names)
    variables = variable_columns(names)
    start = time.perf_counter()
    values = shapley_values(model, features, variables, times)
    shapley_s = time.perf_counter() - start
    start = time.perf_counter()
    partial_dependence_rows(model, features, campaign.space, times)
    pd_s = time.perf_counter() - start
    return shapley_s, pd_s, summarize_effects(values, features, variables, times, categories_of(campaign.space))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", required=True, help="campaign ledger folder")
    parser.add_argument("--blend", action="store_true", help="also refit the campaign's data with the blended model and time it")
    args = parser.parse_args(argv)
    campaign = Campaign.open(args.store)
    times = np.asarray(campaign.config.target.times_hours, float)
    X, y, groups, _ = campaign.models.training_data()
    forms = campaign.ledger.read("formulations").set_index("formulation_id")
    models = campaign.ledger.read("models").sort_values("round")
    print(f"{len(times)} target times, {len(campaign.space.names)} design variables, torch threads {__import__('torch').get_num_threads()}")
    print("| round | model | formulations | members | Shapley s | partial dependence s |")
    print("|---|---|---|---|---|---|")
    last = None
    for row in models.itertuples():
        model = campaign.models.load(row.model_version)
        earlier = forms.loc[groups, "round"].to_numpy() < row.round
        _, first = np.unique(groups[earlier], return_index=True)
        features = X[earlier][first, :-1]
        shapley_s, pd_s, last = _time(model, features, campaign, times)
        members = len(model.predict_curves(features[:1], times))
        print(f"| {row.round} | {type(model).__name__} | {len(features)} | {members} | {shapley_s:.2f} | {pd_s:.2f} |")
    if args.blend:
        settings = campaign.config.surrogate
        blend = BlendedRelease(head=settings.head, n_members=settings.members, hidden=settings.hidden, epochs=settings.epochs,
                               random_state=campaign.config.seed).fit(X, y, groups)
        _, first = np.unique(groups, return_index=True)
        shapley_s, pd_s, last = _time(blend, X[first, :-1], campaign, times)
        print(f"| all | BlendedRelease (refit) | {len(first)} | {len(blend.predict_curves(X[:1, :-1], times))} | {shapley_s:.2f} | {pd_s:.2f} |")
    if last is not None:
        at = last[last["time_hours"] == times[-1]].sort_values("importance", ascending=False)
        print(f"\nlast model, release at {times[-1]:g} h: mean |Shapley| (pct points), signed change from min to max")
        for r in at.itertuples():
            effect = r.effect_detail if isinstance(r.effect_detail, str) else f"{r.effect_pct:+.1f}"
            print(f"  {r.feature:24s} {r.importance:6.2f}  {effect}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
