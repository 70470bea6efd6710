"""The show's scheduled full collections: an ended WebRTC peer (a reference cycle holding
native SRTP/DTLS/Opus state) is freed during the show, not kept until it ends."""

from __future__ import annotations

import asyncio
import gc
import weakref

import pytest
from aiortc import RTCPeerConnection

from stage.realtime.collector import Collector
from stage.serve import GC_THRESHOLDS


async def _ended_peer() -> weakref.ref[RTCPeerConnection]:
    """A peer that gathered, negotiated an offer and closed: gone as far as the show knows."""
    pc = RTCPeerConnection()
    pc.addTransceiver("audio", direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    gc.collect(1)  # it lived through young collections (a viewer stays seconds): now old
    await pc.close()
    return weakref.ref(pc)


def test_an_ended_peer_outlives_young_collections_and_the_collector_frees_it() -> None:
    thresholds = gc.get_threshold()
    gc.collect()
    gc.freeze()  # as serve.realtime_gc: the start-up heap frozen, full passes made rare
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        async def run() -> tuple[bool, bool, dict[str, object]]:
            peers = [await _ended_peer() for _ in range(3)]
            gc.collect(1)  # the young generations: what realtime_gc leaves running
            kept = all(ref() is not None for ref in peers)
            collector = Collector(period_s=0.05)
            task = asyncio.ensure_future(collector.run())
            await asyncio.sleep(0.3)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            return kept, all(ref() is None for ref in peers), collector.stats()

        kept, freed, stats = asyncio.run(run())
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
    assert kept  # reference cycles: without a full pass they stay for the whole show
    assert freed
    assert int(str(stats["passes"])) >= 2 and int(str(stats["freed"])) > 0


def test_a_collector_refuses_a_period_that_is_not_positive() -> None:
    with pytest.raises(ValueError, match="collection period 0: want seconds > 0"):
        Collector(period_s=0)


def _rss_kb() -> int:
    for line in open("/proc/self/status").read().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_a_trim_gives_the_memory_freed_between_kept_blocks_back_to_the_system() -> None:
    collector = Collector()
    if collector._trim is None:
        pytest.skip("the C library has no malloc_trim (not glibc)")
    collector.trim()
    blocks = [bytearray(4000) for _ in range(12_000)]  # ~46 MiB from the C heap
    kept = blocks[::40]  # one block in 40 stays: the heap cannot shrink from its top
    del blocks
    before = _rss_kb()
    took_ms = collector.trim()
    after = _rss_kb()
    assert len(kept) == 300 and took_ms is not None
    assert before - after > 20 * 1024, (before, after)  # most of the freed 45 MiB went back
    assert collector.stats()["trims"] == 2
