"""The domain: models, rules, operations and the solver translation."""
