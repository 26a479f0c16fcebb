"""RUL and health model training: estimators, Lightning data modules, export and quantization.

The modules here may import torch and Lightning; import each from its module (``models.transformer``,
``models.pipeline``, ...): this package itself imports nothing, so a torch-free module such as
:mod:`models.evaluation` stays torch-free when imported. What the gateway needs to *run* a model
(the card, the registry, conformal intervals, the ONNX predictors) lives in :mod:`core.inference`.
"""
