"""The example.com/checkdigit scheme: the vault conformance kit, plus its own check-digit behaviour."""

import pytest

import vault_checkdigit
from vault.testing import NumberingSchemeConformance


class TestConformance(NumberingSchemeConformance):
    """The vault's kit, run against the installed entry point with two option sets."""

    plugin = "checkdigit"
    options = [{}, {"prefix": "CUST", "width": 12}]


def test_numbers_carry_a_valid_check():
    scheme = vault_checkdigit.factory({})
    number = scheme.number(sequence=42, facts={})
    assert number == "A-0000004269"
    assert vault_checkdigit.is_valid(number)


def test_a_mistyped_digit_is_caught():
    number = vault_checkdigit.factory({}).number(sequence=1234, facts={})
    typo = number[:-4] + str((int(number[-4]) + 1) % 10) + number[-3:]
    assert not vault_checkdigit.is_valid(typo)


@pytest.mark.parametrize("options", [{"prefix": "a"}, {"width": 2}, {"colour": "red"}])
def test_bad_options_are_refused(options):
    with pytest.raises(ValueError):
        vault_checkdigit.factory(options)
