"""Training recipes by name: ``maskface train NAME --config configs/NAME.yaml``."""

from __future__ import annotations

from maskface.train.engine import Recipe


def recipes() -> dict[str, type[Recipe]]:
    from maskface.train.recipes.deocclusion import DeocclusionRecipe
    from maskface.train.recipes.distill import DistillRecipe
    from maskface.train.recipes.maskinv import MaskInvRecipe
    from maskface.train.recipes.occlusion import OcclusionRecipe

    return {r.name: r for r in (DeocclusionRecipe, OcclusionRecipe, DistillRecipe, MaskInvRecipe)}
