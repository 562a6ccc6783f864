"""Precision by measurement: bf16 counts as supported only where the CPU flags say it is native,
``precision="auto"`` picks fp32 without measuring elsewhere and by a cached measurement where it is
native, training resolves ``--precision auto`` once into config.json, and ``--precision bf16`` is refused
in one line where bf16 would be emulated.

The CPU flags are stubbed both ways (``gan.nets.cpu_info``), and the measured work is stubbed with
sleeps of known length, so every test gives the same answer on any machine.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch

from gan import generator as generator_mod
from gan import loop as loop_mod
from gan import nets, precision
from gan.precision import choose

XEON_NO_BF16 = ("Intel(R) Xeon(R) Platinum 8259CL", frozenset({"avx2", "avx512f", "avx512bw", "avx512_vnni"}))
ZEN4 = ("AMD EPYC 9R14", frozenset({"avx2", "avx512f", "avx512_bf16", "avx512_vnni"}))
SAPPHIRE_RAPIDS = ("Intel(R) Xeon(R) Platinum 8488C", frozenset({"avx512f", "amx_bf16", "amx_tile"}))


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    """Every test gets its own cache folder and forgets what earlier ones measured."""
    monkeypatch.setenv("LESIONGAN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(precision, "_measured", {})
    return tmp_path / "cache" / "precision.json"


def stub_cpu(monkeypatch, cpu) -> None:
    monkeypatch.setattr(nets, "cpu_info", lambda: cpu)


def sleeper(fp32_ms: float, bf16_ms: float, calls: list):
    """A ``make_run`` whose runs sleep: fp32 and bf16 take the times given; ``calls`` counts the makes."""
    def make_run(p):
        calls.append(p)
        return lambda: time.sleep((fp32_ms if p == "fp32" else bf16_ms) / 1000)
    return make_run


def no_measuring(p):
    raise AssertionError(f"measured {p} where bf16 is not native")


# --------------------------------------------------------------------------- which CPUs run bf16

def test_bf16_counts_as_supported_only_with_the_native_flags(monkeypatch):
    stub_cpu(monkeypatch, XEON_NO_BF16)  # oneDNN calls this CPU's bf16 "supported": it emulates it
    assert not nets.bf16_supported("cpu") and nets.native_bf16("cpu") is None
    stub_cpu(monkeypatch, ZEN4)
    assert nets.bf16_supported("cpu") and nets.native_bf16("cpu") == "AVX512-BF16"
    stub_cpu(monkeypatch, SAPPHIRE_RAPIDS)
    assert nets.native_bf16("cpu") == "AMX-BF16"
    assert nets.native_bf16("meta") is None


def test_the_flags_come_from_proc_cpuinfo():
    x86 = ["processor\t: 0", "model name\t: AMD EPYC", "flags\t\t: fpu avx512f avx512_bf16", "",
           "processor\t: 1", "model name\t: AMD EPYC", "flags\t\t: fpu avx512f avx512_bf16"]
    assert nets.parse_cpuinfo(x86) == ("AMD EPYC", frozenset({"fpu", "avx512f", "avx512_bf16"}))
    arm = ["processor\t: 0", "BogoMIPS\t: 2100.00", "Features\t: fp asimd sve bf16 i8mm", "CPU part\t: 0xd40"]
    assert nets.parse_cpuinfo(arm) == ("", frozenset({"fp", "asimd", "sve", "bf16", "i8mm"}))
    model, flags = nets.cpu_info()
    assert model and isinstance(flags, frozenset)


def test_training_bf16_is_refused_in_one_line_naming_the_flag(monkeypatch):
    stub_cpu(monkeypatch, XEON_NO_BF16)
    with pytest.raises(ValueError) as e:
        nets.check_bf16("cpu")
    msg = str(e.value)
    assert msg.startswith("--precision bf16: this CPU (Intel(R) Xeon(R) Platinum 8259CL) has no native bfloat16")
    assert "emulated and slower" in msg and "\n" not in msg and msg.endswith("use fp32 or auto")
    stub_cpu(monkeypatch, ZEN4)
    nets.check_bf16("cpu")


def test_the_encoder_trainer_refuses_bf16_through_the_same_check(monkeypatch):
    from eval.encoder_train import check_precision

    stub_cpu(monkeypatch, XEON_NO_BF16)
    with pytest.raises(ValueError, match=r"^--precision bf16: this CPU \(Intel\(R\) Xeon\(R\) Platinum 8259CL\) has "
                                         r"no native bfloat16 .*; use fp32$"):
        check_precision("bf16")
    check_precision("fp32")
    stub_cpu(monkeypatch, ZEN4)
    check_precision("bf16")


# --------------------------------------------------------------------------- auto, measured and cached

def test_auto_is_fp32_without_measuring_where_bf16_is_emulated(monkeypatch, own_cache):
    stub_cpu(monkeypatch, XEON_NO_BF16)
    c = choose("cpu", "sampling test", no_measuring)
    assert c.precision == "fp32" and c.speedup is None
    assert c.reason == "fp32: this CPU has no native bf16 (emulated bf16 is slower)"
    assert not own_cache.exists()


def test_auto_measures_where_bf16_is_native_and_takes_the_faster(monkeypatch):
    stub_cpu(monkeypatch, ZEN4)
    calls = []
    c = choose("cpu", "sampling fast-bf16", sleeper(40, 10, calls))
    assert sorted(calls) == ["bf16", "fp32"]
    assert c.precision == "bf16" and 2.5 < c.speedup < 5
    assert c.reason.startswith("bf16: native AVX512-BF16, ") and c.reason.endswith("x faster than fp32 on this "
                                                                                   "model (measured)")
    # Native but no faster on this model: fp32, which is exact, and the line says so.
    c = choose("cpu", "sampling even", sleeper(10, 10, []))
    assert c.precision == "fp32" and c.reason.startswith("fp32: native AVX512-BF16, but bf16 is only ")


def test_the_cache_round_trips_per_machine_and_torch_version(monkeypatch, own_cache):
    stub_cpu(monkeypatch, ZEN4)
    first = choose("cpu", "sampling m", sleeper(30, 10, []))
    entries = json.loads(own_cache.read_text())["entries"]
    (key,) = entries
    assert "AMD EPYC 9R14" in key and f"torch {torch.__version__}" in key and key.endswith("| sampling m")
    assert entries[key]["fp32_ms"] > entries[key]["bf16_ms"] > 0

    monkeypatch.setattr(precision, "_measured", {})  # a new process: only the file remembers
    again = choose("cpu", "sampling m", no_measuring)
    assert again.precision == first.precision == "bf16" and again.speedup == first.speedup
    assert again.reason.endswith("(measured earlier on this machine)")

    # Another torch version, or a CPU with other flags, is measured anew; the file keeps both.
    monkeypatch.setattr(torch, "__version__", "9.9.9")
    calls = []
    choose("cpu", "sampling m", sleeper(10, 10, calls))
    assert calls and len(json.loads(own_cache.read_text())["entries"]) == 2


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"format": 1, "entries": {"k": {"fp32_ms": "x"}}}',
                                     "\udcff"])
def test_a_corrupt_cache_is_ignored_and_rewritten(monkeypatch, own_cache, content):
    stub_cpu(monkeypatch, ZEN4)
    own_cache.parent.mkdir(parents=True)
    own_cache.write_bytes(content.encode("utf-8", "surrogateescape"))
    calls = []
    assert choose("cpu", "sampling c", sleeper(30, 10, calls)).precision == "bf16"
    assert calls
    data = json.loads(own_cache.read_text())
    assert data["format"] == 1 and list(data["entries"]) == [k for k in data["entries"] if k.endswith("sampling c")]


def test_the_cache_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("LESIONGAN_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert precision.cache_path() == tmp_path / "xdg" / "lesiongan" / "precision.json"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert precision.cache_path() == tmp_path / "home" / ".cache" / "lesiongan" / "precision.json"


def test_an_unwritable_cache_still_answers_the_same_within_the_process(monkeypatch, tmp_path):
    stub_cpu(monkeypatch, ZEN4)
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("LESIONGAN_CACHE", str(blocker / "below-a-file"))
    first = choose("cpu", "sampling u", sleeper(30, 10, []))
    assert choose("cpu", "sampling u", no_measuring).precision == first.precision


# --------------------------------------------------------------------------- where auto is used

@pytest.fixture
def gen_file(tmp_path):
    from dashboard.demo import export_dcgan

    return export_dcgan(tmp_path / "generator.pt")


def test_load_generator_auto_measures_the_models_own_sampling(monkeypatch, gen_file):
    from gan import load_generator

    stub_cpu(monkeypatch, XEON_NO_BF16)
    monkeypatch.setattr(generator_mod, "sampling_run", lambda *a: no_measuring("sampling"))
    G = load_generator(gen_file, precision="auto")
    assert G.precision == "fp32" and G.precision_reason == "fp32: this CPU has no native bf16 (emulated bf16 is slower)"

    stub_cpu(monkeypatch, ZEN4)
    calls = []
    monkeypatch.setattr(generator_mod, "sampling_run", lambda net, p, *a: sleeper(30, 10, calls)(p))
    G = load_generator(gen_file, precision="auto")
    assert G.precision == "bf16" and G.precision_reason.startswith("bf16: native AVX512-BF16")
    assert load_generator(gen_file, precision="auto").precision == "bf16" and len(calls) == 2  # cached
    assert load_generator(gen_file).precision_reason == "fp32: as asked"


def test_the_sampling_run_is_the_fast_path_in_each_precision(gen_file):
    from gan import load_generator

    G = load_generator(gen_file, fuse=False)
    for p, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        out = generator_mod.sampling_run(G.net, p, G.z_dim, G.resolution, G.alpha, torch.device("cpu"))()
        assert out.shape == (generator_mod.SAMPLING_BENCH_BATCH, 3, G.resolution, G.resolution) and out.dtype == dtype


TINY = ["--model", "dcgan", "--size", "32", "--batch", "16", "--set", "ngf=8", "--set", "ndf=8", "--device", "cpu",
        "--threads", "1", "--no-progress", "--log-kimg", "0.016", "--grid-kimg", "10", "--snapshot-kimg", "10"]


@pytest.fixture
def data(tmp_path, discs):
    from PIL import Image

    folder = tmp_path / "data"
    folder.mkdir()
    for i, img in enumerate(discs(16, 32)):
        Image.fromarray(img.permute(1, 2, 0).numpy()).save(folder / f"disc{i:02d}.png")
    return ["--data", str(folder), "--cache-dir", str(tmp_path / "decoded")]


def _config(out: Path) -> dict:
    (run,) = out.iterdir()
    return json.loads((run / "config.json").read_text())


@pytest.mark.parametrize("cpu, want", [(XEON_NO_BF16, "fp32"), (ZEN4, "bf16")])
def test_training_auto_is_resolved_once_into_config_json_and_resume_keeps_it(monkeypatch, tmp_path, data, capsys,
                                                                             cpu, want):
    from gan import checkpoint as ckpt_io
    from gan.train import main

    stub_cpu(monkeypatch, cpu)
    calls = []
    monkeypatch.setattr(loop_mod, "training_run", lambda cfg, p, device: sleeper(30, 10, calls)(p))
    out = tmp_path / "runs"
    assert main([*TINY, *data, "--kimg", "0.032", "--precision", "auto", "--out", str(out)]) == 0
    assert _config(out)["train"]["precision"] == want
    assert len(calls) == (2 if want == "bf16" else 0)  # measured only where bf16 is native
    err = capsys.readouterr().err
    assert f"--precision auto: {want}: " in err
    (run,) = out.iterdir()
    assert ckpt_io.load(run / "checkpoint.pt")["config"].train.precision == want

    calls.clear()
    assert main(["--resume", str(run), "--kimg", "0.048", *TINY[10:12], "--no-progress"]) == 0
    assert not calls and _config(out)["train"]["precision"] == want
    ckpt = ckpt_io.load(run / "checkpoint.pt")
    assert ckpt["nimg"] == 48 and ckpt["config"].train.precision == want


def test_training_bf16_is_refused_on_the_command_line_where_emulated(monkeypatch, tmp_path, data, capsys):
    from gan.train import main

    stub_cpu(monkeypatch, XEON_NO_BF16)
    out = tmp_path / "runs"
    assert main([*TINY, *data, "--kimg", "0.032", "--precision", "bf16", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --precision bf16: this CPU (Intel(R) Xeon(R)")
    assert not out.exists()


def tiny_config(**train):
    from gan.config import RunConfig, TrainConfig
    from gan.data import DataConfig
    from gan.models.dcgan import DCGANConfig

    return RunConfig(model="dcgan", model_cfg=DCGANConfig(resolution=32, batch=16, ngf=8, ndf=8),
                     train=TrainConfig(**train), data=DataConfig(size=32))


def test_the_loop_refuses_an_unresolved_auto(tmp_path, discs):
    cfg = tiny_config(kimg=0.016, precision="auto")
    with pytest.raises(ValueError, match="--precision auto is resolved before training starts"):
        loop_mod.training_loop(tmp_path, cfg, discs(16, 32), progress=False)


def test_the_training_run_is_one_step_of_the_model():
    cfg = tiny_config(kimg=1, channels_last=True)
    state = torch.get_rng_state()
    stats = loop_mod.training_run(cfg, "bf16", torch.device("cpu"))()
    assert {"loss_D", "loss_G"} <= set(stats) and all(torch.isfinite(v).all() for v in stats.values())
    assert torch.equal(torch.get_rng_state(), state)  # the run's own draws leave the caller's alone


@pytest.mark.slow  # the whole app on the demo folder: about 25 s on 2 busy cores
def test_the_dashboard_preview_says_what_it_chose_and_why(monkeypatch, tmp_path):
    from dashboard.demo import make_demo_folder
    from dashboard.testing import assert_ok, run_app

    stub_cpu(monkeypatch, XEON_NO_BF16)
    at = run_app(monkeypatch, make_demo_folder(tmp_path / "demo"), "generate")
    at.toggle(key="gen_bf16").set_value(True).run()
    assert_ok(at)
    assert any("fp32 sampling (as eval.run scores) · preview chose fp32: this CPU has no native bf16 (emulated bf16 "
               "is slower)" in m.value for m in at.markdown)
    assert "twice as fast" not in at.toggle(key="gen_bf16").help
