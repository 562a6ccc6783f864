"""FID and KID end to end through torch-fidelity's Inception-v3 on stand-in weights (a randomly
initialised network of its architecture), and the weights' download: forbidden offline, bounded in
time, a reason when it fails. Tests never touch the network (torch hub's download is replaced). Images
are few and small: Inception runs at 299 px, about 5 images/s on a 2-core CPU."""
from __future__ import annotations

import contextlib
import io
import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

from eval import KEY_FID, KEY_JS_RGB, KEY_KID, KEY_KID_STD, evaluate, make_fingerprint, save_fingerprint
from eval import sources
from eval.metrics import inception
from eval.run import main as run_main
from eval.testing import lesion_images, make_standin_inception_weights

N = 10  # KID's subset size adapts down to this; FID needs at least 10


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return make_standin_inception_weights(tmp_path_factory.mktemp("w") / "standin.pth", seed=0)


@pytest.fixture(scope="module")
def x():
    return lesion_images(N, 32, 0)


@pytest.fixture(scope="module")
def real(x):
    # Resolved once, so that with `cache` its Inception features are computed once for every test here.
    return sources.resolve(x, "real", size=32)


@pytest.fixture(scope="module")
def cache():
    """The sets' features, shared by the evaluate() calls of this file."""
    return sources.FeatureCache()


@pytest.fixture(scope="module")
def no_hub(tmp_path_factory):
    old = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path_factory.mktemp("hub")))
    yield
    torch.hub.set_dir(old)


def _noisy(x, sigma, seed=1):
    return np.clip(x + np.random.default_rng(seed).normal(0, sigma, x.shape), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def noisy(x):
    # Distorted copies of x, resolved once so that each set's features are computed once.
    return {sigma: sources.resolve(_noisy(x, sigma), "fake", size=32) for sigma in (10, 60)}


@pytest.fixture(scope="module")
def scored(weights, real, noisy, cache):
    # Each FID costs torch-fidelity's eigenvalues of a 2048x2048 product (5-15 s on 2 cores): score
    # each pair once for the whole file, and only the two distorted pairs outside the slow tier (the
    # same set has the same cached features, whose FID of 0 test_eval_derm checks on fid_from_features).
    out = {0: evaluate(real, real, ["kid"], inception_weights=weights, cache=cache)}
    for sigma, fake in noisy.items():
        out[sigma] = evaluate(real, fake, ["fid", "kid"], inception_weights=weights, cache=cache)
    assert real.features == {} and all(f.features == {} for f in noisy.values())  # inputs left as they were
    return out


def test_fid_kid_zero_for_same_images_and_grow_with_distortion(weights, scored):
    assert all(r["unavailable"] == {} for r in scored.values())
    fids = [scored[s][KEY_FID] for s in (10, 60)]
    kids = [scored[s][KEY_KID] for s in (0, 10, 60)]
    assert 1e-3 < fids[0] < fids[1]
    # KID's unbiased estimate of identical sets is ~0 (slightly negative is valid).
    assert kids[0] < kids[1] < kids[2] and kids[2] > 10 * abs(kids[0])
    r = scored[60]
    assert r["config"]["kid"]["subset_size"] == N  # adapted from torch-fidelity's 1000
    assert r["config"]["fid"]["weights_sha256"] == inception.weights_id(weights)
    assert np.isfinite(r[KEY_KID_STD]) and r["n_fake"] == N and r["resolution"] == 32


@pytest.fixture(scope="module")
def fp_path(weights, x, tmp_path_factory):
    fp = make_fingerprint(x, size=32, inception_weights=weights)
    assert fp.inception_pool3.dtype == np.float16 and fp.inception_pool3.shape == (N, 2048)
    path = tmp_path_factory.mktemp("fp") / "fp.npz"
    save_fingerprint(fp, path)
    return path


def test_fingerprint_with_inception_features_gives_the_same_kid(weights, real, noisy, scored, fp_path, cache,
                                                                tmp_path):
    stored = np.load(fp_path, allow_pickle=False)["inception_pool3"].astype(np.float32)
    live = cache.get(real, f"inception_pool3:{inception.weights_id(weights)}")
    np.testing.assert_allclose(stored, live, rtol=1e-3, atol=1e-4)  # float16 storage
    b = evaluate(str(fp_path), noisy[60], ["kid"], inception_weights=weights)
    assert b[KEY_KID] == pytest.approx(scored[60][KEY_KID], rel=1e-2)
    # Features made with other weights are not silently mixed with these.
    other = make_standin_inception_weights(tmp_path / "other.pth", seed=1)
    c = evaluate(str(fp_path), noisy[60], ["fid", "kid"], inception_weights=other)
    assert "other weights" in c["unavailable"]["fid"] and "other weights" in c["unavailable"]["kid"]


@pytest.mark.slow
def test_fingerprint_with_inception_features_gives_the_same_fid(weights, noisy, scored, fp_path):
    b = evaluate(str(fp_path), noisy[60], ["fid"], inception_weights=weights)
    assert b[KEY_FID] == pytest.approx(scored[60][KEY_FID], rel=1e-2)


@pytest.fixture
def no_download(monkeypatch):
    """torch hub's download fails the test if called; past download failures are forgotten."""
    monkeypatch.setattr(inception, "_failed", {})
    monkeypatch.setattr(torch.hub, "download_url_to_file",
                        lambda *a, **k: pytest.fail("a download was attempted offline"))


def test_offline_forbids_the_download_and_the_run_goes_on(no_hub, no_download, x, monkeypatch, tmp_path):
    r = evaluate(x, x[::-1].copy(), ["hist_js", "fid", "kid"], offline=True)
    assert set(r["unavailable"]) == {"fid", "kid"} and r["unavailable"]["fid"] == r["unavailable"]["kid"]
    assert r["unavailable"]["fid"].startswith("no Inception weights") and "downloads are off" in r["unavailable"]["fid"]
    assert KEY_FID not in r and KEY_KID not in r and r[KEY_JS_RGB] == 0.0
    monkeypatch.setenv("LESIONGAN_OFFLINE", "1")  # the environment says the same
    assert "downloads are off" in evaluate(x, x, ["kid"])["unavailable"]["kid"]
    monkeypatch.delenv("LESIONGAN_OFFLINE")
    (tmp_path / "imgs").mkdir()
    for i, im in enumerate(x):
        Image.fromarray(im).save(tmp_path / "imgs" / f"{i}.png")
    with contextlib.redirect_stdout(io.StringIO()) as out:  # and so does eval.run --offline
        rc = run_main(["--real", str(tmp_path / "imgs"), "--fake", str(tmp_path / "imgs"), "--size", "32", "--offline",
                       "--quiet", "--json", "--metrics", "hist_js", "fid", "kid"])
    doc = json.loads(out.getvalue())
    assert rc == 0 and "downloads are off" in doc["unavailable"]["fid"] and doc[KEY_JS_RGB] == 0.0


def test_a_failed_download_is_a_reason_and_is_tried_once(no_hub, x, monkeypatch):
    monkeypatch.setattr(inception, "_failed", {})
    calls = []

    def dead_network(url, dst, *a, **k):
        calls.append(url)
        raise OSError("Network is unreachable")

    monkeypatch.setattr(torch.hub, "download_url_to_file", dead_network)
    r = evaluate(x, x[::-1].copy(), ["hist_js", "fid", "kid"], offline=False)
    assert calls == [inception.WEIGHTS_URL]  # FID tried; KID read the failure
    why = r["unavailable"]["fid"]
    assert why == r["unavailable"]["kid"] and why.startswith("no Inception weights")
    assert why == ("no Inception weights: none in torch-fidelity's cache, and they could not be downloaded (offline: "
                   "the server could not be reached); pass --inception-weights PATH") and r[KEY_JS_RGB] == 0.0


def test_a_failed_downloads_reason_is_plain_words():
    import errno
    import urllib.error

    gone = urllib.error.HTTPError(inception.WEIGHTS_URL, 404, "Not Found", {}, None)
    assert inception.download_failure(gone) == "the server answered HTTP 404"
    dns = urllib.error.URLError(OSError(-2, "Name or service not known"))
    assert inception.download_failure(dns) == "offline: the server could not be reached"
    full = OSError(errno.ENOSPC, "No space left on device", "/somewhere/weights.pth")
    assert inception.download_failure(full) == "torch's cache folder cannot be written: no space left on device"
    assert inception.download_failure(RuntimeError("/x/y: odd")) == "the download failed with RuntimeError"


def test_a_hung_download_runs_into_its_deadline(no_hub, monkeypatch):
    import threading

    monkeypatch.setattr(inception, "_failed", {})
    release = threading.Event()
    monkeypatch.setattr(torch.hub, "download_url_to_file", lambda *a, **k: release.wait(30))
    try:
        with pytest.raises(inception.MetricUnavailable, match="did not finish in 0 s"):
            inception.download_weights(deadline=0.2)
    finally:
        release.set()


def test_a_download_lands_in_torch_fidelitys_cache_and_is_used(no_hub, weights, real, scored, cache, monkeypatch):
    import shutil

    from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3

    assert inception.WEIGHTS_URL == URL_INCEPTION_V3
    monkeypatch.setattr(inception, "_failed", {})
    monkeypatch.setattr(torch.hub, "download_url_to_file", lambda url, dst, *a, **k: shutil.copy(weights, dst))
    target = inception.default_weights_path()
    try:
        r = evaluate(real, real, ["kid"], cache=cache, offline=False)
        assert target.is_file() and r["unavailable"] == {} and r[KEY_KID] == scored[0][KEY_KID]
    finally:
        target.unlink(missing_ok=True)


def test_weights_found_in_torch_fidelitys_cache(no_hub, weights, real, scored, cache):
    from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3

    assert inception.WEIGHTS_FILENAME == os.path.basename(URL_INCEPTION_V3)
    target = inception.default_weights_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(weights.read_bytes())
    try:
        r = evaluate(real, real, ["kid"], cache=cache)  # features cached under the same weights' hash: no new pass
        assert r["unavailable"] == {} and r[KEY_KID] == scored[0][KEY_KID]
    finally:
        target.unlink()


class _NotATensor:
    pass


def test_bad_weights_are_refused(tmp_path, x):
    with pytest.raises(ValueError, match="--inception-weights"):
        evaluate(x, x, ["fid"], inception_weights=tmp_path / "missing.pth")
    torch.save({"conv": _NotATensor()}, tmp_path / "code.pth")  # unpickling it would need a class
    with pytest.raises(ValueError, match="not a plain state_dict"):
        evaluate(x, x, ["fid"], inception_weights=tmp_path / "code.pth")
    torch.save({"fc.weight": torch.zeros(2, 2)}, tmp_path / "small.pth")
    with pytest.raises(ValueError, match="does not fit"):
        evaluate(x, x, ["fid"], inception_weights=tmp_path / "small.pth")


def test_too_few_images_says_so(weights, x):
    r = evaluate(x[:5], x[:5].copy(), ["fid", "kid"], inception_weights=weights)
    assert "FID needs at least 10" in r["unavailable"]["fid"]
    assert "KID needs at least 10" in r["unavailable"]["kid"]
