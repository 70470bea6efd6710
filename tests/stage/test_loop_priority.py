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
    everything back."""
    stop = threading.Event()
    helper = threading.Thread(target=stop.wait)
    helper.start()
    main = threading.current_thread()
    before = nice_of(main)
    try:
        priority = raise_loop_priority()
        if not priority.raised:  # no CAP_SYS_NICE here: the show runs as it was
            assert nice_of(main) == before and nice_of(helper) == before
            pytest.skip("the OS does not let this user raise a thread")
        later = threading.Thread(target=stop.wait)
        later.start()
        assert (nice_of(main), nice_of(helper), nice_of(later)) == (LOOP_NICE,) * 3
        priority.restore()
        assert (nice_of(main), nice_of(helper)) == (before, before)
    finally:
        stop.set()
        helper.join()
    later.join()


def test_a_nice_value_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="a nice value is -20..19, not -30"):
        raise_loop_priority(-30)
