"""Federated retraining of the RUL models across plants (Flower, with SecAgg+ secure aggregation)."""
