"""Result key names. A name says what changes its number: colour space and bin count for the
histogram JSD, the feature network and its input size for FID/KID, the pyramid level for SWD.
Per-channel keys append ``_r``/``_g``/``_b`` (or ``_h``/``_s``/``_v``) to the mean's key."""
from __future__ import annotations

DEFAULT_BINS = 64


def key_js(space: str = "rgb", bins: int = DEFAULT_BINS) -> str:
    """Key of the mean colour-histogram JSD, e.g. ``js_rgb_hist64``."""
    return f"js_{space}_hist{bins}"


def key_wasserstein(space: str = "rgb") -> str:
    """Key of the mean per-channel pixel Wasserstein distance, e.g. ``wasserstein_rgb``."""
    return f"wasserstein_{space}"


def key_swd(level: int | str) -> str:
    """Key of PGGAN's sliced Wasserstein distance (x1e3) at one pyramid level (px) or ``"avg"``."""
    return f"swd_pggan_x1e3_{level}"


CHANNELS = {"rgb": ("r", "g", "b"), "hsv": ("h", "s", "v")}

# Colour statistics
KEY_JS_RGB = key_js("rgb")                       # "js_rgb_hist64": mean over R, G, B; 0 same, 1 disjoint
KEY_JS_HSV = key_js("hsv")                       # "js_hsv_hist64"
KEY_WASSERSTEIN_RGB = key_wasserstein("rgb")     # "wasserstein_rgb": mean over R, G, B, intensities in [0, 1]
KEY_WASSERSTEIN_HSV = key_wasserstein("hsv")
# Inception (torch-fidelity's Inception-v3, 2048-d pool features, images resized to 299 px inside it)
KEY_FID = "fid_inception_299"
KEY_KID = "kid_inception_299"                    # mean over subsets
KEY_KID_STD = "kid_inception_299_std"
# Diversity (mean pairwise MS-SSIM; higher = less diverse)
KEY_MSSSIM_FAKE = "diversity_msssim_fake"
KEY_MSSSIM_REAL = "diversity_msssim_real"
KEY_MSSSIM_GAP = "diversity_msssim_gap"          # fake - real; > 0 warns of mode collapse
# Memorization (nearest training image in pixel space)
KEY_COPY_RATE = "memorization_copy_rate"
KEY_NN_FAKE_MEDIAN = "memorization_nn_fake_median"
KEY_NN_HELDOUT_MEDIAN = "memorization_nn_heldout_median"
KEY_NN_THRESHOLD = "memorization_nn_threshold_p1"
# Sliced Wasserstein distance of Laplacian-pyramid patches (Karras et al. 2018)
KEY_SWD_AVG = key_swd("avg")

# The dermoscopy encoder's feature space (eval.encoder, metric version "derm1"; 128-d features of
# 64 px images): torch-fidelity's Fréchet distance, KID and precision/recall, prdc's density/coverage
KEY_FD_DERM = "fd_derm"
KEY_KID_DERM = "kid_derm"                        # mean over subsets
KEY_KID_DERM_STD = "kid_derm_std"
KEY_PRECISION_DERM = "precision_derm"            # Kynkäänniemi et al. 2019, k = 3
KEY_RECALL_DERM = "recall_derm"
KEY_DENSITY_DERM = "density_derm"                # Naeem et al. 2020, k = 5
KEY_COVERAGE_DERM = "coverage_derm"
# Memorization in the encoder's feature space (Euclidean distance between features)
KEY_COPY_RATE_DERM = "copy_rate_derm"
KEY_NN_FAKE_MEDIAN_DERM = "memorization_derm_nn_fake_median"
KEY_NN_HELDOUT_MEDIAN_DERM = "memorization_derm_nn_heldout_median"
KEY_NN_THRESHOLD_DERM = "memorization_derm_nn_threshold_p1"

# Classifier two-sample tests (Lopez-Paz & Oquab 2017): held-out accuracy of a classifier told to pick the
# generated images out of a mix with as many held-out real ones (0.5: it cannot; 1: always), its AUC and
# the accuracy's 95% interval, beside the real-vs-real floor (the same test with real reference images in
# place of the generated ones: what "cannot tell" reads at this n). Form "derm": an MLP on the encoder's
# 128-d features; "pixel": a small CNN on 64 px pixels.
C2ST_PARTS = ("auc", "lo95", "hi95")


def key_c2st(form: str, part: str | None = None, floor: bool = False) -> str:
    """Key of a C2ST number: ``c2st_derm`` (accuracy), ``c2st_derm_auc``, ``c2st_derm_lo95`` / ``_hi95``
    (95% interval of the accuracy); ``floor=True``: the real-vs-real floor's, e.g. ``c2st_pixel_floor_lo95``."""
    return "_".join(["c2st", form, *(["floor"] if floor else []), *([part] if part else [])])


KEY_C2ST_DERM = key_c2st("derm")                 # "c2st_derm"
KEY_C2ST_DERM_FLOOR = key_c2st("derm", floor=True)
KEY_C2ST_PIXEL = key_c2st("pixel")               # "c2st_pixel"
KEY_C2ST_PIXEL_FLOOR = key_c2st("pixel", floor=True)

# Provenance keys every result carries
KEY_N_REAL = "n_real"
KEY_N_FAKE = "n_fake"
KEY_RESOLUTION = "resolution"
KEY_RESIZE = "resize"
KEY_SEED = "seed"
KEY_SECONDS = "seconds"
KEY_UNAVAILABLE = "unavailable"                  # {metric name: one-line reason}
