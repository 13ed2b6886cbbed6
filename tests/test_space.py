import pytest

from metaforge.errors import ConfigError
from metaforge.space import ArchConfig, make_space


def test_config_round_trips_through_its_text():
    c = ArchConfig((8, 16, 32), (1, 2, 3))
    assert str(c) == "w=8,16,32 d=1,2,3"
    assert ArchConfig.parse(str(c)) == c
    assert ArchConfig.parse(" w = 8, 16,32  d=1,2,3 ") == c
    assert ArchConfig.parse("resnet20") == ArchConfig((16, 32, 64), (3, 3, 3))


@pytest.mark.parametrize("text", ["w=8,16 d=1", "w=a,b d=1,2", "8,16,32", "w=0,16 d=1,1", ""])
def test_bad_config_text_is_a_config_error(text):
    with pytest.raises(ConfigError):
        ArchConfig.parse(text)


def test_space_checks_and_lists_valid_ranges():
    space = make_space("resnet20", 1, 10, 28)
    assert space.min_widths == (4, 8, 16) and space.min_depths == (1, 1, 1)
    assert space.check(ArchConfig((4, 32, 64), (1, 3, 2)))
    with pytest.raises(ConfigError, match=r"valid ranges: w=4..16,8..32,16..64 d=1..3,1..3,1..3"):
        space.check(ArchConfig((16, 32, 128), (3, 3, 3)))
    with pytest.raises(ConfigError, match="outside"):
        space.check(ArchConfig((16, 32), (3, 3)))
    assert space.scaled(0.5) == ArchConfig((8, 16, 32), (3, 3, 3))


def test_unknown_preset_lists_choices():
    with pytest.raises(ConfigError, match="resnet56"):
        make_space("resnet99", 1, 10, 28)
