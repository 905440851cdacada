"""Loss classes by name: ``create_loss("hinge_generator")``; each has one ``forward``.

Importing the built-in loss modules here runs their ``@register_loss`` decorators; a new loss module is added to this
import (the registry itself imports no loss: it stays a leaf).
"""

from maskface.losses import (  # noqa: F401  (they register themselves)
    adversarial,
    distillation,
    elasticface,
    identity,
    reconstruction,
    segmentation,
)
from maskface.losses.registry import create_loss, list_losses

__all__ = ["create_loss", "list_losses"]
