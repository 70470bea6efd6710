"""The watermark's channel code: CRC-8 over the payload, then a rate-1/3 convolutional code.

The code is the one of 3GPP/DAB (constraint length 7, generators 133, 171, 165 octal),
decoded with soft-decision Viterbi: about 5 dB better than repeating each bit three times.
"""

from __future__ import annotations

import numpy as np

CONSTRAINT = 7
GENERATORS = (0o133, 0o171, 0o165)
TAIL_BITS = CONSTRAINT - 1
_STATES = 1 << TAIL_BITS
_CRC_POLY = 0x07


def crc8(bits: np.ndarray) -> np.ndarray:
    """CRC-8 (polynomial x^8 + x^2 + x + 1) of a 0/1 bit array, as 8 bits (MSB first)."""
    reg = 0
    for b in bits.astype(np.int64).tolist():
        top = ((reg >> 7) & 1) ^ b
        reg = (reg << 1) & 0xFF
        if top:
            reg ^= _CRC_POLY
    return np.array([(reg >> (7 - i)) & 1 for i in range(8)], dtype=np.int8)


def _parity(v: int) -> int:
    return bin(v).count("1") & 1


# Output bits of every 7-bit register value (newest bit in the LSB): shape (128, 3).
_OUT = np.array([[_parity(reg & g) for g in GENERATORS] for reg in range(1 << CONSTRAINT)],
                dtype=np.int8)
_SIGN = (1 - 2 * _OUT).astype(np.float64)   # bit 0 -> +1, bit 1 -> -1
# The two registers that end in each state: reg = h << 6 | state, h in (0, 1).
_REGS = np.array([[h << TAIL_BITS | s for h in (0, 1)] for s in range(_STATES)])
_PREV = _REGS >> 1  # previous state of each register


def encode(bits: np.ndarray) -> np.ndarray:
    """Convolutional code of ``bits`` plus a zero tail: 3 * (len + 6) coded bits (0/1)."""
    reg = 0
    out = []
    for b in np.concatenate([bits.astype(np.int64), np.zeros(TAIL_BITS, np.int64)]).tolist():
        reg = ((reg << 1) | int(b)) & ((1 << CONSTRAINT) - 1)
        out.extend(_OUT[reg].tolist())
    return np.array(out, dtype=np.int8)


def decode(soft: np.ndarray) -> np.ndarray:
    """Soft-decision Viterbi: ``soft`` holds one value per coded bit (positive: bit 0).

    Returns the message bits (without the tail) that maximise the correlation."""
    steps = len(soft) // len(GENERATORS)
    llr = soft[:steps * len(GENERATORS)].reshape(steps, len(GENERATORS))
    metric = np.full(_STATES, -np.inf)
    metric[0] = 0.0
    choice = np.zeros((steps, _STATES), dtype=np.int8)
    for t in range(steps):
        branch = _SIGN @ llr[t]                     # (128,) metric of every register value
        cand = metric[_PREV] + branch[_REGS]         # (64, 2)
        choice[t] = np.argmax(cand, axis=1)
        metric = cand[np.arange(_STATES), choice[t]]
    state = 0  # the tail drives the encoder back to state 0
    bits = np.zeros(steps, dtype=np.int8)
    for t in range(steps - 1, -1, -1):
        bits[t] = state & 1
        state = int(_PREV[state, choice[t, state]])
    return bits[:steps - TAIL_BITS]
