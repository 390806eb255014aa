"""Learning rules. Each proposes, per layer, an estimate of the descent direction −∇L."""
