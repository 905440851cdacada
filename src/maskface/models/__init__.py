"""Networks by name: ``create_model("dlib_resnet_v1", pretrained=True)``."""

from maskface.models.registry import create_model, list_models, model_info

__all__ = ["create_model", "list_models", "model_info"]
