"""Machine translation stage: backends, and a route planner over them."""

from pipeline.mt.base import Translator

__all__ = ["Translator"]
