"""The chart style both sides draw with: 1-2-5 ticks in plain numbers, labels moved apart,
at most 8 series picked as best, worst and chosen."""

from __future__ import annotations

import math

import pytest

from edgebench.agent.wire import chartstyle as cs


def _mantissa(v: float) -> int:
    return round(v / 10 ** math.floor(math.log10(v) + 1e-9))


@pytest.mark.parametrize(
    "lo,hi,want",
    [
        (0.05, 2.2, [0.05, 0.1, 0.2, 0.5, 1, 2]),
        (1, 256, [1, 2, 5, 10, 20, 50, 100, 200]),
        (0.0004, 0.007, [0.0005, 0.001, 0.002, 0.005]),
        (3, 9000, [10, 100, 1000]),  # 1-2-5 would give 10 ticks: decades
        (0.001, 100000, [0.001, 0.1, 10, 1000, 100000]),  # 9 decades: every other one
    ],
)
def test_log_ticks_are_1_2_5_and_thinned(lo, hi, want):
    assert cs.log_ticks(lo, hi) == want
    assert all(_mantissa(t) in (1, 2, 5) for t in cs.log_ticks(lo, hi))


def test_a_narrow_log_range_gets_linear_steps_and_too_many_ticks_never_come():
    assert cs.log_ticks(0.05, 0.07) == [0.05, 0.055, 0.06, 0.065, 0.07]
    for lo, hi in ((1e-6, 1e9), (0.3, 0.31), (7, 7000)):
        assert 2 <= len(cs.log_ticks(lo, hi)) <= cs.MAX_TICKS
    with pytest.raises(ValueError):
        cs.log_ticks(0, 10)


@pytest.mark.parametrize(
    "v,text",
    [
        (0.0001, "0.0001"),
        (0.3, "0.3"),
        (0.1 + 0.2, "0.3"),
        (2000.0, "2000"),
        (1e7, "10000000"),
        (12.5, "12.5"),
        (0, "0"),
    ],
)
def test_tick_labels_are_plain_numbers(v, text):
    assert cs.tick_label(v) == text


def test_linear_ticks_step_by_1_2_5():
    assert cs.linear_ticks(0, 13) == [0, 5, 10]
    assert cs.linear_ticks(0.2, 0.9) == [0.2, 0.4, 0.6, 0.8]
    assert cs.linear_ticks(40, 55) == [40, 45, 50, 55]
    assert cs.nice_max(50.6) == 60 and cs.nice_max(18) == 20 and cs.nice_max(1000) == 1000 and cs.nice_max(0) == 1


def test_spread_keeps_order_and_gaps_within_bounds():
    assert cs.spread([10, 11, 12, 50], 5, 0, 100) == [10, 15, 20, 50]
    assert cs.spread([90, 95, 98], 5, 0, 100) == [90, 95, 100]
    out = cs.spread([99, 98, 97, 96], 5, 0, 100)
    assert out == [100, 95, 90, 85]  # pushed back from the far edge, order kept
    ys = cs.spread([5.0] * 6, 4.0, 0, 100)
    assert sorted(b - a for a, b in zip(sorted(ys), sorted(ys)[1:])) == [4.0] * 5


def test_pick_keeps_best_worst_and_chosen():
    items = list(range(20))
    kept, why = cs.pick(items, lambda x: (x - 7) ** 2, chosen=15)
    assert len(kept) == cs.MAX_SERIES and {7, 19, 15} <= set(kept)  # best 7, worst 19 ((19-7)^2), chosen 15
    assert kept == sorted(kept)
    assert why == "8 of 20 shown: the best, the worst, the chosen one and some between"
    assert cs.pick([1, 2, 3], lambda x: x) == ([1, 2, 3], None)
    # the chosen one among the evenly spread ranks: the chart is still filled to the limit
    for chosen in range(24):
        kept, _ = cs.pick(list(range(24)), lambda x: x, chosen=chosen)
        assert len(kept) == cs.MAX_SERIES and {0, 23, chosen} <= set(kept)


def test_the_palette_leaves_green_and_red_to_better_and_worse():
    def hue(c: str) -> float:
        r, g, b = (int(c[i : i + 2], 16) / 255 for i in (1, 3, 5))
        import colorsys

        h, s, v = colorsys.rgb_to_hsv(r, g, b)
        return h * 360 if s > 0.25 else -1

    assert len(cs.PALETTE) == cs.MAX_SERIES == len(set(cs.PALETTE))
    for c in cs.PALETTE:
        h = hue(c)
        assert not (100 <= h <= 150), f"{c} reads as green"
        assert not (h >= 0 and (h <= 12 or h >= 350)), f"{c} reads as red"
    assert 100 <= hue(cs.BETTER) <= 150 and (hue(cs.WORSE) <= 12 or hue(cs.WORSE) >= 350)
