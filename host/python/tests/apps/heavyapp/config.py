"""Configuration: argparse, configparser, logging, dataclasses, enum, typing."""

import argparse
import configparser
import dataclasses
import enum
import logging
import logging.config
import logging.handlers
import os
import typing


class Stage(enum.Enum):
    DEV = "dev"
    PROD = "prod"


@dataclasses.dataclass(frozen=True)
class Settings:
    stage: Stage = Stage.DEV
    table: str = "items"
    retries: int = 3
    tags: typing.Tuple[str, ...] = ()


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="heavyapp")
    p.add_argument("--stage", choices=[s.value for s in Stage], default="dev")
    p.add_argument("--retries", type=int, default=3)
    return p


SETTINGS = Settings(stage=Stage(os.environ.get("HEAVYAPP_STAGE", "dev")))
LOG = logging.getLogger("heavyapp")
_CONFIG = configparser.ConfigParser()
_CONFIG.read_string("[heavyapp]\ntable = items\nretries = 3\n")
