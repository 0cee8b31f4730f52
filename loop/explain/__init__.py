"""Which formulation variables drive the predicted release: permutation importance, integrated gradients,
signed effects (Shapley values) and partial dependence, stored per round.

Above models and design (it explains a fitted model over a design space), below
the store and the campaign (a round's explanation is handed the campaign).
"""
