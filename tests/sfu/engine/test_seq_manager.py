"""SeqManager: gap-free output numbering over drops, wrap-around and stream switches."""

from __future__ import annotations

import random

import pytest

from roomler.sfu.engine.seq_manager import SeqManager


def test_inputs_map_from_the_initial_output_and_wrap() -> None:
    seq = SeqManager(16, initial_output=65534)
    assert [seq.input(n) for n in (1000, 1001, 1002, 1003)] == [65534, 65535, 0, 1]
    assert seq.max_output == 1


def test_dropped_inputs_leave_no_gap() -> None:
    seq = SeqManager(16)
    assert seq.input(10) == 0
    seq.drop(11)
    seq.drop(12)
    assert seq.input(13) == 1
    seq.drop(14)
    seq.drop(14)  # a dropped picture's packets all drop the same number
    assert seq.input(15) == 2
    assert seq.input(14) is None  # its packets never go out


def test_reordered_input_gets_the_number_it_would_have_had() -> None:
    seq = SeqManager(16)
    assert seq.input(100) == 0
    assert seq.input(103) == 3
    seq.drop(104)
    assert seq.input(105) == 4
    assert seq.input(101) == 1  # late, before the drop: unaffected by it
    assert seq.input(102) == 2


def test_only_inputs_newer_than_all_can_be_dropped() -> None:
    seq = SeqManager(16)
    seq.input(5)
    seq.input(6)
    seq.drop(5)  # already sent: dropping it now would renumber what followed
    assert seq.input(7) == 2


def test_sync_continues_a_new_input_space_after_the_last_output() -> None:
    seq = SeqManager(16)
    for n in range(500, 510):
        seq.input(n)
    seq.sync()
    assert seq.input(40000) == 10
    assert seq.input(40001) == 11
    assert seq.input(39999) is None  # from before the switch
    seq.sync(gap=1)
    assert seq.input(7) == 13


def test_a_dropped_first_input_after_sync() -> None:
    seq = SeqManager(16)
    seq.input(1)
    seq.sync()
    seq.drop(900)
    assert seq.input(901) == 1


def test_seven_and_eight_bit_spaces_wrap() -> None:
    tl0 = SeqManager(8, initial_output=250)
    assert [tl0.input(n & 0xFF) for n in range(200, 210)] == [(250 + i) & 0xFF for i in range(10)]
    with pytest.raises(ValueError, match="bits"):
        SeqManager(1)


def test_long_random_run_with_drops_stays_gap_free() -> None:
    rng = random.Random(3)
    seq = SeqManager(16, initial_output=rng.randrange(65536))
    start = rng.randrange(65536)
    outputs = []
    for i in range(200_000):
        number = (start + i) & 0xFFFF
        if rng.random() < 0.3:
            seq.drop(number)
        else:
            out = seq.input(number)
            assert out is not None
            outputs.append(out)
    assert all((b - a) & 0xFFFF == 1 for a, b in zip(outputs, outputs[1:], strict=False))


def test_reordered_inputs_without_drops_and_across_a_sync() -> None:
    seq = SeqManager(16, initial_output=65535)
    # 9 is older than where the numbering began: never sent.
    assert [seq.input(n) for n in (10, 12, 11, 9)] == [65535, 1, 0, None]
    seq.sync()
    assert seq.input(500) == 2
    assert seq.input(499) is None  # before the new space began
    assert seq.input(65535 + 500 - 65535) == 2  # the same input again, same output
