"""An ONNX model of a bank, run with onnxruntime on CUDA when present, else on the CPU.

The model's own input list is the contract: the feeds are checked against it both ways
(a missing or an extra name is an error naming the file) and each scalar takes the rank the
model reports (rank 0, or ``[1]``).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from singer.backends.diffsinger.errors import BankError

_ORT_TYPES = {"tensor(float)": np.float32, "tensor(int64)": np.int64, "tensor(bool)": np.bool_,
              "tensor(int32)": np.int32, "tensor(float16)": np.float16}


def providers(device: str = "auto") -> list[str]:
    """onnxruntime execution providers: CUDA first when available (``device`` auto/cuda)."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    if device == "cpu":
        return ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if device == "cuda":
        raise RuntimeError("device cuda asked for but onnxruntime has no CUDAExecutionProvider "
                           f"(available: {', '.join(available)})")
    return ["CPUExecutionProvider"]


@dataclass(frozen=True, slots=True)
class InputSpec:
    """One model input: name, numpy dtype and rank as the model reports them."""

    name: str
    dtype: type
    rank: int


class OnnxModel:
    """A loaded ONNX session with its input/output contract; ``run`` is thread-safe."""

    def __init__(self, path: Path, *, device: str = "auto", threads: int = 0) -> None:
        import onnxruntime as ort

        if not path.is_file():
            raise BankError(path, "model file is missing")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        # no busy-waiting between ops: the pool's threads would spin on the cores the show's
        # render loop needs (measured as xruns while a held note's segments rendered)
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        options.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(str(path), sess_options=options,
                                                 providers=providers(device))
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise BankError(path, f"not a loadable ONNX model: {exc}") from None
        self.path = path
        self.inputs: dict[str, InputSpec] = {}
        for item in self._session.get_inputs():
            dtype = _ORT_TYPES.get(item.type)
            if dtype is None:
                raise BankError(path, f"input {item.name!r} has unsupported type {item.type}")
            self.inputs[item.name] = InputSpec(item.name, dtype, len(item.shape or []))
        self.outputs = [o.name for o in self._session.get_outputs()]
        self.device = self._session.get_providers()[0]
        self._lock = threading.Lock()

    def verify_inputs(self, expected: set[str] | frozenset[str], role: str) -> None:
        """Raise naming the file when the model's inputs are not exactly ``expected``."""
        have = set(self.inputs)
        missing, extra = sorted(expected - have), sorted(have - expected)
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"lacks input(s) {', '.join(missing)}")
            if extra:
                parts.append(f"has unexpected input(s) {', '.join(extra)}")
            raise BankError(self.path, f"{role} model {' and '.join(parts)} "
                            f"(expected exactly: {', '.join(sorted(expected))})", "inputs")

    def verify_outputs(self, needed: tuple[str, ...], role: str) -> None:
        """Raise naming the file when an output the engine reads is absent."""
        for name in needed:
            if name not in self.outputs:
                raise BankError(self.path, f"{role} model has no output {name!r} "
                                f"(outputs: {', '.join(self.outputs)})", "outputs")

    def run(self, feeds: Mapping[str, np.ndarray | float | int | bool],
            outputs: tuple[str, ...]) -> list[np.ndarray]:
        """Run with ``feeds`` cast to each input's dtype and rank; returns ``outputs``."""
        self.verify_inputs(set(feeds), "this")
        prepared = {}
        for name, value in feeds.items():
            spec = self.inputs[name]
            arr: np.ndarray = np.asarray(value, dtype=spec.dtype)
            if arr.ndim != spec.rank:
                if arr.size == 1 and spec.rank <= 1:
                    arr = arr.reshape((1,) * spec.rank)
                else:
                    raise BankError(self.path, f"input {name!r} has rank {spec.rank} in the "
                                    f"model but the engine built shape {arr.shape}", name)
            prepared[name] = np.ascontiguousarray(arr)
        with self._lock:
            result = self._session.run(list(outputs), prepared)
        return [np.asarray(r) for r in result]
