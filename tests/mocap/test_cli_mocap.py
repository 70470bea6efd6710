"""``livesinger mocap`` on a folder of real photographs, and its errors."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest

from stage.bench.mocap import bench_frames
from stage.cli import main


def test_mocap_folder_to_vmc(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for i, rgb in enumerate(bench_frames(4)):
        cv2.imwrite(str(tmp_path / f"{i:03d}.jpg"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    preview = tmp_path / "seen.mp4"
    rc = main(["mocap", "--source", str(tmp_path), "--no-pace", "--vmc-out", "127.0.0.1:9",
               "--preview", str(preview)])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rc == 0 and summary["tracked"] == 4 and summary["lost"] == 0
    assert summary["vmc_sent"] == 4 and preview.stat().st_size > 1000


def test_mocap_bad_sources(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "clip.mp4").write_bytes(b"no video")
    assert main(["mocap", "--source", str(tmp_path / "clip.mp4")]) == 2
    assert "cannot open as a video" in capsys.readouterr().err
    assert main(["mocap", "--source", "camera:9"]) == 2
    assert "camera:9" in capsys.readouterr().err
