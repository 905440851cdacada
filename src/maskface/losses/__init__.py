"""Loss classes by name: ``create_loss("hinge_generator")``; each has one ``forward``."""

from maskface.losses.registry import create_loss, list_losses

__all__ = ["create_loss", "list_losses"]
