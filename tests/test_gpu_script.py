"""bench/gpu.sh, the one script a GPU machine runs, shrunk to the CPU (``--cpu-smoke``): every part
(environment, training step against the PyTorch DCGAN example, the training loop, sampling, a
2-process DDP run over gloo) reports and passes."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow  # about 45 s on 2 busy cores: five Python start-ups and a torchrun launch
def test_gpu_script_cpu_smoke_runs_every_part():
    env = {**os.environ, "PYTHON": sys.executable}
    proc = subprocess.run(["bash", str(REPO / "bench" / "gpu.sh"), "--cpu-smoke"], capture_output=True, text=True,
                          env=env, timeout=300, check=False)
    out = proc.stdout
    assert proc.returncode == 0, out[-3000:] + proc.stderr[-3000:]
    lines = out.splitlines()
    assert lines[0].startswith("# bench/gpu.sh cpu-smoke, ")
    for header in ("== nvidia-smi", "== environment"):
        assert header in lines
    assert any(line.startswith("| PyTorch DCGAN example (fp32) | ") for line in lines)
    assert any(line.startswith("| ours (fp32, fused Adam, channels-last) | ") for line in lines)
    assert "project imports: all ok" in lines
    for part in ("train", "loop", "sample", "ddp"):
        assert f"ok: {part}" in lines
    assert any("replicas equal: yes" in line for line in lines)
    assert lines[-1] == "gpu.sh: all 5 parts passed (cpu-smoke)"


def test_gpu_script_refuses_an_unknown_flag():
    proc = subprocess.run(["bash", str(REPO / "bench" / "gpu.sh"), "--fast"], capture_output=True, text=True,
                          timeout=30, check=False)
    assert proc.returncode == 2 and proc.stderr.strip() == "usage: bash bench/gpu.sh [--cpu-smoke]"


def test_gpu_script_fails_when_a_part_fails():
    env = {**os.environ, "PYTHON": "false"}  # every Python part exits 1 at once
    proc = subprocess.run(["bash", str(REPO / "bench" / "gpu.sh"), "--cpu-smoke"], capture_output=True, text=True,
                          env=env, timeout=60, check=False)
    assert proc.returncode == 1
    assert proc.stdout.splitlines()[-1] == ("gpu.sh: 0 of 5 parts passed (cpu-smoke); failed: env train loop sample "
                                           "ddp")
