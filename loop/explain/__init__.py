"""Which formulation variables drive the predicted release: importance, signed effects, partial dependence."""
