"""Networks by name: ``create_model("dlib_resnet_v1", pretrained=True)``.

Importing the built-in model modules here runs their ``@register_model`` decorators; a new model module is added to
this import (the registry itself imports no model: it stays a leaf).
"""

from maskface.models import (  # noqa: F401  (they register themselves)
    deocclusion,
    dlib_resnet,
    ensemble,
    iresnet,
    mask_aware,
    maskinv,
    omz_reid,
    sface,
)
from maskface.models.registry import create_model, list_models, model_info

__all__ = ["create_model", "list_models", "model_info"]
