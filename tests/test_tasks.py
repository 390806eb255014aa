"""Tasks: shapes, label balance, closed-form content, determinism per seed, MNIST reader, errors."""

import gzip
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dendrite_sim.core import registry
from dendrite_sim.core.errors import ScenarioError
from dendrite_sim.io.scenario import load
from dendrite_sim.tasks import balanced_labels, stratified_split
from dendrite_sim.tasks.digits import load_digits_arrays
from dendrite_sim.tasks.gratings import draw_gratings
from dendrite_sim.tasks.mnist import read_idx


def task(name, **params):
    return registry.build("task", {"name": name, **params}, "task")


def rng(seed=0):
    return np.random.default_rng(seed)


def same(d1, d2):
    return all(np.array_equal(getattr(d1, k), getattr(d2, k))
               for k in ("x_train", "y_train", "x_test", "y_test"))


# ------------------------------------------------------------------------------------------ XOR
def test_xor_truth_table_and_encodings():
    d = task("xor", encoding="binary").dataset(rng())
    assert d.x_test.tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]]
    assert d.y_test.tolist() == [0, 1, 1, 0]
    assert d.n_in == 2 and d.n_out == 2 and d.n_classes == 2
    b = task("xor").dataset(rng())                       # bipolar by default
    assert b.x_test.tolist() == [[-1, -1], [-1, 1], [1, -1], [1, 1]]
    assert np.array_equal(b.y_test, (b.x_test[:, 0] != b.x_test[:, 1]).astype(int))


def test_xor_repeats_and_jitter():
    d = task("xor", repeats=50, noise=0.1).dataset(rng(3))
    assert d.x_train.shape == (200, 2) and np.bincount(d.y_train).tolist() == [100, 100]
    jitter = d.x_train - np.tile(d.x_test, (50, 1))
    assert abs(jitter.std() - 0.1) < 0.015 and abs(jitter.mean()) < 0.02
    assert same(d, task("xor", repeats=50, noise=0.1).dataset(rng(3)))
    assert not np.array_equal(d.x_train, task("xor", repeats=50, noise=0.1).dataset(rng(4)).x_train)
    assert d.x_test.shape == (4, 2)                      # the test set stays clean


# ------------------------------------------------------------------------------ teacher–student
def test_linear_teacher_is_exactly_linear_and_recoverable():
    t = task("teacher_student_linear")
    d = t.dataset(rng(1))
    assert d.x_train.shape == (1000, 30) and d.y_train.shape == (1000, 10)
    assert d.x_test.shape == (500, 30) and d.n_classes is None and d.n_out == 10
    assert np.abs(t.T).max() <= 1.0 and t.T.std() == pytest.approx(1 / np.sqrt(3), rel=0.1)
    np.testing.assert_allclose(d.y_test, d.x_test @ t.T.T, rtol=0, atol=1e-12)
    T_hat = np.linalg.lstsq(d.x_train, d.y_train, rcond=None)[0].T   # noise-free: exact recovery
    np.testing.assert_allclose(T_hat, t.T, atol=1e-10)
    assert abs(d.x_train.std() - 1.0) < 0.02 and abs(d.x_train.mean()) < 0.02


def test_teacher_target_noise_has_the_requested_sd():
    t = task("teacher_student_linear", target_noise=0.5, n_train=4000)
    d = t.dataset(rng(2))
    resid = d.y_train - d.x_train @ t.T.T
    assert resid.std() == pytest.approx(0.5, rel=0.03)


def test_nonlinear_teacher_formula_and_nonlinearity():
    t = task("teacher_student_nonlinear", n_train=2000)
    d = t.dataset(rng(0))
    np.testing.assert_allclose(d.y_test, np.tanh(d.x_test @ t.U.T + t.c) @ t.V.T, atol=1e-12)
    assert t.U.shape == (20, 30) and t.V.shape == (10, 20)

    def linear_r2(gain):
        dd = task("teacher_student_nonlinear", n_train=2000, teacher_gain=gain).dataset(rng(0))
        X = np.c_[dd.x_train, np.ones(len(dd.x_train))]
        coef = np.linalg.lstsq(X, dd.y_train, rcond=None)[0]
        r = dd.y_test - np.c_[dd.x_test, np.ones(len(dd.x_test))] @ coef
        return 1 - r.var() / dd.y_test.var()

    # the default gain (2) leaves ≈ 16 % of the variance beyond any linear map; gain 0.5 ≈ 2 %
    assert linear_r2(2.0) < 0.9
    assert linear_r2(0.5) > 0.97


def test_teacher_student_determinism():
    for name in ("teacher_student_linear", "teacher_student_nonlinear"):
        assert same(task(name).dataset(rng(7)), task(name).dataset(rng(7)))
        assert not same(task(name).dataset(rng(7)), task(name).dataset(rng(8)))


# ------------------------------------------------------------------------------------ digits
def test_bundled_digits_equal_scikit_learn():
    from sklearn.datasets import load_digits

    x, y = load_digits_arrays()
    ref = load_digits()
    assert x.shape == (1797, 64) and x.min() == 0.0 and x.max() == 1.0
    np.testing.assert_array_equal(x * 16, ref.data)
    np.testing.assert_array_equal(y, ref.target)


def test_digits_stratified_split_is_a_partition():
    d = task("digits").dataset(rng(0))
    assert d.n_classes == 10 and d.n_in == 64
    x, y = load_digits_arrays()
    counts = np.bincount(y)
    np.testing.assert_array_equal(np.bincount(d.y_test, minlength=10), np.round(0.25 * counts))
    np.testing.assert_array_equal(np.bincount(d.y_train) + np.bincount(d.y_test), counts)
    # train ∪ test is the data set, each image once
    both = np.r_[np.c_[d.x_train, d.y_train], np.c_[d.x_test, d.y_test]]
    full = np.c_[x, y]
    np.testing.assert_array_equal(both[np.lexsort(both.T)], full[np.lexsort(full.T)])
    assert same(d, task("digits").dataset(rng(0)))
    assert not np.array_equal(d.y_test, task("digits").dataset(rng(1)).y_test)
    half = task("digits", test_fraction=0.5).dataset(rng(0))          # ties round to even: 88.5 → 88
    np.testing.assert_array_equal(np.bincount(half.y_test), [89, 91, 88, 92, 90, 91, 90, 90, 87, 90])


def test_split_helpers():
    labels = np.repeat([0, 1, 2], [10, 3, 1])
    tr, te = stratified_split(labels, 0.3, rng(0))
    assert sorted(np.r_[tr, te].tolist()) == list(range(14))
    assert np.bincount(labels[te]).tolist() == [3, 1, 1]     # at least one per class
    assert np.bincount(balanced_labels(7, 3, rng(0))).tolist() == [3, 2, 2]


# ----------------------------------------------------------------------------------- gratings
KW = dict(size=16, orientation_jitter=0.0, spatial_frequency=0.15, frequency_jitter=0.0,
          contrast_min=1.0, contrast_max=1.0, noise=0.0)


def test_grating_orientation_convention():
    # θ = 0°: the luminance varies along columns only; θ = 90°: along rows only
    img0 = draw_gratings(np.zeros(5, int), rng(), orientations=[0.0], **KW).reshape(5, 16, 16)
    assert np.allclose(img0, img0[:, :1, :]) and img0[:, 0, :].std() > 0.5
    img90 = draw_gratings(np.zeros(5, int), rng(), orientations=[90.0], **KW).reshape(5, 16, 16)
    assert np.allclose(img90, img90[:, :, :1])
    assert np.abs(img0).max() <= 1.0


def test_gratings_shape_balance_and_determinism():
    t = task("gratings", n_train=101, n_test=40)
    d = t.dataset(rng(0))
    assert d.x_train.shape == (101, 256) and d.x_test.shape == (40, 256) and d.n_classes == 2
    assert np.bincount(d.y_train).tolist() == [51, 50] and np.bincount(d.y_test).tolist() == [20, 20]
    assert same(d, t.dataset(rng(0))) and not same(d, t.dataset(rng(1)))
    three = task("gratings", orientations=[0.0, 60.0, 120.0], n_train=30, n_test=30).dataset(rng(0))
    assert three.n_classes == 3 and np.bincount(three.y_train).tolist() == [10, 10, 10]


def test_gratings_need_phase_invariant_features():
    """Noise-free gratings: a quadrature-pair energy detector is always right, while every class
    mean image is ≈ 0 (random phase), so a linear template cannot separate the classes."""
    labels = balanced_labels(400, 2, rng(5))
    img = draw_gratings(labels, rng(6), orientations=[45.0, 135.0], **KW)
    assert np.mean(img ** 2) == pytest.approx(0.5, rel=0.05)   # contrast 1: mean sin² = 1/2
    coord = np.arange(16) - 7.5
    v, u = np.meshgrid(coord, coord, indexing="ij")
    energy = []
    for th in np.deg2rad([45.0, 135.0]):
        ph = 2 * np.pi * 0.15 * (np.cos(th) * u + np.sin(th) * v).ravel()
        energy.append((img @ np.sin(ph)) ** 2 + (img @ np.cos(ph)) ** 2)
    assert np.array_equal(np.argmax(energy, axis=0), labels)
    for c in (0, 1):
        assert np.abs(img[labels == c].mean(axis=0)).max() < 0.15


def test_gratings_contrast_order_is_checked():
    with pytest.raises(ScenarioError) as e:
        task("gratings", contrast_min=0.8, contrast_max=0.5)
    assert e.value.key == "task.contrast_max"


# -------------------------------------------------------------------------------------- MNIST
def write_idx(path, arr, code=0x08):
    arr = np.asarray(arr)
    dt = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[code]
    raw = bytes([0, 0, code, arr.ndim]) + np.array(arr.shape, ">u4").tobytes() + arr.astype(dt).tobytes()
    if str(path).endswith(".gz"):
        with gzip.open(path, "wb") as fh:
            fh.write(raw)
    else:
        Path(path).write_bytes(raw)


def tiny_mnist(folder, gz=False, n_train=12, n_test=5, side=4):
    g = rng(42)
    arrays = {"x_train": g.integers(0, 256, (n_train, side, side)), "y_train": g.integers(0, 10, n_train),
              "x_test": g.integers(0, 256, (n_test, side, side)), "y_test": g.integers(0, 10, n_test)}
    arrays["y_train"][:10] = np.arange(10)
    names = {"x_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
             "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte"}
    folder.mkdir(parents=True, exist_ok=True)
    for k, name in names.items():
        write_idx(folder / (name + (".gz" if gz else "")), arrays[k])
    return arrays


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_reads_idx_folder(tmp_path, gz):
    ref = tiny_mnist(tmp_path / "mnist", gz=gz)
    d = task("mnist", path=str(tmp_path / "mnist")).dataset(rng())
    assert d.x_train.shape == (12, 16) and d.x_test.shape == (5, 16) and d.n_classes == 10
    np.testing.assert_array_equal(d.x_train, ref["x_train"].reshape(12, 16) / 255.0)
    np.testing.assert_array_equal(d.y_test, ref["y_test"])
    sub = task("mnist", path=str(tmp_path / "mnist"), n_train=4, n_test=2).dataset(rng(1))
    assert sub.x_train.shape == (4, 16) and sub.y_test.shape == (2,)


def test_mnist_reads_npz_and_kaggle_names(tmp_path):
    ref = tiny_mnist(tmp_path / "a")
    np.savez(tmp_path / "m.npz", **ref)
    d = task("mnist", path=str(tmp_path / "m.npz")).dataset(rng())
    np.testing.assert_array_equal(d.x_test * 255, ref["x_test"].reshape(5, 16))
    for old in (tmp_path / "a").iterdir():                 # train-images.idx3-ubyte spelling
        old.rename(old.with_name(old.name.replace("-idx", ".idx")))
    d2 = task("mnist", path=str(tmp_path / "a")).dataset(rng())
    np.testing.assert_array_equal(d2.y_train, ref["y_train"])


@settings(max_examples=40, deadline=None)
@given(code=st.sampled_from([0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E]),
       shape=st.lists(st.integers(0, 5), min_size=1, max_size=4), seed=st.integers(0, 2**16))
def test_idx_round_trip(tmp_path_factory, code, shape, seed):
    arr = np.random.default_rng(seed).integers(0, 100, shape)
    path = tmp_path_factory.mktemp("idx") / "f.idx"
    write_idx(path, arr, code)
    out = read_idx(path)
    assert out.shape == tuple(shape)
    np.testing.assert_array_equal(out, arr)


def scenario_error(fn):
    with pytest.raises(ScenarioError) as e:
        fn()
    assert e.value.key == "task.path"
    return e.value.expected


def test_mnist_errors_name_the_key(tmp_path):
    assert "does not exist" in scenario_error(lambda: task("mnist", path=str(tmp_path / "nope")))
    with pytest.raises(ScenarioError) as e:
        registry.build("task", {"name": "mnist"}, "task")
    assert e.value.key == "task.path" and "missing" in e.value.expected

    tiny_mnist(tmp_path / "m")
    (tmp_path / "m" / "t10k-labels-idx1-ubyte").unlink()
    msg = scenario_error(lambda: task("mnist", path=str(tmp_path / "m")).dataset(rng()))
    assert "t10k-labels-idx1-ubyte" in msg

    bad = tmp_path / "bad"
    tiny_mnist(bad)
    (bad / "train-images-idx3-ubyte").write_bytes(b"\x50\x4b\x03\x04junk")      # wrong magic
    assert "idx" in scenario_error(lambda: task("mnist", path=str(bad)).dataset(rng()))
    raw = (bad / "t10k-images-idx3-ubyte").read_bytes()
    tiny_mnist(bad)
    (bad / "t10k-images-idx3-ubyte").write_bytes(raw[:-7])                       # truncated
    assert "data bytes" in scenario_error(lambda: task("mnist", path=str(bad)).dataset(rng()))
    tiny_mnist(bad)
    write_idx(bad / "t10k-labels-idx1-ubyte", np.zeros(4, int))                   # 5 images, 4 labels
    assert "y_test" in scenario_error(lambda: task("mnist", path=str(bad)).dataset(rng()))
    (bad / "gz").mkdir()
    (bad / "gz" / "x.gz").write_bytes(b"not gzip")
    assert "could not read" in scenario_error(lambda: read_idx(bad / "gz" / "x.gz"))

    np.savez(tmp_path / "partial.npz", x_train=np.zeros((2, 4)), y_train=np.zeros(2, int))
    assert "x_test" in scenario_error(lambda: task("mnist", path=str(tmp_path / "partial.npz")).dataset(rng()))
    (tmp_path / "text.npz").write_text("hello")
    assert "npz" in scenario_error(lambda: task("mnist", path=str(tmp_path / "text.npz")).dataset(rng()))


def test_mnist_path_error_through_the_scenario_loader(tmp_path):
    data = {"scenario": {"experiment": "train"}, "task": {"name": "mnist", "path": str(tmp_path / "x")},
            "architecture": {"name": "layered"}, "objective": {"name": "cross_entropy"},
            "rule": {"name": "backprop"}, "training": {}}
    with pytest.raises(ScenarioError) as e:
        load(data=data)
    assert e.value.key == "task.path"
