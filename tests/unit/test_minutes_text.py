"""`events.ids.minutes_text` on Fractions (integer arithmetic) against the Decimal rounding it replaces."""
from decimal import ROUND_HALF_UP, Decimal, localcontext
from fractions import Fraction

from hypothesis import given, strategies as st

from events import ids
from streams import wire


def decimal_minutes_text(value: Fraction) -> str:
    """The wire's rule spelled with Decimal: the exact value half-up to 4 places, then `number_text`."""
    with localcontext() as ctx:
        ctx.prec = 34
        exact = Decimal(value.numerator) / Decimal(value.denominator)
        return ids.number_text(exact.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP))


@given(st.integers(min_value=-10**12, max_value=10**12), st.integers(min_value=1, max_value=6 * 10**7))
def test_fraction_minutes_text_equals_the_decimal_rounding(numerator, denominator):
    value = Fraction(numerator, denominator)
    assert ids.minutes_text(value) == decimal_minutes_text(value)
    assert wire._minutes(value) == decimal_minutes_text(value)


def test_ties_round_half_up_away_from_zero():
    assert ids.minutes_text(Fraction(1, 20000)) == "0.0001"      # 0.00005
    assert ids.minutes_text(Fraction(-1, 20000)) == "-0.0001"
    assert ids.minutes_text(Fraction(1, 60)) == "0.0167"
    assert ids.minutes_text(Fraction(301, 2)) == "150.5"
    assert ids.minutes_text(Fraction(-1, 30000)) == "0"          # -0.0000 is written 0
    assert ids.minutes_text(Fraction(150)) == "150"
