"""One way to train: the registry of training recipes, each writing a typed model card.

A recipe is what a pipeline module trains, behind one interface (:class:`Recipe`: ``default_config``,
``train``, ``build_card``, ``register``, and its name, registry names, unit and dataset):

* ``cmapss`` (:mod:`models.pipeline`): RUL in cycles of a C-MAPSS subset, ``cmapss-FD001`` .. ``cmapss-FD004``;
* ``simulator`` (:mod:`models.sim_pipeline`): the demo plant's RUL in hours, ``sim-bearing``;
* ``femto`` (:mod:`models.femto_pipeline`): a bearing's share of life left (%), ``femto-bearing``.

Every recipe builds its card with :func:`models._recipe.model_card` and registers through
:func:`models._recipe.export_measure_register` (export fp32 and the variant, measure them with
onnxruntime, register); what differs (data, splits, metrics) stays in its module. ``genedge rul
train``, ``train-sim`` and ``train-femto`` are thin calls into :func:`get_recipe`::

    recipe = get_recipe("simulator")
    result = recipe.train(seed=0, max_epochs=2)
    version = recipe.register(result, "var/registry", promote=False)
"""

from __future__ import annotations

from typing import Any

from core.errors import ModelError
from models import femto_pipeline, pipeline, sim_pipeline
from models._recipe import Recipe, RunOptions

__all__ = ["RECIPES", "Recipe", "RunOptions", "get_recipe", "recipe_rows"]

#: The training recipes by name.
RECIPES: dict[str, Recipe[Any]] = {
    recipe.name: recipe for recipe in (pipeline.RECIPE, sim_pipeline.RECIPE, femto_pipeline.RECIPE)
}


def get_recipe(name: str) -> Recipe[Any]:
    """The recipe called ``name``.

    Raises:
        ModelError: no recipe has that name; the message lists the known ones.
    """
    try:
        return RECIPES[name]
    except KeyError:
        raise ModelError(f"recipe must be one of {sorted(RECIPES)}, got {name!r}") from None


def recipe_rows() -> list[dict[str, Any]]:
    """One row per recipe: name, registry names, unit, dataset, default seed, variants."""
    return [
        {
            "name": r.name,
            "registry_names": list(r.registry_names),
            "unit": r.unit,
            "dataset": r.dataset,
            "needs_data_dir": r.needs_data_dir,
            "default_seed": r.default_seed,
            "variants": list(r.variants),
        }
        for r in RECIPES.values()
    ]
