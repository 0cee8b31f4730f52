"""Release models: the deep ensemble, its heads and training, the blend, Gaussian processes, the property model, predictive draws."""
