"""The order-intake package: pricing, storage and receipts."""

import logging.config

logging.config.dictConfig({"version": 1, "disable_existing_loggers": False})
