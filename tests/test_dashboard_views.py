"""Dashboard: the report's table and claims, numeric tables, fp32 evaluation views whose captions
follow the reference, charts (loss types, sparse points, phase labels, overlays, metrics during training),
the live-run status strip and newest-grid jump, generator files, the ZIP manifest, accessibility settings.

Runs on copies of the tiny demo folder (``dashboard.demo``) and on run folders the tests write, never on the
shipped checkpoints or a data set.
"""

from __future__ import annotations

import io
import json
import math
import shutil
import time
import tomllib
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dashboard import comparison, discovery, figures, realdata, results, sampling, stats
from dashboard.demo import export_dcgan, make_demo_folder
from dashboard.status import run_status
from dashboard.testing import assert_ok, run_app
from gan.rundir import RunDir

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "dashboard" / "app.py")
TIMEOUT = 30
pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    return make_demo_folder(tmp_path_factory.mktemp("demo17"))


def _config(run: Path, model: str, kimg: float, **model_cfg) -> None:
    (run / "config.json").write_text(json.dumps({"format": 1, "model": model, "model_cfg": {"resolution": 32,
                                                                                           **model_cfg},
                                                 "train": {"kimg": kimg, "log_kimg": 1}}))


@pytest.fixture
def report_folder(demo, tmp_path) -> Path:
    """The demo with run configs: dcgan-demo is a `dcgan`, pggan-demo a `pggan-seed` (the report's two
    recipes), plus a WGAN-GP `pggan` run with stats only."""
    folder = tmp_path / "models"
    shutil.copytree(demo, folder)
    _config(folder / "dcgan-demo", "dcgan", 48)
    _config(folder / "pggan-demo", "pggan-seed", 64)
    run = RunDir(folder / "pggan-wgan").open_for_writing()
    for i in range(1, 21):
        run.append_stats({"nimg": 1000 * i, "kimg": i, "time_s": 2.0 * i, "loss_D": -1.0 - 0.01 * i,
                          "loss_G": 2.0 + 0.1 * (i % 2), "D_real": 3.0, "D_fake": 1.0, "grad_penalty": 0.1,
                          "resolution": 8 if i < 10 else 16, "alpha": 1.0, "phase": 0 if i < 10 else 1})
    _config(folder / "pggan-wgan", "pggan", 20)
    return folder


_app, _ok = run_app, assert_ok


def _md(at) -> str:
    return "\n".join([m.value for m in at.markdown] + [c.value for c in at.caption] + [i.value for i in at.info]
                     + [c.value for c in at.code] + [w.value for w in at.warning])


def _chart(at, key: str) -> dict:
    [c] = [c for c in at.get("plotly_chart") if c.proto.id and key in c.proto.id]
    return json.loads(c.proto.spec)


def _charts(at) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


# ---------------------------------------------------------------------------------------------
# The report vs this project
# ---------------------------------------------------------------------------------------------


def test_parity_table_sets_the_reports_losses_beside_ours(report_folder):
    entries = discovery.discover_models(report_folder)
    frames = {e.name: stats.read_stats(e.run) for e in entries}
    configs = {e.name: e.read_config() for e in entries}
    res = results.load_results(report_folder)
    models = comparison.parity_models(entries, configs, frames, res)
    assert [m.name for m in models] == ["dcgan-demo", "pggan-demo", "pggan-wgan"]  # dcgan, pggan-seed, pggan
    table = comparison.parity_table(models)
    assert list(table.index) == ["report: DCGAN", "report: PGGAN", "this project: dcgan-demo",
                                 "this project: pggan-demo", "this project: pggan-wgan"]
    assert table.loc["report: DCGAN", ["D loss", "G loss"]].tolist() == [0.57, 3.1]
    assert table.loc["report: PGGAN", ["D loss", "G loss"]].tolist() == [0.05, 3.98]
    assert table.loc["report: PGGAN", "images seen"] == 1_000_000  # 500 epochs x 2,000 images
    assert table["loss"].tolist() == ["BCE", "BCE", "BCE", "BCE", "WGAN-GP"]
    # Ours: mean and sd over the last 10% of training (images seen >= 90% of the last log).
    w = frames["pggan-wgan"]
    tail = w[w["nimg"] >= 18_000]
    assert table.loc["this project: pggan-wgan", "D loss"] == pytest.approx(tail["loss_D"].mean())
    assert table.loc["this project: pggan-wgan", "G loss sd"] == pytest.approx(tail["loss_G"].std(ddof=1))
    assert "18k–20k images" in table.loc["this project: pggan-wgan", "how measured"]


def test_a_model_retrained_with_d_augmentation_keeps_its_previous_version_in_the_parity_table(report_folder):
    from gan.rundir import RunDir

    entries = discovery.discover_models(report_folder)
    frames = {e.name: stats.read_stats(e.run) for e in entries}
    configs = {e.name: e.read_config() for e in entries}
    plain = configs["dcgan-demo"]
    augmented = {**plain, "train": {**plain["train"], "ada": True}}
    old_frame = frames["dcgan-demo"].assign(loss_D=0.5)
    previous = {"dcgan-demo": comparison.Previous(plain, old_frame, {"fd_derm": 9.0})}
    res = results.load_results(report_folder)
    # Without augmentation nothing changes; with it, the previous (the report's recipe) comes first.
    assert [m.name for m in comparison.parity_models(entries, configs, frames, res, previous=previous)][:1] == \
        ["dcgan-demo"]
    models = comparison.parity_models(entries, {**configs, "dcgan-demo": augmented}, frames, res, previous=previous)
    assert [m.name for m in models][:2] == ["dcgan-demo (previous)", "dcgan-demo"]
    table = comparison.parity_table(models)
    assert table.loc["this project: dcgan-demo (previous)", "D loss"] == pytest.approx(0.5)
    assert table.loc["this project: dcgan-demo (previous)", "recipe"] == "report's DCGAN"
    assert table.loc["this project: dcgan-demo", "recipe"] == "report's DCGAN + D augmentation"
    assert comparison._pick(models, "dcgan").name == "dcgan-demo (previous)"  # the claims use the report's recipe


def test_claims_are_judged_from_the_numbers(report_folder):
    entries = discovery.discover_models(report_folder)
    frames = {e.name: stats.read_stats(e.run) for e in entries}
    configs = {e.name: e.read_config() for e in entries}

    def claims():
        models = comparison.parity_models(entries, configs, frames, results.load_results(report_folder))
        return {c.claim: c for c in comparison.report_claims(models)}

    # The demo's numbers: pggan-demo (progressive) has the lower FD and the higher recall and coverage.
    c = claims()
    faster, collapse = c[comparison.CLAIMS[0]], c[comparison.CLAIMS[1]]
    assert faster.verdict == "supported" and "FD derm 33.8 against dcgan-demo's 41.3" in faster.evidence
    assert collapse.verdict == "supported" and "recall 0.120 against 0.0800" in collapse.evidence
    assert c[comparison.CLAIMS[2]].verdict in ("supported", "not supported", "mixed")
    # Swap the two models' scores: the verdicts and the numbers in the sentences follow.
    doc = json.loads((report_folder / "results.json").read_text())
    by = {(r["model"], r["reference"]): r for r in doc["rows"]}
    for ref in ("train", "validation"):
        a, b = by[("dcgan-demo", ref)], by[("pggan-demo", ref)]
        for k in ("fd_derm", "recall_derm", "coverage_derm"):
            a[k], b[k] = b[k], a[k]
    (report_folder / "results.json").write_text(json.dumps(doc))
    # Karras et al.'s pggan joins the sentence with its own images seen when they differ from the others'
    doc["rows"].append({**by[("dcgan-demo", "train")], "model": "pggan-wgan", "fd_derm": 12.5})
    (report_folder / "results.json").write_text(json.dumps(doc))
    c = claims()
    assert c[comparison.CLAIMS[0]].verdict == "not supported"
    assert "FD derm 41.3 against dcgan-demo's 33.8" in c[comparison.CLAIMS[0]].evidence
    assert "pggan-wgan (Karras et al.'s) reaches 12.5 after 20k images" in c[comparison.CLAIMS[0]].evidence
    assert c[comparison.CLAIMS[1]].verdict == "not supported"
    # Metrics scored during training decide "learns faster" point by point when both runs have them.
    for name, fds in (("dcgan-demo", [50, 40, 30]), ("pggan-demo", [45, 35, 35])):
        run = RunDir(report_folder / name)
        for i, fd in enumerate(fds):
            run.append_metrics({"nimg": 10_000 * (i + 1), "kimg": 10 * (i + 1), "time_s": i, "reference": "train",
                                "fd_derm": fd})
    metric_frames = {e.name: stats.read_metrics(e.run) for e in entries}
    models = comparison.parity_models(entries, configs, frames, results.load_results(report_folder), metric_frames)
    faster = comparison.report_claims(models)[0]
    assert "lower than dcgan-demo's at 2 of 3 common points" in faster.evidence


def test_learns_faster_names_both_image_counts_when_the_runs_differ_in_length():
    def run(name, model, nimg, fd):
        frame = pd.DataFrame({"nimg": [nimg // 2, nimg], "time_s": [1.0, 2.0], "loss_D": [0.5, 0.5],
                              "loss_G": [2.0, 2.0]})
        return comparison.ParityModel(name, model, frame, {"fd_derm": fd})

    same = comparison.report_claims([run("d", "dcgan", 150_000, 3.5), run("p", "pggan-seed", 150_000, 9.2)])[0]
    assert "after the same 150k images, p reaches fd derm 9.20 against d's 3.50" in same.evidence.lower()
    longer = comparison.report_claims([run("d", "dcgan", 280_000, 1.81), run("p", "pggan-seed", 150_000, 20.0)])[0]
    assert "at the end of training (150k images against 280k), p reaches fd derm 20.0 against d's 1.81" \
        in longer.evidence.lower()
    assert longer.verdict == "not supported"


def test_overview_shows_parity_table_claims_loss_column_and_quality_bar(monkeypatch, report_folder):
    from eval.registry import describe_quality_bar

    at = _app(monkeypatch, report_folder)
    _ok(at)
    parity = next(d.value for d in at.dataframe if "how measured" in d.value.columns)
    assert parity.loc["report: DCGAN", "D loss"] == 0.57 and parity.loc["report: PGGAN", "G loss"] == 3.98
    assert parity.loc["this project: pggan-wgan", "loss"] == "WGAN-GP"
    scores = next(d.value for d in at.dataframe if "JSD colour" in d.value.columns)
    assert scores["loss"].tolist() == ["BCE", "BCE", "WGAN-GP"]
    assert pd.api.types.is_numeric_dtype(scores["JSD colour"])
    text = _md(at)
    assert "Progressive growing learns faster: supported here." in text
    assert describe_quality_bar().replace("<=", "≤") in text and "★ marks the best value" in text
    training = next(d.value for d in at.dataframe if "architecture" in d.value.columns)
    # "architecture" says what the network is, not the folder's name again.
    assert training.loc["dcgan-demo", "architecture"] == "DCGAN (Radford et al.)"
    assert not any(str(v) == i for i, v in training["architecture"].items())


# ---------------------------------------------------------------------------------------------
# Evaluation: fp32 statistics, captions and hints that follow the folder and the reference
# ---------------------------------------------------------------------------------------------


def _arr(v) -> np.ndarray:
    """A plotly JSON array: a list, or plotly's typed-array form {"bdata": base64, "dtype": ...}."""
    if isinstance(v, dict):
        import base64

        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]))
    return np.asarray(v, dtype=float)


def _hist_traces(spec: dict) -> dict[str, np.ndarray]:
    """The R-channel curves of the histogram figure, by name."""
    return {t["name"]: _arr(t["y"]) for t in spec["data"] if t.get("xaxis", "x") in ("x", "x1")}


def test_evaluation_statistics_come_from_fp32_and_captions_follow_the_reference(monkeypatch, demo):
    at = _app(monkeypatch, demo, "evaluation")
    _ok(at)
    curves = _hist_traces(_chart(at, "ev_hist"))
    gen = demo / "dcgan-demo" / "generator.pt"
    fp32 = realdata.colour_histogram(sampling.generate_images(sampling.load_generator(gen, sampling.EXACT),
                                                              range(128)))
    np.testing.assert_allclose(curves["dcgan-demo"], fp32[0], atol=1e-9)
    preview = sampling.load_generator(gen, sampling.PREVIEW)
    if preview.precision == "bf16":  # a CPU with native bf16: the page must not have drawn those samples
        bf16 = realdata.colour_histogram(sampling.generate_images(preview, range(128)))
        assert not np.allclose(curves["dcgan-demo"], bf16[0], atol=1e-9)
    train_fp = realdata.load_real_bank(demo / "dcgan-demo" / "fingerprint.npz").hist
    np.testing.assert_allclose(curves["real"], train_fp[0], atol=1e-9)
    text = _md(at)
    assert "Solid: training images, from the statistics stored with the model" in text and "(fp32, seeds 0–127)" in text
    at.radio(key="ev_ref").set_value("validation").run()
    _ok(at)
    text = _md(at)
    assert "Solid: validation images, from the statistics stored" in text and "training images, from" not in text
    val_fp = realdata.load_real_bank(demo / "dcgan-demo" / "fingerprint-val.npz").hist
    np.testing.assert_allclose(_hist_traces(_chart(at, "ev_hist"))["real"], val_fp[0], atol=1e-9)
    assert "neighbours are searched among the training images" in text


def test_evaluation_without_fingerprint_or_results_gives_exact_commands_and_a_data_field(monkeypatch, demo,
                                                                                         tmp_path):
    from PIL import Image

    folder = tmp_path / "bare"
    shutil.copytree(demo, folder)
    for name in ("dcgan-demo", "pggan-demo"):
        (folder / name / "fingerprint.npz").unlink()
        (folder / name / "fingerprint-val.npz").unlink()
    (folder / "results.json").unlink()
    at = _app(monkeypatch, folder, "evaluation")
    _ok(at)
    codes = [c.value for c in at.code]
    # Paths as the pages show them (from the shared folder's name down), never the server's absolute path.
    assert "python -m eval.run --checkpoints bare" in codes[0] and str(tmp_path) not in "".join(codes)
    assert "python -m eval.run --real DATA --fake bare/dcgan-demo/generator.pt" in codes[0]
    assert "python -m eval.fingerprint --data DATA --size 32 --out bare/dcgan-demo/fingerprint.npz" in codes
    assert "Only the generated images' histogram" in _md(at)
    [hist] = [c for c in at.get("plotly_chart")]
    assert {t["name"] for t in json.loads(hist.proto.spec)["data"]} == {"dcgan-demo"}  # no curve described but absent
    data = tmp_path / "photos"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(5):
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(data / f"img{i}.png")
    monkeypatch.setenv("LESIONGAN_CACHE", str(tmp_path / "cache"))
    at.text_input(key="ev_data").input(str(data)).run()
    _ok(at)
    assert "Data set path: That path is outside the folders this server shares." in [w.value for w in at.warning]
    monkeypatch.setenv("LESIONGAN_ROOTS", str(data))  # shared now, as --data would
    at = _app(monkeypatch, folder, "evaluation")
    at.text_input(key="ev_data").input(str(data)).run()
    _ok(at)
    assert "Solid: 5 images from `photos`" in _md(at)
    assert "python -m eval.fingerprint --data photos --size 32 --out" in "\n".join(c.value for c in at.code)


# ---------------------------------------------------------------------------------------------
# Charts
# ---------------------------------------------------------------------------------------------


def test_single_logged_step_is_a_visible_point_and_tooltips_are_whole():
    df = pd.DataFrame([{"nimg": 256, "time_s": 3.0, "loss_D": 1.23456789, "loss_G": 0.5}])
    fig = figures.loss_figure(df, weight=0.8, loss="BCE")
    assert {t.mode for t in fig.data} == {"lines+markers"} and len(fig.data) == 2  # no smoothing of one point
    assert fig.layout.xaxis.range == (0, 320.0)  # not +-1 around 256
    assert all("%{y:.4g}" in t.hovertemplate for t in fig.data)
    assert fig.layout.hoverlabel.namelength == -1
    assert "D loss (BCE)" in [t.name for t in fig.data]
    many = pd.DataFrame({"nimg": np.arange(1, 201) * 1000, "time_s": np.arange(1, 201) * 7.0,
                         "loss_D": np.linspace(1, 2, 200), "loss_G": np.linspace(3, 1, 200)})
    fig = figures.loss_figure(many, 0.8, show_raw=True, loss="BCE", x="time_s", log_y=True, y_range=(0.5, 4))
    assert {t.mode for t in fig.data} == {"lines"} and len(fig.data) == 4  # raw + smoothed per series
    assert fig.layout.yaxis.type == "log" and fig.layout.xaxis.title.text == "wall time (min)"
    assert fig.layout.yaxis.range == pytest.approx((math.log10(0.5), math.log10(4)))
    assert len(figures.loss_figure(many, 0.8, show_raw=False).data) == 2


def test_phase_labels_are_centred_in_their_phase(demo):
    df = stats.read_stats(demo / "pggan-demo")
    assert stats.is_progressive(df) and not stats.is_progressive(stats.read_stats(demo / "dcgan-demo"))
    fig = figures.loss_figure(df, 0.8, phases=True)
    spans = stats.phase_spans(df)
    labels = [(a.x, a.text) for a in fig.layout.annotations]
    assert [t for _, t in labels] == [s[2] for s in spans] == ["8 px", "16 px fade-in"]
    assert [x for x, _ in labels] == [pytest.approx((x0 + x1) / 2) for x0, x1, _ in spans]
    # Each label sits between its phase's boundaries, never left of its own start.
    assert all(x0 <= x <= x1 for (x, _), (x0, x1, _) in zip(labels, spans))


def test_training_page_panels_per_loss_type_metrics_and_raw_overlays(monkeypatch, report_folder):
    run = RunDir(report_folder / "dcgan-demo")
    for i, fd in enumerate([60.0, 50.0, 45.0]):
        run.append_metrics({"nimg": 16_000 * (i + 1), "kimg": 16.0 * (i + 1), "time_s": 100.0 * i,
                            "reference": "train", "fd_derm": fd, "precision_derm": 0.5, "recall_derm": 0.1 * i})
    at = _app(monkeypatch, report_folder, "training")
    _ok(at)
    assert "Metrics during training" in [s.value for s in at.subheader]
    fd = _chart(at, "tr_metric_fd_derm")
    assert _arr(fd["data"][0]["y"]).tolist() == [60.0, 50.0, 45.0] and fd["data"][0]["mode"] == "lines+markers"
    # Overlaid: D and G loss in one panel per loss type, the training metric across models.
    series = at.multiselect(key="tr_series")
    assert "fd_derm" in series.options or "FD derm" in series.options
    assert series.value == ["loss_D", "loss_G", "fd_derm"]
    titles = [c["layout"]["title"]["text"] for c in _charts(at) if c["layout"].get("title")]
    assert "D loss · BCE models" in titles and "D loss · WGAN-GP models" in titles
    assert "FD derm (scored during training)" in titles
    bce = next(c for c in _charts(at) if c["layout"].get("title", {}).get("text") == "D loss · BCE models")
    assert {t["name"] for t in bce["data"]} == {"dcgan-demo", "pggan-demo", "dcgan-demo (raw)", "pggan-demo (raw)"}
    at.checkbox(key="tr_raw").uncheck().run()  # "Show raw values" acts on the overlays too
    bce = next(c for c in _charts(at) if c["layout"].get("title", {}).get("text") == "D loss · BCE models")
    assert {t["name"] for t in bce["data"]} == {"dcgan-demo", "pggan-demo"}
    at.multiselect(key="tr_series").set_value(["D_real"]).run()
    titles = [c["layout"]["title"]["text"] for c in _charts(at) if c["layout"].get("title")]
    assert "D(x): D output on real images · BCE models" in titles
    at.selectbox(key="tr_model").set_value("pggan-wgan").run()
    _ok(at)
    assert "Losses (WGAN-GP)" in [s.value for s in at.subheader]
    assert "not comparable with a BCE loss" in _md(at)


# ---------------------------------------------------------------------------------------------
# Live runs
# ---------------------------------------------------------------------------------------------


def _status_text(at) -> str:
    return "\n".join([p.proto.text for p in at.get("progress")] + [m.value for m in at.markdown])


def test_status_strip_and_grids_follow_a_growing_run(monkeypatch, demo, tmp_path):
    run = RunDir(tmp_path / "00000-dcgan-isic2017-32").open_for_writing()
    _config(run.path, "dcgan", 10)
    at = _app(monkeypatch, run.path, "training")
    _ok(at)
    assert not any("No models" in i.value for i in at.info)  # config.json is there: the run is shown
    assert "starting · 0 of 10k images (0%)" in _status_text(at)
    grid = (demo / "dcgan-demo" / "grids" / "grid-000000000.png").read_bytes()
    for i in range(1, 4):
        run.append_stats({"nimg": 1000 * i, "kimg": i, "time_s": 30.0 * i, "loss_D": 1.0, "loss_G": 2.0})
    (run.path / "grids").mkdir()
    for n in (1000, 2000):
        (run.path / "grids" / f"grid-{n:09d}.png").write_bytes(grid)
    at.run()
    _ok(at)
    text = _status_text(at)
    assert "running · 3k of 10k images (30%) · 30 s per 1k images · about 4 min left · updated" in text
    assert at.select_slider(key="tr_grid_pos").value == 2000
    at.select_slider(key="tr_grid_pos").set_value(1000).run()
    assert "after 1k images" in at.image[0].captions[0]
    # A new grid arrives: the view jumps to it.
    (run.path / "grids" / "grid-000003000.png").write_bytes(grid)
    at.run()
    assert at.select_slider(key="tr_grid_pos").value == 3000 and "after 3k images" in at.image[0].captions[0]
    for i in range(4, 11):
        run.append_stats({"nimg": 1000 * i, "kimg": i, "time_s": 30.0 * i, "loss_D": 1.0, "loss_G": 2.0})
    at.run()
    assert "finished · 10k of 10k images (100%)" in _status_text(at)
    # The same from the compute module. The state comes from the run folder's lock, never from file
    # times: silent for an hour, a run whose writer still holds the lock is running (its heartbeat's age
    # says how long it has been quiet); once the writer is gone it has stopped, however new its files.
    entry = discovery.discover_models(run.path)[0]
    df = stats.read_stats(run)
    half = df[df["nimg"] <= 5000]
    cfg = {"train": {"kimg": 10, "log_kimg": 1}}
    quiet = run_status(entry, half, cfg, now=time.time() + 3600)
    assert quiet.state == "running" and quiet.heartbeat_s == pytest.approx(3600, abs=5)
    assert "updated 60 min ago" in quiet.summary()
    from gan.fileio import held_lock

    held_lock(run.path).release()
    assert run.holder() is None
    st = run_status(entry, half, cfg)
    assert st.state == "stopped" and st.eta_s is None and st.per_kimg_s == pytest.approx(30.0)
    assert st.summary() == "stopped · 5k of 10k images (50%) · not training (python -m gan.train --resume continues it)"
    # A shipped model: the snapshot its results name, of how long a run; no progress bar, no "running".
    best = {"nimg": 480_000, "final_nimg": 540_032}
    shipped = run_status(entry, half, {"train": {"kimg": 1000}}, best)
    assert shipped.summary() == "shipped snapshot at 480k images of a 540k run (planned 1M)"
    assert shipped.fraction is None and not shipped.live


def test_grids_of_several_models_side_by_side(monkeypatch, demo):
    at = _app(monkeypatch, demo, "training")
    at.multiselect(key="tr_grid_models").set_value(["dcgan-demo", "pggan-demo"]).run()
    _ok(at)
    assert at.select_slider(key="tr_grid_pos").value == 64_000  # the newest of either
    at.select_slider(key="tr_grid_pos").set_value(48_000).run()
    caps = [i.captions[0] for i in at.image]
    assert caps == ["dcgan-demo after 48k images (3 grids saved)", "pggan-demo after 32k images (3 grids saved)"]


def test_runs_folder_is_listed_and_remembered_and_a_generator_file_is_a_model(monkeypatch, demo, tmp_path):
    from streamlit.testing.v1 import AppTest

    from dashboard.ui.sidebar import OTHER

    runs = tmp_path / "elsewhere"
    shutil.copytree(demo / "dcgan-demo", runs / "00000-dcgan-x-32")
    monkeypatch.setenv("LESIONGAN_ROOTS", str(tmp_path))  # as `-- --runs` would share it
    at = _app(monkeypatch, demo, "generate")
    at.sidebar.text_input(key="lg_runs").input(str(runs)).run()
    _ok(at)
    assert at.query_params["runs"] == str(runs)
    box = at.sidebar.selectbox(key="lg_source")
    shown = f"{tmp_path.name}/elsewhere/00000-dcgan-x-32"  # from the shared folder's name down
    assert shown in box.options
    box.set_value(shown).run()
    _ok(at)
    assert any("1 model in" in c.value for c in at.sidebar.caption)
    assert at.query_params["folder"] == shown  # the chosen run stays in the URL
    # A link with that URL opens on the same run.
    again = AppTest.from_file(APP, default_timeout=TIMEOUT)
    again.query_params.update({"runs": str(runs), "folder": shown})
    again.run()
    _ok(again)
    assert again.sidebar.selectbox(key="lg_source").value == shown
    # A generator file given where a folder goes, under any name.
    pt = tmp_path / "mine" / "G-best.pt"
    export_dcgan(pt, seed=3)
    at.sidebar.selectbox(key="lg_source").set_value(OTHER).run()
    at.sidebar.text_input(key="lg_other").input(str(pt)).run()
    _ok(at)
    assert at.query_params["folder"] == str(pt)
    assert at.selectbox(key="gen_model").value == "mine/G-best.pt"
    assert any("Generator file `G-best.pt`" in c.value for c in at.sidebar.caption)
    for page in ("overview", "training", "gallery", "evaluation"):
        at.switch_page(f"views/{page}.py").run()
        assert not at.exception, (page, [e.value for e in at.exception])
    # A runs folder outside the shared folders: one line, and the shared runs are offered instead.
    at.sidebar.text_input(key="lg_runs").input("/etc").run()
    assert [w.value for w in at.warning] == ["Runs folder: That path is outside the folders this server shares."]


# ---------------------------------------------------------------------------------------------
# Generate: manifest, seed limits, labelled frames
# ---------------------------------------------------------------------------------------------


def test_zip_manifest_and_seed_limits(monkeypatch, demo):
    gen = demo / "dcgan-demo" / "generator.pt"
    G = sampling.load_generator(gen, sampling.EXACT)
    seeds = [5, 6]
    images = sampling.generate_images(G, seeds)
    sha = sampling.file_sha256(gen)
    items, man = sampling.labelled_set(G, "dcgan-demo", gen, sha, seeds)
    data = sampling.zip_set(images, items, man)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.namelist() == ["images/seed0005.png", "images/seed0006.png", "manifest.json"]
        man = json.loads(zf.read("manifest.json"))
    import hashlib

    assert man["generator"]["sha256"] == hashlib.sha256(gen.read_bytes()).hexdigest()
    assert man["generator"]["file"] == "generator.pt" and str(demo) not in json.dumps(man)  # no server path
    assert [(f["file"], f["class"], f["seed"]) for f in man["files"]] == [("images/seed0005.png", None, 5),
                                                                         ("images/seed0006.png", None, 6)]
    assert man["precision"] == "fp32" and man["generator"]["dashboard_model"] == "dcgan-demo"
    assert sampling.cap_count(16, seed=sampling.MAX_SEED) == (1, pytest.approx(
        sampling.cap_count(16, seed=sampling.MAX_SEED)[1]))
    at = _app(monkeypatch, demo, "generate")
    at.number_input(key="gen_seed").set_value(sampling.MAX_SEED - 2).run()
    _ok(at)
    caps = [i.captions for i in at.image if i.captions and i.captions[0].startswith("seed 2147")][0]
    assert caps == [f"seed {sampling.MAX_SEED - 2}", f"seed {sampling.MAX_SEED - 1}", f"seed {sampling.MAX_SEED}"]
    assert any("seeds stop at 2147483647" in w.value for w in at.warning)
    assert any("fp32 sampling (as the scores use)" in m.value for m in at.markdown)  # fp32 unless asked
    at.toggle(key="gen_bf16").set_value(True).run()
    _ok(at)
    want = sampling.load_generator(gen, sampling.PREVIEW).precision  # bf16 where the CPU has it natively
    assert any(f"{want} sampling" in m.value for m in at.markdown)
    at.toggle(key="gen_bf16").set_value(False).run()
    at.number_input(key="gen_seed").set_value(0).run()
    [frames] = [i.captions for i in at.image if i.captions and any(c.startswith("t = ") for c in i.captions)]
    assert frames[0] == "seed 0" and frames[1] == "t = 0.14" and frames[-1] == "seed 1" and len(frames) == 8


def _cond_generator(path: Path, classes=("melanoma", "nevus", "seborrheic_keratosis")) -> Path:
    import torch

    from gan.checkpoint import export_generator
    from gan.config import RunConfig
    from gan.data import DataConfig
    from gan.models import get_model

    spec = get_model("dcgan")
    mcfg = spec.Config(resolution=32, ngf=4, ndf=4, z_dim=8, class_names=tuple(classes))
    torch.manual_seed(0)
    G = spec.build_generator(mcfg)
    cfg = RunConfig(model="dcgan", model_cfg=mcfg, data=DataConfig(path="/srv/private/isic2017", size=32))
    return export_generator({"model": "dcgan", "config": cfg, "G_ema": G.state_dict(), "info": {"nimg": 0}}, path)


def test_the_zip_labels_every_file_in_gan_synthesize_format(monkeypatch, tmp_path):
    from gan.data.manifest import read_own_manifest
    from gan.synthesize import ISIC2017_CSV

    gen = _cond_generator(tmp_path / "models" / "cond" / "generator.pt")
    G = sampling.load_generator(gen)
    seeds = list(range(10, 22))
    images = sampling.generate_images(G, seeds)
    drawn = sampling.seed_labels(G, seeds, None)
    assert len(set(drawn)) > 1  # the training mix: each seed its own class
    assert sampling.layouts(G) == ["folder", "imagefolder", "isic2017"]
    for layout in sampling.layouts(G):
        items, man = sampling.labelled_set(G, "cond", gen, sampling.file_sha256(gen), seeds, None, layout)
        out = tmp_path / layout
        with zipfile.ZipFile(io.BytesIO(sampling.zip_set(images, items, man))) as zf:
            zf.extractall(out)
        doc = read_own_manifest(out)  # gan.synthesize's own reader takes it as one of its sets
        assert [(f["class"], f["seed"], f["latent_index"]) for f in doc["files"]] == [(c, s, 0) for s, c in
                                                                                      zip(seeds, drawn)]
        assert doc["class_counts"] == {c: drawn.count(c) for c in dict.fromkeys(drawn)}
        for f, img in zip(doc["files"], images):
            assert (out / f["file"]).is_file()
            from PIL import Image

            assert np.array_equal(np.asarray(Image.open(out / f["file"])), img)  # the image the page showed
        if layout == "imagefolder":
            assert all(f["file"] == f"{f['class']}/seed{f['seed']:04d}.png" for f in doc["files"])
        if layout == "isic2017":
            csv_rows = (out / ISIC2017_CSV).read_text().splitlines()
            assert len(csv_rows) == len(seeds) + 1
        assert "/srv/private" not in json.dumps(doc)  # the training data named by its folder's name at most
    # One class for all: every file says it.
    items, man = sampling.labelled_set(G, "cond", gen, "x", seeds[:3], "melanoma", "imagefolder")
    assert [f["file"] for f in man["files"]] == [f"melanoma/seed{s:04d}.png" for s in seeds[:3]]
    # The page: the layout choice, and the button says the files carry their classes.
    at = _app(monkeypatch, tmp_path / "models", "generate")
    _ok(at)
    assert at.radio(key="gen_layout").options == [sampling.LAYOUTS[k] for k in sampling.layouts(G)]
    assert at.get("download_button")[0].proto.label == "Download 16 PNGs with their classes (ZIP)"


# ---------------------------------------------------------------------------------------------
# Accessibility and offline
# ---------------------------------------------------------------------------------------------


def _luminance(hex_colour: str) -> float:
    rgb = [int(hex_colour.lstrip("#")[i:i + 2], 16) / 255 for i in (0, 2, 4)]
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def _contrast(fg: str, bg: str = "#ffffff") -> float:
    a, b = sorted((_luminance(fg), _luminance(bg)), reverse=True)
    return (a + 0.05) / (b + 0.05)


def test_streamlit_config_favicon_and_contrast():
    from dashboard.ui.widgets import CAPTION_COLOUR

    cfg = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert cfg["browser"]["gatherUsageStats"] is False and cfg["client"]["toolbarMode"] == "minimal"
    text, bg = cfg["theme"]["textColor"], cfg["theme"]["backgroundColor"]
    # Streamlit draws captions and help text at 60% of the text colour over the background.
    faded = "#" + "".join(f"{round(0.6 * int(text[i:i + 2], 16) + 0.4 * int(bg[i:i + 2], 16)):02x}" for i in (1, 3, 5))
    assert _contrast(faded, bg) >= 4.5
    for colour in (CAPTION_COLOUR, figures.TICK, figures.TEXT):
        assert _contrast(colour) >= 4.5, colour
    fig = figures.loss_figure(pd.DataFrame({"nimg": [1, 2], "loss_D": [1, 2], "loss_G": [1, 2]}))
    assert fig.layout.xaxis.tickfont.color == figures.TICK
    icon = ROOT / "dashboard" / "favicon.png"
    assert icon.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    app = (ROOT / "dashboard" / "app.py").read_text()
    assert 'ICON = HERE / "favicon.png"' in app and "page_icon=str(ICON)" in app and ":material/" not in \
        app.split("st.set_page_config")[1].split("\n")[0]


PAGES = ["overview", "training", "gallery", "generate", "evaluation", "safety"]


@pytest.mark.parametrize("where", ["page", "sidebar"])
def test_a_failure_injected_into_any_page_or_the_sidebar_turns_the_test_red(monkeypatch, demo, where):
    """The guard in app.py catches everything for visitors; in test mode it re-raises, so a page that
    breaks fails its test. Proved by breaking every page (what each calls first) and then the sidebar."""
    from dashboard.ui import sidebar

    def boom(*args, **kwargs):
        raise RuntimeError(f"injected into the {where}")

    monkeypatch.setattr(sidebar, "models_or_stop" if where == "page" else "sidebar", boom)
    at = _app(monkeypatch, demo)
    for page in PAGES:
        if page != "overview":
            at.switch_page(f"views/{page}.py").run()
        assert [e.message for e in at.exception] == [f"injected into the {where}"], page
        with pytest.raises(AssertionError):
            _ok(at)
    monkeypatch.undo()
    _ok(_app(monkeypatch, demo, "training"))  # and without the injection the same page is green


def _headings(node, out: list) -> list:
    if getattr(node, "type", None) in ("title", "header", "subheader"):
        out.append(int(node.proto.tag[1]))
    children = getattr(node, "children", None)
    for child in (children.values() if isinstance(children, dict) else []):
        _headings(child, out)
    return out


@pytest.mark.parametrize("page", ["overview", "training", "gallery", "generate", "evaluation"])
def test_headings_in_order_and_alt_text_on_every_image(monkeypatch, report_folder, page):
    at = _app(monkeypatch, report_folder, page)
    _ok(at)
    levels = _headings(at._tree, [])
    assert levels[0] == 1 and levels.count(1) == 1
    assert all(b <= a + 1 for a, b in zip(levels, levels[1:])), levels  # never h1 -> h3
    alts = [img.alt for el in at.image for img in el.proto.imgs]
    assert alts and all(a.strip() for a in alts), alts
    assert all(("Real" in a or "Generated by" in a or "grid" in a) for a in alts)


def test_every_cache_is_bounded():
    """Each st.cache_data / st.cache_resource in the loaders has a count bound and a time to live."""
    import re

    src = (ROOT / "dashboard" / "ui" / "loaders.py").read_text()
    decorators = re.findall(r"@st\.cache_(?:data|resource)\((.*?)\)\n", src)
    assert len(decorators) >= 8
    assert all("max_entries=" in d and "ttl=" in d for d in decorators), decorators
    from dashboard.ui import loaders

    loaders.tune_allocator()  # safe to call again, and a no-op off glibc
    loaders.trim_heap()


# ---------------------------------------------------------------------------------------------
# One source for every number
# ---------------------------------------------------------------------------------------------


def test_a_shipped_snapshot_is_one_count_of_images_seen_everywhere(monkeypatch, report_folder):
    # dcgan-demo ships a snapshot from the middle of its run (32k of 48k images), as tools/ship.py records it.
    RunDir(report_folder / "dcgan-demo").update_results(
        "best_snapshot", {"shipped": "best", "nimg": 32_000, "final_nimg": 48_000, "metric": "fd_derm"})
    at = _app(monkeypatch, report_folder)
    _ok(at)
    parity = next(d.value for d in at.dataframe if "how measured" in d.value.columns)
    training = next(d.value for d in at.dataframe if "architecture" in d.value.columns)
    ours = "this project: dcgan-demo"
    assert parity.loc[ours, "images seen"] == training.loc["dcgan-demo", "images seen"] == 32_000
    # The losses of both tables: the last 10% of training up to the snapshot, not past it.
    df = stats.read_stats(report_folder / "dcgan-demo")
    tail = df[(df["nimg"] >= 0.9 * 32_000) & (df["nimg"] <= 32_000)]["loss_D"]
    assert parity.loc[ours, "D loss"] == pytest.approx(tail.mean()) == training.loc["dcgan-demo", "D loss"]
    assert "up to the shipped snapshot (the run went on to 48k)" in parity.loc[ours, "how measured"]
    assert "At the end of training (64k images against 32k)" in _md(at)  # the claims count the same images
    # The report's own numbers as the report prints them.
    html = comparison.styled(parity, comparison.PARITY_COLUMNS, index_label="row",
                             as_given=comparison.REPORT_ROW_LABELS).to_html()
    for given in (">0.57<", ">3.1<", ">0.05<", ">3.98<"):
        assert given in html
    assert "0.570" not in html and "0.0500" not in html
    # The Training page says the same: a shipped snapshot of a longer run, never "running" from file times.
    at.switch_page("views/training.py").run()
    _ok(at)
    assert "shipped snapshot at 32k images of a 48k run (planned 48k)" not in _status_text(at)
    assert "shipped snapshot at 32k images of a 48k run" in _status_text(at)
    assert [m.value for m in at.metric if m.label == "Shipped snapshot"] == ["32k"]


def test_seeds_are_stated_as_they_were(demo, tmp_path):
    res = results.load_results(demo)
    assert res.settings().startswith("64 generated samples per model, sample seed 0")
    folder = tmp_path / "seeds"
    shutil.copytree(demo, folder)
    doc = json.loads((folder / "results.json").read_text())
    for r in doc["rows"]:
        r["seeds"] = [0, 1, 2]
    (folder / "results.json").write_text(json.dumps(doc))
    assert results.load_results(folder).settings().startswith(
        "64 generated samples per model and sample seed, mean ± sd over sample seeds 0, 1, 2")
    # A model's own results.json keeps the first seed's full result and the spread beside it: read through
    # eval.run's own flattener, its row holds the means, as the collection's row does.
    doc = {"results": {"train": {"fd_derm": 20.0, "unavailable": {}, "spread": {
        "fd_derm": {"mean": 19.7, "sd": 0.5}, "seeds": [0, 1, 2]}}}}
    row = results.stored_rows(doc, "m")["train"]
    assert row["fd_derm"] == 19.7 and row["fd_derm_sd"] == 0.5 and row["seeds"] == [0, 1, 2]


def test_a_new_run_is_overlaid_on_the_shipped_models_and_every_curve_downloads(monkeypatch, report_folder, tmp_path):
    runs = tmp_path / "runs"
    shutil.copytree(report_folder / "dcgan-demo", runs / "00000-dcgan-new-32")
    RunDir(report_folder / "dcgan-demo").update_results("best_snapshot", {"nimg": 32_000, "final_nimg": 48_000})
    monkeypatch.setenv("LESIONGAN_ROOTS", str(runs))
    at = _app(monkeypatch, report_folder, "training")
    at.sidebar.text_input(key="lg_runs").input(str(runs)).run()
    at.sidebar.selectbox(key="lg_source").set_value("runs/00000-dcgan-new-32").run()
    _ok(at)
    # The run's own curves download as CSV and JSON: one row per model, step and series.
    [csv_button, json_button] = [b for b in at.get("download_button") if b.proto.id and "tr_dl" in b.proto.id]
    assert csv_button.proto.label == "Curves (CSV)" and json_button.proto.label == "Curves (JSON)"
    frame = stats.long_table({"m": stats.read_stats(runs / "00000-dcgan-new-32")})
    assert set(frame["series"]) >= {"loss_D", "loss_G", "D_real", "D_fake"} and set(frame.columns) == {
        "model", "nimg", "time_s", "series", "value"}
    # Overlaid with the shipped models: dotted, their shipped snapshot marked.
    at.multiselect(key="tr_base").set_value(["dcgan-demo"]).run()
    _ok(at)
    bce = next(c for c in _charts(at) if c["layout"].get("title", {}).get("text") == "D loss · BCE models")
    names = {t["name"]: t for t in bce["data"]}
    assert "dcgan-demo (shipped)" in names and names["dcgan-demo (shipped)"]["line"]["dash"] == "dot"
    assert any(a.get("text") == "shipped snapshot, 32k" for a in bce["layout"]["annotations"])
    assert [b for b in at.get("download_button") if b.proto.id and "tr_ov_dl" in b.proto.id]
