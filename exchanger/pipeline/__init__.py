"""The pipeline: a chain of small stages that turns one inbound message into a disposition."""

from exchanger.pipeline.disposition import Disposition, Publication
from exchanger.pipeline.runner import Pipeline, build_pipeline

__all__ = ["Disposition", "Pipeline", "Publication", "build_pipeline"]
