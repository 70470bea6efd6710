"""``serve --realtime`` raises the engine's threads: measured with the OS's own figure."""

from __future__ import annotations

import os
import threading

import pytest

from stage.realtime.priority import LOOP_NICE, raise_loop_priority


def nice_of(thread: threading.Thread) -> int:
    assert thread.native_id is not None
    return os.getpriority(os.PRIO_PROCESS, thread.native_id)


def test_every_thread_of_the_engine_is_raised_and_put_back() -> None:
    """The loop's thread and a helper already running (which could hold the GIL while
    descheduled) are both raised; a thread started afterwards inherits it; restore() puts
    everything back, the later thread too (a ``to_thread`` worker outlives the show), but
    leaves a later thread that chose its own value."""
    stop = threading.Event()
    helper = threading.Thread(target=stop.wait)
    helper.start()
    main = threading.current_thread()
    before = nice_of(main)
    later: list[threading.Thread] = []
    try:
        priority = raise_loop_priority()
        if not priority.raised:  # no CAP_SYS_NICE here: the show runs as it was
            assert nice_of(main) == before and nice_of(helper) == before
            pytest.skip("the OS does not let this user raise a thread")
        later = [threading.Thread(target=stop.wait) for _ in range(2)]
        for thread in later:
            thread.start()
        inherited, own = later
        assert (nice_of(main), nice_of(helper), nice_of(inherited)) == (LOOP_NICE,) * 3
        assert own.native_id is not None
        os.setpriority(os.PRIO_PROCESS, own.native_id, 5)  # lowering is always allowed
        priority.restore()
        assert (nice_of(main), nice_of(helper), nice_of(inherited)) == (before,) * 3
        assert nice_of(own) == 5
    finally:
        stop.set()
        helper.join()
        for thread in later:
            thread.join()


def test_a_nice_value_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="a nice value is -20..19, not -30"):
        raise_loop_priority(-30)
