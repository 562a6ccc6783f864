"""bench/bench_eval_stages.py: the timer books each second to one stage, the hooks find every stage of the
tools and leave the code as it was, the stages and the remainder add up to the wall time, the JSON reads
back, bad input is one line and exit code 2."""
from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "bench_eval_stages.py"
_spec = importlib.util.spec_from_file_location("bench_eval_stages", SCRIPT)
B = importlib.util.module_from_spec(_spec)
sys.modules["bench_eval_stages"] = B  # dataclasses look their module up there
_spec.loader.exec_module(B)


class Clock:
    """A clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_stage_is_booked_its_own_time_less_the_stages_inside_it():
    clock = Clock()
    t = B.StageTimer(clock)
    with t.stage("outer"):
        clock.now += 1.0
        with t.stage("inner"):
            clock.now += 2.0
            with t.stage(None):  # no stage: its time stays with "inner"
                clock.now += 0.5
        clock.now += 0.25
        with t.stage("inner"):
            assert t.inside("outer") and t.inside("inner") and not t.inside("other")
            clock.now += 4.0
    with t.stage("outer"):  # the same stage again, not nested
        clock.now += 8.0
    assert t.seconds == {"inner": 6.5, "outer": 9.25}
    assert t.calls == {"inner": 2, "outer": 2}
    assert sum(t.seconds.values()) == clock.now  # nothing counted twice, nothing lost


def test_timed_names_a_call_by_its_arguments_and_other_threads_run_untimed():
    clock = Clock()
    t = B.StageTimer(clock)

    def work(seconds, label="a"):
        clock.now += seconds
        return label

    timed = t.timed(work, lambda args, kwargs: f"work {kwargs.get('label', 'a')}")
    assert timed(1.0) == "a" and timed(2.0, label="b") == "b"
    assert timed.__name__ == "work"
    other = threading.Thread(target=timed, args=(16.0,))
    other.start()
    other.join()
    assert t.seconds == {"work a": 1.0, "work b": 2.0}


def test_hooks_are_removed_afterwards_even_when_the_tool_fails():
    import eval.evalset
    import eval.utility
    import gan.data
    import gan.generator

    before = (gan.data.load_dataset, gan.generator.load_generator, eval.utility.train_classifier,
              vars(gan.generator.LoadedGenerator)["generate"], vars(eval.evalset.FeatureCache)["get"])
    assert "load_generator" not in vars(__import__("gan"))
    with pytest.raises(RuntimeError):
        with B.instrumented(B.StageTimer(), {}):
            assert gan.data.load_dataset is not before[0]
            assert eval.utility.train_classifier is not before[2]
            raise RuntimeError("the tool failed")
    after = (gan.data.load_dataset, gan.generator.load_generator, eval.utility.train_classifier,
             vars(gan.generator.LoadedGenerator)["generate"], vars(eval.evalset.FeatureCache)["get"])
    assert after == before
    assert "load_generator" not in vars(__import__("gan"))


def test_feature_and_nearest_stage_names():
    import numpy as np

    assert B.feature_stage("derm_features:derm1:abc") == "features: derm encoder"
    assert B.feature_stage("hist_rgb256") == "features: colour histograms"
    assert B.feature_stage("inception_pool3:123") == "features: Inception-v3"
    assert B.feature_stage("new_kind:x") == "features: new_kind"
    assert B._nearest_stage((np.zeros((2, 3 * 16 * 16)), None), {}) == "distance attack: nearest samples (pixels)"
    assert B._nearest_stage((np.zeros((2, 128)), None), {}) == "distance attack: nearest samples (derm features)"


def _run(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = B.main(argv)
    return rc, out.getvalue()


def _check_adds_up(t: "B.ToolTiming") -> None:
    assert t.exit_code == 0
    assert all(v >= 0 for v in t.stages.values()), t.stages
    assert t.unattributed_s >= -1e-9
    assert sum(t.stages.values()) + t.unattributed_s == pytest.approx(t.total_s, rel=1e-12, abs=1e-12)
    assert sum(share for _, _, share in t.rows()) == pytest.approx(1.0)
    assert list(t.stages.values()) == sorted(t.stages.values(), reverse=True)
    assert set(t.calls) == set(t.stages) and all(n >= 1 for n in t.calls.values())


def test_tiny_privacy_run_finds_every_stage_and_reads_back(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc, text = _run(["--tiny", "--tools", "privacy", "--json", "report.json"])
    assert rc == 0
    report = B.Report.from_dict(json.loads((tmp_path / "report.json").read_text()))
    (t,) = report.tools
    assert t.tool == "privacy" and B.expected_stages("privacy") <= set(t.stages)
    _check_adds_up(t)
    assert t.precision == "fp32" and t.threads == 2
    assert t.command.startswith("python -m eval.privacy --checkpoint dcgan-cond --real isic2017 --n 12 ")
    assert report.settings["tiny"] and report.machine["torch"] and len(report.load_before) == 3
    assert report.imports_s >= 0
    assert report.markdown() in text and "| unattributed |" in text and "| total |" in text
    assert B.Report.from_dict(report.to_dict()) == report
    assert str(tmp_path) not in (tmp_path / "report.json").read_text()


@pytest.mark.slow
def test_tiny_run_of_all_three_tools_finds_every_stage(tmp_path):
    rc, text = _run(["--tiny", "--json", str(tmp_path / "report.json")])
    assert rc == 0
    report = B.Report.from_dict(json.loads((tmp_path / "report.json").read_text()))
    assert [t.tool for t in report.tools] == list(B.TOOLS)
    for t in report.tools:
        missing = B.expected_stages(t.tool) - set(t.stages)
        assert not missing, (t.tool, missing)
        _check_adds_up(t)
    run = report.tools[0]
    assert any(n.startswith("fid: unavailable: no Inception weights") for n in run.notes)  # offline: no download
    assert text.count("| stage | seconds | share |") == 3


@pytest.mark.parametrize("argv, says", [
    (["--real", "{tmp}/nowhere", "--generator", "{tmp}"], "--real {tmp}/nowhere: no such file or folder"),
    (["--real", "{tmp}", "--generator", "{tmp}/g.pt"], "--generator {tmp}/g.pt: no such file or folder"),
    (["--real", "{tmp}"], "--real and --generator are required"),
    (["--tiny", "--tools", "run,score"], "--tools run,score: expected a comma-separated choice"),
    (["--tiny", "--threads", "0"], "--threads 0: must be at least 1"),
])
def test_bad_input_is_one_line_and_exit_code_2(tmp_path, capsys, argv, says):
    rc = B.main([a.format(tmp=tmp_path) for a in argv])
    err = capsys.readouterr()
    assert rc == 2 and err.out == ""
    assert err.err.count("\n") == 1 and err.err.startswith(f"error: {says.format(tmp=tmp_path)}")


def test_report_from_another_file_is_refused():
    with pytest.raises(ValueError, match="not a lesiongan-bench-eval-stages file"):
        B.Report.from_dict({"format": "lesiongan-utility"})
