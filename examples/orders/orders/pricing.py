"""Money maths with Decimal, and a currency table parsed from XML."""

import decimal
import fractions
import statistics
import xml.etree.ElementTree as ET

RATES = ET.fromstring("<rates><rate ccy='EUR'>1</rate><rate ccy='USD'>1.08</rate></rates>")


def total(items):
    """The order total, rounded to cents."""
    amount = sum(decimal.Decimal(i["price"]) * i["qty"] for i in items)
    return amount.quantize(decimal.Decimal("0.01"))


__all__ = ["total", "fractions", "statistics"]
