"""Dashboard: the compute modules of dashboard (no Streamlit), and every page through Streamlit's AppTest.

Runs on a tiny demo folder (dashboard.demo: real 32 px DCGAN files, synthetic stats, grids, fingerprint,
results), never on the shipped checkpoints or a data set.
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dashboard import comparison, discovery, figures, realdata, results, sampling, stats
from dashboard.demo import export_dcgan, make_demo_folder
from eval import keys as K
from dashboard.testing import assert_ok, run_app
from gan.rundir import RunDir

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.timeout(120)
APP = str(ROOT / "dashboard" / "app.py")
TIMEOUT = 30  # seconds per AppTest run; a cold run imports torch, plotly and the models


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    return make_demo_folder(tmp_path_factory.mktemp("demo"), broken=False)


@pytest.fixture(scope="module")
def demo_broken(tmp_path_factory) -> Path:
    return make_demo_folder(tmp_path_factory.mktemp("demo_broken"), broken=True)


# ---------------------------------------------------------------------------------------------
# Compute modules
# ---------------------------------------------------------------------------------------------


def test_discover_models_in_checkpoints_and_run_folders(demo, tmp_path):
    entries = discovery.discover_models(demo)
    assert [e.name for e in entries] == ["dcgan-demo", "pggan-demo"]
    assert all(e.weights.name == "generator.pt" and e.stats and e.fingerprint for e in entries)
    # A run folder is itself one model; a run still training may have stats only.
    run = tmp_path / "00003-dcgan-isic2017-64"
    run.mkdir()
    (run / "stats.jsonl").write_text('{"nimg": 64, "loss_D": 1.0, "loss_G": 1.0}\n')
    (run / "checkpoint.pt").write_bytes(b"")
    [e] = discovery.discover_models(run)
    assert e.name == run.name and e.weights.name == "checkpoint.pt"
    (run / "checkpoint.pt").unlink()
    assert discovery.discover_models(run)[0].weights is None
    assert discovery.discover_models(tmp_path / "missing") == []


def test_read_stats_skips_a_half_written_line(tmp_path):
    p = tmp_path / "stats.jsonl"
    p.write_text('{"nimg": 200, "loss_D": 0.5}\n{"nimg": 100, "loss_D": 0.7}\n\n{"nimg": 300, "loss')
    df = stats.read_stats(tmp_path)
    assert df["nimg"].tolist() == [100, 200]
    assert stats.read_stats(tmp_path / "elsewhere").empty


def test_read_stats_shows_the_last_row_of_a_resumed_step(tmp_path):
    # A run killed after logging step 200 and resumed from its checkpoint at 100 logs 200 again.
    run = RunDir(tmp_path)
    for row in ({"nimg": 100, "loss_D": 0.7}, {"nimg": 200, "loss_D": 0.5}, {"nimg": 200, "loss_D": 0.4},
                {"nimg": 300, "loss_D": 0.3}):
        run.append_stats(row)
    df = stats.read_stats(run)
    assert df["nimg"].tolist() == [100, 200, 300]
    assert df.set_index("nimg").loc[200, "loss_D"] == 0.4
    [entry] = discovery.discover_models(tmp_path)
    assert entry.stats is not None and stats.read_stats(entry.run)["loss_D"].tolist() == [0.7, 0.4, 0.3]


def test_smooth_is_a_debiased_ema():
    x = np.array([1.0, 3.0, 3.0, 3.0])
    assert np.allclose(stats.smooth(x, 0.0), x)
    s = stats.smooth(x, 0.5)
    assert s[0] == 1.0  # debiased: no pull towards zero at the start
    assert s[1] == pytest.approx((0.25 * 1 + 0.5 * 3) / 0.75)
    assert np.allclose(stats.smooth(np.full(5, 2.0), 0.9), 2.0)
    with pytest.raises(ValueError):
        stats.smooth(x, 1.0)


def _smooth_by_hand(values, weight):
    """The dashboard's former hand-written loop, kept as the reference for pandas' ewm."""
    out = np.empty(len(values))
    acc = norm = 0.0
    for i, v in enumerate(values):
        if not np.isfinite(v):
            out[i] = np.nan
            continue
        acc = weight * acc + (1.0 - weight) * v
        norm = weight * norm + (1.0 - weight)
        out[i] = acc / norm
    return out


@pytest.mark.parametrize("weight", [0.0, 0.3, 0.8, 0.99])
def test_smooth_equals_the_former_loop_with_gaps(weight):
    x = np.random.default_rng(0).normal(1.0, 0.5, 60)
    x[[0, 7, 8, 30]] = np.nan  # a gap at the start, two in a row, one in the middle
    x[45] = np.inf
    want = _smooth_by_hand(x, weight)
    got = stats.smooth(x, weight)
    assert np.array_equal(np.isnan(got), ~np.isfinite(x))  # NaN exactly where the input is not finite
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=0, equal_nan=True)
    import pandas as pd

    np.testing.assert_allclose(stats.smooth(pd.Series(x, index=range(100, 160)), weight), want, rtol=1e-12,
                               equal_nan=True)


def test_list_grids_sorted_by_images_seen(demo):
    [entry] = discovery.discover_models(demo / "pggan-demo")
    grids = entry.grids()
    assert [n for n, _ in grids] == [0, 32000, 64000]


def _legacy_folder(demo: Path, dest: Path) -> Path:
    """A copy of a demo model as a shipped folder used to be: its config in training_options.json."""
    import shutil

    shutil.copytree(demo / "dcgan-demo", dest)
    legacy = {"format": 1, "model": "dcgan", "model_cfg": {"resolution": 32, "z_dim": 16, "ngf": 8, "ndf": 8},
              "train": {"kimg": 48.0, "augment": True, "channels_last": True},
              "data": {"path": "/data/isic2017", "layout": "isic2017", "size": 32, "num_images": 2000}}
    (dest / "training_options.json").write_text(json.dumps(legacy, indent=2))
    return dest


def test_model_entry_reads_a_legacy_training_options_json(demo, tmp_path):
    [entry] = discovery.discover_models(_legacy_folder(demo, tmp_path / "dcgan"))
    assert entry.config.name == "training_options.json"
    cfg = entry.read_config()
    assert cfg["model"] == "dcgan" and cfg["model_cfg"]["z_dim"] == 16 and cfg["train"]["kimg"] == 48.0
    assert cfg["data"]["augment"] is True and "augment" not in cfg["train"]  # migrated to the data config
    json.dumps(cfg)  # what st.json shows
    # A folder with only the legacy config is a model too; a broken config names its file.
    only = tmp_path / "only-config"
    only.mkdir()
    (only / "training_options.json").write_text("{\"model\": \"nope\"}")
    [entry] = discovery.discover_models(only)
    with pytest.raises(ValueError, match="training_options.json"):
        entry.read_config()
    assert discovery.discover_models(demo)[0].read_config() is None  # the demo ships none


def test_load_results_reads_eval_runs_format(demo, tmp_path):
    assert results.load_results(tmp_path) is None
    res = results.load_results(demo)
    assert res.models == ["dcgan-demo", "pggan-demo"]
    assert res.references("dcgan-demo") == ["train", "validation"]
    assert res.row("dcgan-demo")["reference"] == "train"
    assert res.row("dcgan-demo", "validation")[K.KEY_JS_RGB] == pytest.approx(0.116)
    assert res.row("nope") is None and "64 generated samples" in res.settings()
    why = results.unavailable_reasons(res.row("dcgan-demo"))
    assert set(why) == {"fid", "kid"} and why["fid"].startswith("no Inception weights")
    assert results.unavailable_reasons({"unavailable": {"fid": "x"}}) == {"fid": "x"}
    assert results.unavailable_reasons({}) == {} and results.unavailable_reasons(None) == {}
    [fid] = [m for m in results.metrics() if m.name == "fid"]
    assert results.metric_note(res.row("dcgan-demo"), fid) == why["fid"]
    assert not res.outdated and res.meta["version"] == 2
    (tmp_path / "results.json").write_text("{not json")
    with pytest.raises(ValueError, match="results.json"):
        results.load_results(tmp_path)


def test_results_written_by_eval_run_load(demo, tmp_path):
    import contextlib
    import shutil

    from eval.run import main as eval_main

    root = tmp_path / "scored"
    shutil.copytree(demo, root)
    (root / "results.json").unlink()
    with contextlib.redirect_stdout(io.StringIO()):
        rc = eval_main(["--checkpoints", str(root), "--n", "16", "--quiet", "--metrics", "hist_js", "wasserstein",
                        "memorization"])
    assert rc == 0
    res = results.load_results(root)
    assert res.models == ["dcgan-demo", "pggan-demo"] and res.references("pggan-demo") == ["train", "validation"]
    entries = discovery.discover_models(root)
    table, notes = comparison.overview_table(entries, {}, {}, res)
    assert table["JSD colour"].notna().all() and table["Copy rate"].notna().all()
    assert table["FID"].isna().all() and any(n.startswith("FID") for n in notes)


def test_overview_table_is_complete_and_says_why_fid_is_missing(demo):
    entries = discovery.discover_models(demo)
    frames = {e.name: stats.read_stats(e.run) for e in entries}
    facts = {e.name: comparison.generator_facts(sampling.load_generator(e.weights)) for e in entries}
    table, notes = comparison.overview_table(entries, frames, facts, results.load_results(demo))
    assert list(table.index) == ["dcgan-demo", "pggan-demo"]
    for col in ("loss", "D loss", "G loss", "JSD colour", "Wasserstein", "FID", "KID", "Diversity MS-SSIM",
                "Copy rate", "resolution", "parameters", "images seen", "training time", "hardware"):
        assert col in table.columns
    # Numbers stay numbers (the page formats them; sorting is by value, not as text).
    for col in ("D loss", "G loss", "JSD colour", "FD derm", "images seen", "training time", "parameters"):
        assert pd.api.types.is_numeric_dtype(table[col]), col
    assert table.loc["dcgan-demo", "JSD colour"] == pytest.approx(0.112)
    assert comparison.overview_table(entries, frames, facts, results.load_results(demo), "validation")[0].loc[
        "dcgan-demo", "JSD colour"] == pytest.approx(0.116)
    assert table.loc["dcgan-demo", "resolution"] == 32
    assert table.loc["pggan-demo", "images seen"] == 64_000
    assert table.loc["dcgan-demo", "hardware"] == "demo CPU"
    assert table.loc["dcgan-demo", "training time"] == pytest.approx(2400 / 3600)  # hours, from the generator's info
    assert table.loc["dcgan-demo", comparison.QUALITY_BAR_COLUMN] == "not met"  # JSD 0.112 > 0.010
    # D/G loss: the mean and sd over the last 10% of the logs (images seen >= 90% of the last), not the last log.
    df = frames["dcgan-demo"]
    tail = df[df["nimg"] >= 0.9 * df["nimg"].iloc[-1]]["loss_D"]
    assert 2 <= len(tail) < len(df) and table.loc["dcgan-demo", "D loss"] == pytest.approx(tail.mean())
    assert table.loc["dcgan-demo", "D loss sd"] == pytest.approx(tail.std(ddof=1))
    assert table.loc["dcgan-demo", "loss"] == "BCE"  # D outputs in [0, 1]: a BCE discriminator
    assert any(n.startswith("FID") and "Inception weights" in n for n in notes)
    # Best per column: lower FD and JSD for pggan-demo, higher recall for pggan-demo.
    best = comparison.best_index(table)
    assert best["JSD colour"] == ["pggan-demo"] and best["FD derm"] == ["pggan-demo"]
    assert best["Recall derm"] == ["pggan-demo"] and "FID" not in best
    # A row that meets the bar, and an older results.json (reasons folded into a string) says to rerun.
    from eval.registry import QUALITY_BAR

    good = [{"model": "dcgan-demo", "reference": "train", **{k: v / 2 for k, v in QUALITY_BAR.items()},
             "unavailable": "fid: no weights"}]
    old = results.Results(rows=good, meta={"version": 1}, path=demo / "results.json")
    table, notes = comparison.overview_table(entries[:1], {}, {}, old)
    assert table.loc["dcgan-demo", comparison.QUALITY_BAR_COLUMN] == "met"
    assert old.outdated and "version 1" in notes[0] and "rerun" in notes[0]
    assert any("gives no reason" in n for n in notes)
    # Without results.json: one note that says how to make it.
    table, notes = comparison.overview_table(entries, frames, facts, None)
    assert table["FID"].isna().all() and "eval.run" in notes[0]


def test_cap_count():
    assert sampling.cap_count(16) == (16, None)
    n, msg = sampling.cap_count(10_000)
    assert n == sampling.MAX_COUNT and str(sampling.MAX_COUNT) in msg
    assert sampling.cap_count(0)[0] == 1


def test_generation_is_per_seed_and_zipped_by_seed(demo):
    G = sampling.load_generator(demo / "dcgan-demo" / "generator.pt")
    a = sampling.generate_images(G, range(0, 6))
    b = sampling.generate_images(G, [3, 4])
    assert a.shape == (6, 32, 32, 3) and a.dtype == np.uint8
    assert np.array_equal(a[3:5], b)  # image i depends on its own seed only
    assert not np.array_equal(a[0], a[1])
    gen = demo / "dcgan-demo" / "generator.pt"
    items, man = sampling.labelled_set(G, "dcgan-demo", gen, sampling.file_sha256(gen), [3, 4])
    data = sampling.zip_set(b, items, man)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.namelist() == ["images/seed0003.png", "images/seed0004.png", "manifest.json"]
        from PIL import Image

        assert np.array_equal(np.asarray(Image.open(zf.open("images/seed0004.png"))), b[1])
    path = sampling.interpolate(G, 3, 4, steps=5)
    assert path.shape == (5, 32, 32, 3)
    assert np.abs(path[0].astype(int) - b[0]).max() <= 1 and np.abs(path[-1].astype(int) - b[1]).max() <= 1


def test_messages_from_files_and_libraries_without_server_paths():
    from dashboard.formatting import plain_message

    # A failed Inception download, with torch-fidelity's error and its cache path.
    raw = ("no Inception weights: none in torch-fidelity's cache and its download failed: URLError: <urlopen error "
           "[Errno -3] Temporary failure in name resolution> (/srv/cache/torch/hub/checkpoints/pt_inception.pth)")
    assert plain_message(raw) == ("no Inception weights on this server: FID and KID need torch-fidelity's Inception "
                                  "weights (python -m eval.run --inception-weights PATH)")
    msg = plain_message("could not read /srv/models/dcgan/generator.pt: bad zip; see ~/notes and "
                        "https://pytorch.org/docs/stable/generated/torch.load.html", lambda p: "checkpoints/dcgan")
    assert msg == ("could not read checkpoints/dcgan: bad zip; see notes and "
                   "https://pytorch.org/docs/stable/generated/torch.load.html")


def test_one_heavy_job_at_a_time_and_the_next_visitor_is_told_it_is_queued():
    import threading

    from dashboard.ui import loaders

    assert loaders.queued_note("Generating 4 images") is None
    holding, release, order = threading.Event(), threading.Event(), []

    def visitor(name: str, hold: bool) -> None:
        with loaders._slot():
            order.append(f"{name} starts")
            if hold:
                holding.set()
                release.wait(10)
            order.append(f"{name} ends")

    first = threading.Thread(target=visitor, args=("first", True))
    first.start()
    assert holding.wait(5)
    assert loaders.queued_note("Generating 4 images with dcgan") == (
        "Queued: another visitor's job is running on this server; generating 4 images with dcgan starts when it ends.")
    second = threading.Thread(target=visitor, args=("second", False))
    second.start()
    time.sleep(0.3)
    assert order == ["first starts"]  # the second job waits for the slot
    release.set()
    first.join(5)
    second.join(5)
    assert order == ["first starts", "first ends", "second starts", "second ends"]
    assert loaders.queued_note("Generating 4 images") is None
    with loaders._slot(), loaders._slot():  # one visitor's nested jobs (features of generated images) share it
        pass


def test_64_images_at_64px_one_per_seed():
    from gan.config import RunConfig
    from gan.generator import LoadedGenerator
    from gan.models import get_model

    spec = get_model("dcgan")
    cfg = spec.Config()  # the report's 64 px DCGAN, full width
    G = LoadedGenerator(spec.build_generator(cfg), "dcgan", 64, 1.0, cfg.z_dim, RunConfig("dcgan", cfg), {},
                        Path("mem"))
    x = sampling.generate_images(G, range(64))
    assert x.shape == (64, 64, 64, 3) and x.dtype == np.uint8
    # Image i comes from seed i alone: the same as asking for that seed by itself.
    assert np.array_equal(x[5:6], sampling.generate_images(G, [5]))
    # Speed (64 images at 64 px, the page's default) is measured in bench/bench_generate.py, not here.


def test_closest_pairs_find_a_copied_training_image(demo):
    bank = realdata.load_real_bank(demo / "dcgan-demo" / "fingerprint.npz")
    assert bank.hist.shape == (3, 256) and np.allclose(bank.hist.sum(1), 1)
    assert len(bank.thumbs) == len(bank.thumb_names) > 0 and bank.bank is not None
    # A "generated" set that contains training image 7 upscaled: it must pair with it at distance ~0.
    G_like = np.random.default_rng(0).integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    G_like[2] = bank.bank[7].repeat(2, 0).repeat(2, 1)
    [first, *_] = realdata.closest_pairs(G_like, bank.bank, bank.bank_names, k=3)
    assert first.fake_index == 2 and first.real_name == bank.bank_names[7] and first.distance < 0.02
    fig = figures.histogram_figure(bank.hist, realdata.colour_histogram(G_like))
    assert len(fig.data) == 6


def test_broken_fingerprint_raises_a_value_error(tmp_path):
    p = tmp_path / "fingerprint.npz"
    p.write_bytes(b"junk")
    with pytest.raises(ValueError, match="fingerprint"):
        realdata.load_real_bank(p)


# ---------------------------------------------------------------------------------------------
# Pages (AppTest)
# ---------------------------------------------------------------------------------------------


_app, _ok = run_app, assert_ok


def _scores(at, column: str = "JSD colour"):
    """The Overview's score table that has ``column``."""
    [df] = [d for d in at.dataframe if column in d.value.columns]
    return df


def _texts(at) -> str:
    parts = [m.value for m in at.markdown] + [h.value for h in at.header] + [h.value for h in at.subheader] + [c.value for c in at.caption] + [i.value for i in at.info]
    parts += [w.value for w in at.warning] + [e.value for e in at.error]
    return "\n".join(str(p) for p in parts)


def _seed_images(at):
    """The Generate page's image list (captions 'seed N')."""
    [img] = [i for i in at.image if i.captions and all(c.startswith("seed ") for c in i.captions)
             and len(i.captions) != 2]
    return img


def test_app_test_from_file_in_the_repo_root(monkeypatch, demo):
    from streamlit.testing.v1 import AppTest

    # Exactly `python -c 'AppTest.from_file("dashboard/app.py").run()'` in the repo root: from_file resolves a
    # relative path against its caller's file, "<string>" there, i.e. the cwd; app.py then gets a relative
    # __file__ and must still find its pages.
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv(discovery.ENV_CHECKPOINTS, str(demo))
    code = compile('AppTest.from_file("dashboard/app.py", default_timeout=TIMEOUT).run()', "<string>", "eval")
    at = eval(code, {"AppTest": AppTest, "TIMEOUT": TIMEOUT})
    assert not Path(at._script_path).is_absolute()
    assert not at.exception, [e.value for e in at.exception]
    assert [t.value for t in at.title] == ["LesionGAN models"]
    at.switch_page("views/training.py").run()
    assert not at.exception and [t.value for t in at.title] == ["Training"]


@pytest.mark.parametrize("page", ["overview", "training", "gallery", "generate", "evaluation"])
def test_every_page_renders(monkeypatch, demo, page):
    at = _app(monkeypatch, demo, page)
    _ok(at)
    assert at.title and at.image or page == "training"


def test_overview_shows_the_table_notes_and_samples(monkeypatch, demo):
    at = _app(monkeypatch, demo)
    _ok(at)
    df = _scores(at)
    assert list(df.value.index) == ["dcgan-demo", "pggan-demo"]
    assert df.value.loc["pggan-demo", "JSD colour"] == pytest.approx(0.087)  # a number, sorted by value
    text = _texts(at)
    assert "Inception weights" in text  # why FID/KID are missing
    assert "Jensen-Shannon" in text and "lower" in text  # one line per metric, with direction
    assert "Sees: near-copies of training images" in text  # from the eval registry's catalogue
    from eval.registry import describe_quality_bar

    assert describe_quality_bar().replace("<=", "≤") in text  # the quality bar, where the metrics are
    assert len(at.image) == 2 and all(len(i.value) == 8 for i in at.image)
    assert [x.label for x in at.expander] == ["How to read the columns", "Model card: dcgan-demo",
                                              "Model card: pggan-demo"]


def test_training_page_curves_and_grid_slider(monkeypatch, demo):
    at = _app(monkeypatch, demo, "training")
    _ok(at)
    assert len(at.get("plotly_chart")) == 4  # losses, D outputs, overlaid D and G loss
    at.selectbox(key="tr_model").set_value("pggan-demo").run()
    _ok(at)
    assert "new phase" in _texts(at)
    at.multiselect(key="tr_grid_models").set_value(["pggan-demo"]).run()
    before = at.image[0].value
    assert at.select_slider(key="tr_grid_pos").value == 64_000  # opens on the newest grid
    at.select_slider(key="tr_grid_pos").set_value(0).run()
    _ok(at)
    assert at.image[0].value != before and "after 0 images" in at.image[0].captions[0]


def test_training_page_shows_a_shipped_models_legacy_config(monkeypatch, demo, tmp_path):
    folder = _legacy_folder(demo, tmp_path / "models" / "dcgan")
    at = _app(monkeypatch, folder.parent, "training")
    _ok(at)
    assert [x.label for x in at.expander] == ["Run configuration, as resolved when the run started"]
    [shown] = at.json
    cfg = json.loads(shown.value)
    assert cfg["model"] == "dcgan" and cfg["train"]["kimg"] == 48.0 and cfg["data"]["augment"] is True
    (folder / "training_options.json").write_text('{"model": "dcgan", "model_cfg": {"colour": 3}}')
    at = _app(monkeypatch, folder.parent, "training")
    assert not at.exception and any("could not read its run config" in w.value for w in at.warning)


def test_generate_seed_count_and_model_change_the_images(monkeypatch, demo):
    at = _app(monkeypatch, demo, "generate")
    _ok(at)
    first = _seed_images(at).value
    assert len(first) == 16
    assert at.get("download_button")
    at.number_input(key="gen_seed").set_value(100).run()
    _ok(at)
    other = _seed_images(at)
    assert other.captions[0] == "seed 100" and set(other.value).isdisjoint(first)
    at.number_input(key="gen_count").set_value(sampling.MAX_COUNT + 500).run()
    assert not at.exception
    assert len(_seed_images(at).value) == sampling.MAX_COUNT
    assert any(str(sampling.MAX_COUNT) in w.value for w in at.warning)
    at.number_input(key="gen_count").set_value(4)
    at.number_input(key="gen_seed").set_value(0).run()
    dc = _seed_images(at).value
    at.selectbox(key="gen_model").set_value("pggan-demo").run()
    _ok(at)
    pg = _seed_images(at).value
    assert len(pg) == 4 and set(pg).isdisjoint(dc)
    assert any("pggan-demo" in m.value for m in at.markdown)


def test_generate_64_images_at_64px_rerun_is_fast(monkeypatch, tmp_path):
    export_dcgan(tmp_path / "dcgan-64" / "generator.pt", resolution=64, z_dim=100, ngf=64)  # the report's size
    at = _app(monkeypatch, tmp_path, "generate")
    at.number_input(key="gen_count").set_value(64).run()
    t0 = time.process_time()
    at.number_input(key="gen_seed").set_value(7).run()
    elapsed = time.process_time() - t0
    _ok(at)
    assert len(_seed_images(at).value) == 64
    print(f"Generate page rerun, 64 images at 64 px: {elapsed:.2f} s CPU")
    assert elapsed < 2.0, f"Generate page rerun with 64 images took {elapsed:.2f} s of CPU"


def test_gallery_and_evaluation_pages(monkeypatch, demo):
    at = _app(monkeypatch, demo, "gallery")
    _ok(at)
    # One grid: a real column and one column per model, 8 rows.
    assert [m.value for m in at.markdown if m.value.startswith("**")][:3] == ["**Real**", "**dcgan-demo**",
                                                                             "**pggan-demo**"]
    assert len(at.image) == 24
    at.slider(key="ga_count").set_value(4).run()
    assert len(at.image) == 12
    alts = [i.proto.imgs[0].alt for i in at.image]
    assert alts[0].startswith("Real training image ISIC_") and alts[1] == "Generated by dcgan-demo, seed 0"
    assert alts[-1] == "Generated by pggan-demo, seed 3"
    at.button(key="ga_enlarge").click().run()  # the row in a dialog, larger
    _ok(at)
    enlarged = [i.captions[0] for i in at.image if " · " in (i.captions[0] or "")]
    assert enlarged[0].startswith("Real · ISIC_") and enlarged[1:] == ["dcgan-demo · seed 0", "pggan-demo · seed 0"]
    at.switch_page("views/evaluation.py").run()
    _ok(at)
    assert at.get("plotly_chart") and len(at.metric) == len(results.metrics())
    assert [m.value for m in at.metric if m.label.startswith("FID")] == ["n/a"]
    assert sum(len(i.value) == 2 for i in at.image) == 8  # nearest-neighbour pairs
    assert [m.value for m in at.metric if m.label.startswith("JSD")] == ["0.112"]
    at.radio(key="ev_ref").set_value("validation").run()
    assert [m.value for m in at.metric if m.label.startswith("JSD")] == ["0.116"]
    # The copy rate is scored against the training images: said so, with the training value.
    copy = [t for t in _texts(at).splitlines() if "copy rate compares samples with the training images" in t]
    assert copy and "see it scored against train (0 there)" in copy[0]
    at.selectbox(key="ev_model").set_value("pggan-demo").run()
    _ok(at)


def test_missing_pieces_give_messages_not_tracebacks(monkeypatch, demo_broken, tmp_path):
    for page in ("overview", "gallery", "generate", "evaluation", "training"):
        at = _app(monkeypatch, demo_broken, page)
        assert not at.exception, (page, [e.value for e in at.exception])
    at = _app(monkeypatch, demo_broken, "overview")
    assert any("broken-demo" in e.value and "generator.pt" in e.value for e in at.error)
    at = _app(monkeypatch, demo_broken, "generate")
    assert at.selectbox(key="gen_model").value == "dcgan-demo"  # opens on a model that loads
    at.selectbox(key="gen_model").set_value("broken-demo").run()
    assert not at.exception and any("could not load" in e.value for e in at.error)
    # An empty folder, and a folder with stats only (a run that just started).
    empty = tmp_path / "empty"
    empty.mkdir()
    for page in ("overview", "training", "generate"):
        at = _app(monkeypatch, empty, page)
        assert not at.exception and any("No models" in i.value for i in at.info)
    run = tmp_path / "00000-dcgan-x-32"
    run.mkdir()
    (run / "stats.jsonl").write_text('{"nimg": 32, "loss_D": 1.3, "loss_G": 0.7}\n')
    for page in ("overview", "training", "gallery", "generate", "evaluation"):
        at = _app(monkeypatch, run, page)
        assert not at.exception, (page, [e.value for e in at.exception])


def test_a_failing_page_goes_red_in_tests_and_is_one_calm_line_for_visitors(monkeypatch, demo, caplog):
    from dashboard import status

    def boom(*args, **kwargs):
        raise RuntimeError("injected failure in /srv/secret/place")

    monkeypatch.setattr(status, "run_status", boom)  # what views/training.py calls first
    at = _app(monkeypatch, demo, "training")
    assert [type(e).__name__ for e in at.exception] == ["Exception"]  # the guard re-raised it in test mode
    assert "injected failure" in at.exception[0].message
    with pytest.raises(AssertionError):
        _ok(at)
    # Served to visitors: no exception element, one error line, nothing of the exception in it.
    at = _app(monkeypatch, demo, "training", raise_errors=False)
    assert not at.exception
    [err] = [e.value for e in at.error]
    assert err.startswith("This page hit an unexpected error") and "injected" not in err and "/srv" not in err
    assert "RuntimeError" not in err
    # The details go to the server's log, with the traceback.
    [record] = [r for r in caplog.records if r.name == "lesiongan.dashboard" and r.exc_info]
    assert record.getMessage() == "the Training page failed" and "injected failure" in str(record.exc_info[1])


def test_sidebar_picks_another_folder(monkeypatch, demo, tmp_path):
    monkeypatch.setenv("LESIONGAN_ROOTS", str(demo))  # the server shares the demo folder too
    at = _app(monkeypatch, tmp_path, "generate")  # env points at an empty folder
    assert any("No models" in i.value for i in at.info)
    from dashboard.ui.sidebar import OTHER

    at.sidebar.selectbox(key="lg_source").set_value(OTHER).run()
    at.sidebar.text_input(key="lg_other").input(str(demo)).run()
    _ok(at)
    assert len(_seed_images(at).value) == 16
    assert any(f"2 models in `{demo.name}`" in c.value for c in at.sidebar.caption)  # no server path
    assert at.query_params["folder"] == str(demo)
    # Anything else on the server: one line, the same for a folder, a file and a missing path.
    for path in ("/etc", "/etc/passwd", "/nowhere/at/all", str(demo.parent), "~", "../..", "x" * 300, "a\0b"):
        at.sidebar.text_input(key="lg_other").input(path).run()
        assert not at.exception, path
        assert [w.value for w in at.warning] == ["Folder: That path is outside the folders this server shares."], path
        assert "etc" not in " ".join(c.value for c in at.sidebar.caption)


def test_gallery_reads_real_images_from_a_data_set_path(monkeypatch, demo, tmp_path):
    from PIL import Image

    data = tmp_path / "photos"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)).save(data / f"ISIC_{i:07d}.png")
    monkeypatch.setenv("LESIONGAN_CACHE", str(tmp_path / "cache"))
    # A data set path outside the shared folders: one line, whether it exists or not.
    at = _app(monkeypatch, demo, "gallery")
    for path in (str(data), "/etc", str(tmp_path / "nowhere")):
        at.text_input(key="ga_data").input(path).run()
        _ok(at)
        assert [i.value for i in at.info] == ["Data set path: That path is outside the folders this server shares."]
        assert not [i for i in at.image if i.proto.imgs[0].alt.startswith("Real")]
    monkeypatch.setenv("LESIONGAN_ROOTS", str(tmp_path))  # now the server shares it (as --data would)
    at = _app(monkeypatch, demo, "gallery")
    at.text_input(key="ga_data").input(str(data)).run()
    _ok(at)
    real = [i for i in at.image if i.proto.imgs[0].alt.startswith("Real")]
    assert len(real) == 6  # six real images (the data set's), one per row beside the models' samples
    assert any(f"from `{tmp_path.name}/photos`" in m.value for m in at.markdown)  # as shared, no server path
    at.text_input(key="ga_data").input(str(tmp_path / "nowhere")).run()
    assert not at.exception and any("Could not read real images" in i.value for i in at.info)


def test_follow_training_sees_new_stats(monkeypatch, demo, tmp_path):
    import shutil

    run = tmp_path / "00001-dcgan-demo-32"
    shutil.copytree(demo / "dcgan-demo", run)
    before = discovery.folder_stamp(run)
    time.sleep(0.01)
    with open(run / "stats.jsonl", "a") as f:
        f.write(json.dumps({"nimg": 99_000, "loss_D": 0.1, "loss_G": 3.0}) + "\n")
    (run / "grids" / "grid-000099000.png").write_bytes((run / "grids" / "grid-000000000.png").read_bytes())
    assert discovery.folder_stamp(run) != before
    (run / "config.json").write_text(json.dumps({"model": "dcgan", "model_cfg": {"resolution": 32}, "format": 1}))
    at = _app(monkeypatch, run, "training")
    assert any(x.label.startswith("Run configuration") for x in at.expander)
    at.sidebar.toggle(key="lg_follow").set_value(True).run()
    _ok(at)
    assert "99k" in [m.value for m in at.metric]  # the appended line is on the page


def test_generate_offers_the_classes_of_a_conditional_model(monkeypatch, tmp_path):
    import torch

    from gan.checkpoint import export_generator
    from gan.config import RunConfig
    from gan.models import get_model

    spec = get_model("dcgan")
    mcfg = spec.Config(resolution=32, ngf=4, ndf=4, z_dim=8, class_names=("melanoma", "nevus"))
    torch.manual_seed(0)
    G = spec.build_generator(mcfg)
    (tmp_path / "cond").mkdir()
    from gan.data import DataConfig

    export_generator({"model": "dcgan", "config": RunConfig(model="dcgan", model_cfg=mcfg, data=DataConfig(size=32)),
                      "G_ema": G.state_dict(), "info": {"nimg": 0}}, tmp_path / "cond" / "generator.pt")
    at = _app(monkeypatch, tmp_path, "generate")
    _ok(at)
    box = at.selectbox(key="gen_class")
    assert box.options[1:] == ["melanoma", "nevus"]
    mix = [c for c in _images_with_seed_captions(at).captions]
    assert all(c.split(" · ")[1] in ("melanoma", "nevus") for c in mix)  # each seed's class shown
    box.set_value("melanoma").run()
    _ok(at)
    mel = _images_with_seed_captions(at).value
    assert any("class melanoma" in m.value for m in at.markdown)
    at.selectbox(key="gen_class").set_value("nevus").run()
    assert set(_images_with_seed_captions(at).value).isdisjoint(mel)  # same seeds, another class


def _images_with_seed_captions(at):
    [img] = [i for i in at.image if i.captions and all(c.startswith("seed ") for c in i.captions)
             and len(i.captions) > 2]
    return img


# ---------------------------------------------------------------------------------------------
# Nearest training neighbours in the dermoscopy encoder's features
# ---------------------------------------------------------------------------------------------


def _feature_pair_captions(at) -> list[str]:
    return [c.value for c in at.caption if c.value.startswith("feature distance")]


def test_evaluation_shows_feature_space_pairs_beside_the_pixel_ones(monkeypatch, demo):
    at = _app(monkeypatch, demo, "evaluation")
    _ok(at)
    text = _texts(at)
    assert "In pixels" in text and "In the dermoscopy encoder's features" in text
    assert "Copy rate derm 0 on 64 samples" in text and "derm1 features (128-d" in text
    assert len(_feature_pair_captions(at)) == 8
    assert sum(len(i.value) == 2 for i in at.image) == 8  # the pixel pairs are still there
    # The page's pairs are each sample's nearest training image by encoder features, closest first:
    # the same as computing them here for seeds 0-127 (the page's default sample count) from fp32 samples.
    bank = realdata.load_real_bank(demo / "dcgan-demo" / "fingerprint.npz")
    enc = realdata.derm_encoder_for(bank)
    G = sampling.load_generator(demo / "dcgan-demo" / "generator.pt", sampling.EXACT)
    fakes = sampling.generate_images(G, range(128))
    want = realdata.closest_feature_pairs(fakes, realdata.derm_features(fakes, enc), bank, 8)
    assert [w.distance for w in want] == sorted(w.distance for w in want)
    single = [i for i in at.image if len(i.value) == 1 and i.captions]
    shown = [(single[j].captions[0], single[j + 1].captions[0]) for j in range(0, len(single), 2)]
    assert shown == [(f"seed {w.fake_index}", w.real_name) for w in want]
    assert _feature_pair_captions(at)[0].startswith(f"feature distance {want[0].distance:.3f}")
    at.slider(key="ev_pairs").set_value(4).run()
    _ok(at)
    assert len(_feature_pair_captions(at)) == 4


def test_evaluation_says_why_feature_pairs_are_missing(monkeypatch, demo, tmp_path):
    import shutil

    from eval.fingerprint import load_fingerprint, save_fingerprint

    folder = tmp_path / "models"
    shutil.copytree(demo, folder)
    path = folder / "dcgan-demo" / "fingerprint.npz"
    fp = load_fingerprint(path)
    fp.meta["derm"] = dict(fp.meta["derm"], encoder_sha256="0" * 64)  # made by another encoder
    save_fingerprint(fp, path)
    at = _app(monkeypatch, folder, "evaluation")
    _ok(at)
    [msg] = [i.value for i in at.info if "no feature-space neighbours" in i.value]
    assert "sha256 000000000000" in msg and "python -m eval.fingerprint" in msg
    assert not _feature_pair_captions(at) and sum(len(i.value) == 2 for i in at.image) == 8  # pixels go on
    fp.derm_features, fp.derm_mu, fp.derm_sigma, fp.meta["derm"] = None, None, None, None  # made without it
    save_fingerprint(fp, path)
    at = _app(monkeypatch, folder, "evaluation")
    _ok(at)
    assert any("holds no dermoscopy-encoder features" in i.value for i in at.info)


def test_why_there_is_no_encoder_is_one_plain_sentence_without_a_path(monkeypatch, demo, tmp_path):
    bank = realdata.load_real_bank(demo / "dcgan-demo" / "fingerprint.npz")
    missing = tmp_path / "private" / "encoder.pt"
    monkeypatch.setenv("LESIONGAN_DERM_ENCODER", str(missing))
    broken = tmp_path / "private" / "broken.pt"
    broken.parent.mkdir()
    broken.write_bytes(b"not a torch file")
    messages = []
    for path in (missing, broken):
        monkeypatch.setenv("LESIONGAN_DERM_ENCODER", str(path))
        with pytest.raises(ValueError) as e:
            realdata.derm_encoder_for(bank)
        messages.append(str(e.value))
    assert messages == ["this server has no dermoscopy encoder file where $LESIONGAN_DERM_ENCODER points",
                        "the dermoscopy encoder file on this server could not be read"]


def test_overview_shows_the_derm_columns(monkeypatch, demo):
    at = _app(monkeypatch, demo)
    _ok(at)
    df = _scores(at, "FD derm")
    for label in ("FD derm", "KID derm", "Precision derm", "Recall derm", "Density derm", "Coverage derm",
                  "Copy rate derm"):
        assert label in df.value.columns, label
    assert df.value.loc["pggan-demo", "FD derm"] == pytest.approx(33.8)
    assert df.value.loc["dcgan-demo", "Copy rate derm"] == 0
    assert "Sees: lesion appearance as a lesion-type classifier sees it" in _texts(at)


def test_overview_shows_the_spread_over_sample_seeds(tmp_path, demo):
    import shutil

    folder = tmp_path / "spread"
    shutil.copytree(demo, folder)
    doc = json.loads((folder / "results.json").read_text())
    for r in doc["rows"]:
        r["js_rgb_hist64_sd"] = 0.0012
        r["seeds"] = [0, 1, 2]
    (folder / "results.json").write_text(json.dumps(doc))
    entries = discovery.discover_models(folder)
    table, _ = comparison.overview_table(entries, {}, {}, results.load_results(folder))
    label = next(m.label for m in results.metrics() if m.key == "js_rgb_hist64")
    html = comparison.styled(table, [label], comparison.best_index(table)).to_html()
    assert "★ 0.0870 ± 0.0012" in html and "0.112 ± 0.0012" in html  # 3 significant digits, sd to 2
    assert comparison.fmt_mean_sd(3.5335, 0.29) == "3.53 ± 0.29" and comparison.fmt_number(150016) == "150016"
    assert comparison.fmt_number(None) == "—" and comparison.fmt_number(0.00012345) == "0.000123"


def test_a_model_card_renders_without_remote_images_html_strikethrough_or_server_paths(monkeypatch, demo, tmp_path):
    import shutil

    folder = tmp_path / "cards"
    shutil.copytree(demo, folder)
    RunDir(folder / "dcgan-demo").write_model_card(
        "# dcgan-demo\n\n![samples](https://example.org/track.png) and ![ref][r]\n\n[r]: https://example.org/x.png\n"
        "<img src=\"https://example.org/y.png\"> Trained in ~/gan-runs/a, then ~/gan-runs/b; weights cached "
        f"in /srv/cache/x.pth and {folder}/dcgan-demo/generator.pt.\n\n```\n~/kept/in/code\n```\n"
        "Colour (the bar: JSD <= 0.01, Wasserstein <= 0.02): JSD 0.0084 -> 0.0016<!-- hidden --> <b>bold</b>.\n\n"
        "- Sampled from G_ema (half-life 10.0 kimg); scored during training (fd_derm, precision_derm; "
        "`metrics.jsonl`); retrain: `python -m gan.train --kimg 1000`.\n"
        "- **JSD colour** (`js_rgb_hist64`): colours; **Diversity MS-SSIM** (`diversity_msssim_fake / "
        "diversity_msssim_real`): diversity.\n"
        "- Every run: [docs/experiments.md](../../docs/experiments.md); the paper: [Karras](https://arxiv.org/abs/1710.10196).\n")
    at = _app(monkeypatch, folder)
    _ok(at)
    [card] = [m.value for m in at.markdown if "[image: samples]" in m.value]
    assert "https://example.org/track.png" not in card and "<img" not in card and "[image: ref]" in card
    assert "/srv/" not in card and str(folder) not in card and "~/gan-runs" not in card
    assert "then b; weights cached in x.pth and cards/dcgan-demo/generator.pt." in card  # shared paths from their root
    assert "#### dcgan-demo" in card and "~/kept/in/code" in card  # headings demoted; code as written
    # A comparison is text, not a tag: the card's numbers stay as they are; tags and comments go.
    assert "(the bar: JSD <= 0.01, Wasserstein <= 0.02): JSD 0.0084 -> 0.0016 bold." in card
    # The code's own words in plain words outside code; commands as written.
    assert ("Sampled from the generator's moving average (half-life 10.0 k images); scored during training (FD derm, "
            "Precision derm; the run's metrics log); retrain: `python -m gan.train --kimg 1000`.") in card
    assert "**JSD colour**: colours; **Diversity MS-SSIM**: diversity." in card
    assert "Every run: docs/experiments.md; the paper: [Karras](https://arxiv.org/abs/1710.10196)." in card
