"""Configuration: one loader for the daemon, ``routes check`` and reload."""

from exchanger.config.loader import ConfigError, load_catalogue, load_config
from exchanger.config.model import BrokerSettings, Config, Limits, Platform

__all__ = ["BrokerSettings", "Config", "ConfigError", "Limits", "Platform", "load_catalogue", "load_config"]
