"""Tests of mnist_kernels.data: IDX I/O, the search order, downloads, the not-found error, synthetic."""

from __future__ import annotations

import dataclasses
import gzip
import http.server
import socket
import threading
from pathlib import Path

import numpy as np
import pytest

from mnist_kernels import data
from mnist_kernels.data import (
    FILES,
    DatasetNotFoundError,
    load_dataset,
    locate,
    read_idx,
    write_idx,
)
from tests.helpers import fake_split, sha256_of, write_fake_dataset

REAL_DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No real cache, env dir, proxy, Debian dir or internet mirror; returns the cache root."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv(data.ENV_VAR, raising=False)
    for var in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(var, raising=False)
        monkeypatch.delenv(var.upper(), raising=False)
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST_DIR", tmp_path / "no-debian")
    closed = _closed_port_url()
    for name, spec in list(data.DATASETS.items()):
        monkeypatch.setitem(data.DATASETS, name, dataclasses.replace(spec, mirrors=(closed,)))
    return tmp_path / "xdg-cache"


def _pin(monkeypatch: pytest.MonkeyPatch, name: str, files: dict[str, Path]) -> None:
    """Pin ``name``'s sums to those of ``files`` (the override mechanism of DATASETS)."""
    sums = {f: sha256_of(files[f]) for f in FILES}
    spec = dataclasses.replace(data.DATASETS[name], sha256=sums)
    monkeypatch.setitem(data.DATASETS, name, spec)


# --------------------------------------------------------------------------------------------
# IDX files


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
@pytest.mark.parametrize("shape", [(7,), (3, 4, 5)], ids=["1d", "3d"])
@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "int32", "float32", "float64"])
def test_idx_round_trip(tmp_path: Path, gz: bool, shape: tuple[int, ...], dtype: str) -> None:
    rng = np.random.RandomState(0)
    array = (rng.randn(*shape) * 100).astype(dtype)
    path = tmp_path / ("a.idx.gz" if gz else "a.idx")
    write_idx(path, array)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == gz
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype) and back.dtype.isnative
    assert back.shape == shape and back.flags.writeable
    np.testing.assert_array_equal(back, array)


def test_read_idx_detects_gzip_by_magic_not_by_name(tmp_path: Path) -> None:
    array = np.arange(6, dtype=np.int32).reshape(2, 3)
    write_idx(tmp_path / "zipped.gz", array)
    write_idx(tmp_path / "plain", array)
    (tmp_path / "zipped.gz").rename(tmp_path / "zipped-without-suffix")
    (tmp_path / "plain").rename(tmp_path / "plain.gz")
    np.testing.assert_array_equal(read_idx(tmp_path / "zipped-without-suffix"), array)
    np.testing.assert_array_equal(read_idx(tmp_path / "plain.gz"), array)


def test_idx_header_is_big_endian(tmp_path: Path) -> None:
    write_idx(tmp_path / "a", np.array([1, 258], dtype=np.int16))
    raw = (tmp_path / "a").read_bytes()
    assert raw == b"\0\0\x0b\x01" + b"\0\0\0\x02" + b"\x00\x01\x01\x02"


_HEADER_2X3_U8 = b"\0\0\x08\x02" + (2).to_bytes(4, "big") + (3).to_bytes(4, "big")
MALFORMED = {
    "empty": (b"", "truncated header"),
    "short-header": (b"\0\0\x08", "truncated header"),
    "wrong-magic": (b"\x12\x34\x08\x01" + b"\0\0\0\x01" + b"x", "wrong magic 0x1234"),
    "unknown-type": (b"\0\0\x07\x01" + b"\0\0\0\x01" + b"x", "unknown type code 0x07"),
    "zero-dims": (b"\0\0\x08\x00" + b"xyz", "dimension count is 0"),
    "truncated-dims": (b"\0\0\x08\x03" + b"\0\0\0\x02", "truncated header: 3 dimensions"),
    "truncated-payload": (
        _HEADER_2X3_U8 + bytes(4),
        "truncated: header says 2x3 uint8 = 6 bytes of data but the file holds 4",
    ),
    "trailing-bytes": (
        _HEADER_2X3_U8 + bytes(23),
        "trailing bytes: 17 more than the header's 2x3 uint8",
    ),
}


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
@pytest.mark.parametrize("case", MALFORMED)
def test_read_idx_rejects_malformed(tmp_path: Path, case: str, gz: bool) -> None:
    content, problem = MALFORMED[case]
    path = tmp_path / f"{case}-idx3-ubyte"
    path.write_bytes(gzip.compress(content) if gz else content)
    with pytest.raises(ValueError) as info:
        read_idx(path)
    assert str(path) in str(info.value)
    assert problem in str(info.value)


@pytest.mark.parametrize("damage", ["cut-short", "flipped-bytes"])
def test_read_idx_rejects_corrupt_gzip(tmp_path: Path, damage: str) -> None:
    stream = bytearray(gzip.compress(_HEADER_2X3_U8 + bytes(range(6)) * 100))
    if damage == "cut-short":
        stream = stream[: len(stream) // 2]
    else:
        stream[12:20] = b"\xff" * 8
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(bytes(stream))
    with pytest.raises(ValueError, match="corrupt gzip stream") as info:
        read_idx(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("array", [np.zeros(3, bool), np.zeros(3, np.uint16), np.float32(1.0)])
def test_write_idx_rejects_what_idx_cannot_hold(tmp_path: Path, array: np.ndarray) -> None:
    with pytest.raises(ValueError, match="write_idx"):
        write_idx(tmp_path / "a", array)


# --------------------------------------------------------------------------------------------
# Loading from directories


def _labels(one_hot: np.ndarray) -> np.ndarray:
    return one_hot.argmax(axis=1)


@pytest.mark.parametrize("gz", [True, False], ids=["gz", "raw"])
def test_load_dataset_from_data_dir(tmp_path: Path, gz: bool) -> None:
    write_fake_dataset(tmp_path / "d", n_train=50, n_test=20, gz=gz)
    train_x, train_y, test_x, test_y = load_dataset("mnist", tmp_path / "d", download=False)
    assert train_x.shape == (50, 784) and test_x.shape == (20, 784)
    assert train_y.shape == (50, 10) and test_y.shape == (20, 10)
    for a in (train_x, train_y, test_x, test_y):
        assert a.dtype == np.float32
    assert train_x.min() >= 0.0 and train_x.max() <= 1.0
    images, labels = fake_split(50, seed=0)
    np.testing.assert_array_equal(train_x, images.reshape(50, 784) / np.float32(255))
    np.testing.assert_array_equal(train_y.sum(axis=1), 1.0)
    assert set(np.unique(train_y)) == {0.0, 1.0}
    np.testing.assert_array_equal(_labels(train_y), labels)
    np.testing.assert_array_equal(_labels(test_y), fake_split(20, seed=1)[1])
    info = locate("mnist", tmp_path / "d", download=False)
    assert info["kind"] == "data_dir" and info["source"] == str(tmp_path / "d")
    assert info["real"] and not info["verified"]


def test_load_dataset_subsets_and_checks_sizes(tmp_path: Path) -> None:
    write_fake_dataset(tmp_path, n_train=50, n_test=20)
    train_x, _, test_x, _ = load_dataset("mnist", tmp_path, n_train=10, n_test=5)
    assert train_x.shape == (10, 784) and test_x.shape == (5, 784)
    with pytest.raises(ValueError, match="n_train=51: must be between 1 and the 50"):
        load_dataset("mnist", tmp_path, n_train=51)


def test_unknown_dataset_lists_known_names() -> None:
    with pytest.raises(
        ValueError,
        match=r"unknown dataset 'kmnist'; known datasets are 'mnist', 'fashion-mnist', 'synthetic'",
    ):
        load_dataset("kmnist")
    with pytest.raises(ValueError, match="synthetic"):
        locate("kmnist")


def test_env_dir_with_one_subfolder_per_dataset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_fake_dataset(tmp_path / "all" / "mnist", n_train=11)
    write_fake_dataset(tmp_path / "all" / "fashion-mnist", n_train=12)
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path / "all"))
    assert load_dataset("mnist", download=False)[0].shape == (11, 784)
    assert load_dataset("fashion-mnist", download=False)[0].shape == (12, 784)
    info = locate("fashion-mnist", download=False)
    assert info["kind"] == "env" and info["source"] == str(tmp_path / "all" / "fashion-mnist")


@pytest.mark.parametrize(
    ("broken", "problem"),
    [
        ("images-shape", "expected uint8 images shaped (N, 28, 28), got uint8 (50, 28, 27)"),
        ("labels-dtype", "expected uint8 labels shaped (N,), got int32 (50,)"),
        ("label-range", "label 10 is outside 0..9"),
        ("count", "holds 50 images but"),
    ],
)
def test_wrong_contents_are_rejected(tmp_path: Path, broken: str, problem: str) -> None:
    files = write_fake_dataset(tmp_path, n_train=50)
    images, labels = fake_split(50, seed=0)
    replacement = {
        "images-shape": (FILES[0], images[:, :, :27]),
        "labels-dtype": (FILES[1], labels.astype(np.int32)),
        "label-range": (FILES[1], np.where(labels == 3, 10, labels).astype(np.uint8)),
        "count": (FILES[1], labels[:49]),
    }[broken]
    write_idx(files[replacement[0]], replacement[1])
    with pytest.raises(ValueError) as info:
        load_dataset("mnist", tmp_path, download=False)
    assert problem in str(info.value)
    assert str(files[replacement[0]]) in str(info.value)


def test_broken_file_in_complete_location_is_an_error_not_a_fallback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = write_fake_dataset(tmp_path / "user")
    write_fake_dataset(tmp_path / "env")
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path / "env"))
    files[FILES[2]].write_bytes(files[FILES[2]].read_bytes()[:-20])
    with pytest.raises(ValueError, match="corrupt gzip stream"):
        load_dataset("mnist", tmp_path / "user")


def test_flat_dir_holding_the_other_dataset_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = write_fake_dataset(tmp_path / "flat")
    _pin(monkeypatch, "fashion-mnist", files)
    with pytest.raises(ValueError, match="these are Fashion-MNIST's files"):
        locate("mnist", tmp_path / "flat", download=False)


def test_search_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated: Path) -> None:
    """data_dir (11 examples) beats env (12) beats cache (13) beats the Debian dir (14)."""
    write_fake_dataset(tmp_path / "user", n_train=11)
    write_fake_dataset(tmp_path / "env", n_train=12)
    _pin(
        monkeypatch,
        "fashion-mnist",
        write_fake_dataset(isolated / "mnist-kernels" / "fashion-mnist", n_train=13),
    )
    write_fake_dataset(tmp_path / "debian", n_train=14)
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST_DIR", tmp_path / "debian")
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path / "env"))

    def loaded(data_dir: Path | None = None) -> tuple[str, int]:
        n = len(load_dataset("fashion-mnist", data_dir, download=False)[0])
        return locate("fashion-mnist", data_dir, download=False)["kind"], n

    assert loaded(tmp_path / "user") == ("data_dir", 11)
    assert loaded() == ("env", 12)
    monkeypatch.delenv(data.ENV_VAR)
    assert loaded() == ("cache", 13)
    assert locate("fashion-mnist", download=False)["verified"]
    (isolated / "mnist-kernels" / "fashion-mnist" / FILES[3]).unlink()
    assert loaded() == ("debian", 14)
    # An incomplete data_dir is skipped, not used.
    (tmp_path / "user" / FILES[0]).unlink()
    assert loaded(tmp_path / "user") == ("debian", 14)


@pytest.mark.dataset
@pytest.mark.skipif(not REAL_DEBIAN_DIR.is_dir(), reason="apt package dataset-fashion-mnist absent")
def test_real_fashion_mnist_from_debian_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST_DIR", REAL_DEBIAN_DIR)
    info = locate("fashion-mnist", download=False)
    assert info["kind"] == "debian" and info["verified"]
    train_x, train_y, test_x, test_y = load_dataset("fashion-mnist", download=False)
    assert train_x.shape == (60000, 784) and test_x.shape == (10000, 784)
    assert train_y.shape == (60000, 10) and test_y.shape == (10000, 10)
    assert train_x.dtype == np.float32 and train_x.min() >= 0.0 and train_x.max() <= 1.0
    np.testing.assert_array_equal(train_y.sum(axis=0), np.full(10, 6000.0))
    np.testing.assert_array_equal(test_y.sum(axis=0), np.full(10, 1000.0))


# --------------------------------------------------------------------------------------------
# Downloads, against a local HTTP server


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.routes[path] = (body, declared_length)``; 404 for anything else."""

    def do_GET(self) -> None:
        self.server.hits.append(self.path)  # type: ignore[attr-defined]
        route = self.server.routes.get(self.path)  # type: ignore[attr-defined]
        if route is None:
            self.send_error(404)
            return
        body, declared = route
        self.send_response(200)
        self.send_header("Content-Length", str(declared))
        self.end_headers()
        self.wfile.write(body)  # then HTTP/1.0 closes the connection

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.routes, srv.hits = {}, []  # type: ignore[attr-defined]
    srv.url = f"http://127.0.0.1:{srv.server_port}"  # type: ignore[attr-defined]
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(timeout=5)


def _serve(srv, prefix: str, files: dict[str, Path], cut: str | None = None) -> str:
    """Route ``files`` under ``/prefix/``; ``cut`` names one file sent half, with a long length."""
    for name, path in files.items():
        body = path.read_bytes()
        if name == cut:
            srv.routes[f"/{prefix}/{name}"] = (body[: len(body) // 2], len(body))
        else:
            srv.routes[f"/{prefix}/{name}"] = (body, len(body))
    return f"{srv.url}/{prefix}/"


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name not in FILES)


@pytest.fixture
def upstream(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """A fake MNIST, its sums pinned; the files to serve."""
    files = write_fake_dataset(tmp_path / "upstream", n_train=30, n_test=10)
    _pin(monkeypatch, "mnist", files)
    return files


def test_download_into_cache(server, upstream, isolated: Path, capsys) -> None:
    good = _serve(server, "good", upstream)
    info = locate("mnist", mirrors=[good], timeout=5)
    cache = isolated / "mnist-kernels" / "mnist"
    assert info["kind"] == "download" and info["verified"] and info["source"] == str(cache)
    assert sorted(p.name for p in cache.iterdir()) == sorted(FILES)
    for name in FILES:
        assert (cache / name).read_bytes() == upstream[name].read_bytes()
    assert capsys.readouterr().err.count("mnist-kernels: downloading http://127.0.0.1") == 4
    # Now the cache is used, without the network.
    assert locate("mnist", mirrors=[good], timeout=5)["kind"] == "cache"
    assert len(server.hits) == 4
    train_x, train_y, _, _ = load_dataset("mnist", mirrors=[good], timeout=5)
    assert train_x.shape == (30, 784) and train_y.shape == (30, 10)
    assert len(server.hits) == 4


def test_checksum_mismatch_leaves_nothing(server, upstream, isolated: Path, tmp_path: Path) -> None:
    other = write_fake_dataset(tmp_path / "other", n_train=30, n_test=10, seed=99)
    url = _serve(server, "bad", {**upstream, FILES[0]: other[FILES[0]]})
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("mnist", mirrors=[url], timeout=5)
    message = str(info.value)
    assert f"{url}{FILES[0]}: sha256 mismatch" in message
    assert "missing train-images-idx3-ubyte.gz." in message
    cache = isolated / "mnist-kernels" / "mnist"
    assert not (cache / FILES[0]).exists()
    assert _leftovers(cache) == []


def test_cut_off_transfer_leaves_nothing_and_a_later_attempt_succeeds(
    server, upstream, isolated: Path, capsys
) -> None:
    cut = _serve(server, "cut", upstream, cut=FILES[0])
    with pytest.raises(DatasetNotFoundError, match="incomplete transfer: got") as info:
        load_dataset("mnist", mirrors=[cut], timeout=5)
    assert f"{cut}{FILES[0]}" in str(info.value)
    cache = isolated / "mnist-kernels" / "mnist"
    assert not (cache / FILES[0]).exists() and _leftovers(cache) == []
    # A good mirror after the cutting one: only the missing file is fetched, from the second.
    good = _serve(server, "good", upstream)
    server.hits.clear()
    assert locate("mnist", mirrors=[cut, good], timeout=5)["kind"] == "download"
    assert server.hits == [f"/cut/{FILES[0]}", f"/good/{FILES[0]}"]
    assert _leftovers(cache) == []
    assert "incomplete transfer" in capsys.readouterr().err


def test_second_mirror_used_after_404(server, upstream) -> None:
    good = _serve(server, "good", upstream)
    info = locate("mnist", mirrors=[f"{server.url}/gone/", good], timeout=5)
    assert info["kind"] == "download" and info["verified"]
    assert server.hits[:2] == [f"/gone/{FILES[0]}", f"/good/{FILES[0]}"]
    assert len(server.hits) == 8


def test_mirrors_from_datasets_entry(server, upstream, monkeypatch: pytest.MonkeyPatch) -> None:
    good = _serve(server, "good", upstream)
    spec = dataclasses.replace(data.DATASETS["mnist"], mirrors=(good.rstrip("/"),))
    monkeypatch.setitem(data.DATASETS, "mnist", spec)
    assert locate("mnist", timeout=5)["kind"] == "download"


def test_corrupt_cached_file_is_deleted_and_fetched_again(
    server, upstream, isolated: Path, capsys
) -> None:
    good = _serve(server, "good", upstream)
    locate("mnist", mirrors=[good], timeout=5)
    cached = isolated / "mnist-kernels" / "mnist" / FILES[2]
    cached.write_bytes(cached.read_bytes()[:-5] + b"XXXXX")
    server.hits.clear()
    info = locate("mnist", mirrors=[good], timeout=5)
    assert info["kind"] == "download" and info["verified"]
    assert server.hits == [f"/good/{FILES[2]}"]
    assert cached.read_bytes() == upstream[FILES[2]].read_bytes()
    assert f"cache {cached}: sha256" in capsys.readouterr().err
    # Without the network, the corrupt file is still refused (and deleted).
    cached.write_bytes(b"junk")
    with pytest.raises(DatasetNotFoundError, match="is not the pinned"):
        locate("mnist", download=False)
    assert not cached.exists()


def test_no_files_and_no_network_gives_one_clear_error(tmp_path: Path, monkeypatch) -> None:
    write_fake_dataset(tmp_path / "partial")
    (tmp_path / "partial" / FILES[3]).unlink()
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path / "env-dir"))
    closed = _closed_port_url()
    with pytest.raises(FileNotFoundError) as info:
        load_dataset("fashion-mnist", tmp_path / "partial", mirrors=[closed], timeout=2)
    assert isinstance(info.value, DatasetNotFoundError)
    message = str(info.value)
    assert "Fashion-MNIST not found: missing " + ", ".join(FILES) + "." in message
    cache = tmp_path / "xdg-cache" / "mnist-kernels" / "fashion-mnist"
    for place in [
        f"data_dir {tmp_path / 'partial'}: missing {FILES[3]}",
        f"env {tmp_path / 'env-dir'}: does not exist",
        f"cache {cache}: missing",
        f"debian {tmp_path / 'no-debian'}: does not exist",
        f"download {closed}{FILES[0]}: <urlopen error",
        f"download {closed}{FILES[3]}: <urlopen error",
        "apt-get install dataset-fashion-mnist",
        f"set {data.ENV_VAR}=/path/to/dir",
        f"copy the four .gz files into {cache}",
        "pass --data-dir",
    ]:
        assert place in message, place
    assert not cache.exists() or _leftovers(cache) == []


def test_download_false_never_touches_the_network(server, upstream) -> None:
    good = _serve(server, "good", upstream)
    with pytest.raises(DatasetNotFoundError, match=r"download: disabled \(download=False\)"):
        load_dataset("mnist", mirrors=[good], download=False)
    assert server.hits == []


# --------------------------------------------------------------------------------------------
# Synthetic data and descriptions


def test_synthetic_shapes_and_determinism() -> None:
    a = load_dataset("synthetic", n_train=300, n_test=100, seed=3)
    b = load_dataset("synthetic", n_train=300, n_test=100, seed=3)
    c = load_dataset("synthetic", n_train=300, n_test=100, seed=4)
    assert [x.shape for x in a] == [(300, 784), (300, 10), (100, 784), (100, 10)]
    assert all(x.dtype == np.float32 for x in a)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], c[0])
    assert a[0].min() >= 0.0 and a[0].max() <= 1.0
    np.testing.assert_array_equal(np.rint(a[0] * 255) / np.float32(255), a[0])  # uint8 levels
    np.testing.assert_array_equal(a[1].sum(axis=1), 1.0)
    # The test split does not depend on the training split's size.
    d = load_dataset("synthetic", n_train=50, n_test=100, seed=3)
    np.testing.assert_array_equal(d[2], a[2])
    with pytest.raises(ValueError, match="n_test=0"):
        load_dataset("synthetic", n_test=0)


def test_stored_form_gives_the_files_bytes_back_exactly() -> None:
    """load_dataset's float32 arrays back to the stored uint8 pixels and class labels, bit for
    bit (the fused epoch keeps that form on the device); arrays that are not pixels / 255 or
    not one-hot are refused rather than rounded."""
    from mnist_kernels.data import pixels_to_float, stored_form

    images, labels, _, _ = load_dataset("synthetic", n_train=500, n_test=1, seed=5)
    pixels, classes = stored_form(images, labels)
    assert pixels.dtype == classes.dtype == np.uint8
    assert pixels.shape == (500, 784) and classes.shape == (500,)
    np.testing.assert_array_equal(pixels_to_float(pixels), images)
    np.testing.assert_array_equal(np.eye(10, dtype=np.float32)[classes], labels)
    all_levels = np.arange(256, dtype=np.uint8)[None].repeat(2, 0)
    back, _ = stored_form(pixels_to_float(all_levels), labels[:2])
    np.testing.assert_array_equal(back, all_levels)  # every level survives the round trip
    with pytest.raises(ValueError, match="not uint8 pixels divided by 255"):
        stored_form(images + np.float32(1e-3), labels)
    with pytest.raises(ValueError, match="outside"):
        stored_form(images * 2, labels)
    with pytest.raises(ValueError, match="not one-hot"):
        stored_form(images, labels * 0.5)


def test_synthetic_is_learnable_by_a_linear_model() -> None:

    train_x, train_y, test_x, test_y = load_dataset("synthetic", n_train=2000, n_test=500)
    design = np.c_[train_x, np.ones(len(train_x), np.float32)]
    weights = np.linalg.lstsq(design, train_y, rcond=None)[0]
    predicted = np.c_[test_x, np.ones(len(test_x), np.float32)] @ weights
    assert (predicted.argmax(axis=1) == _labels(test_y)).mean() > 0.95
    assert train_y.sum(axis=0).min() >= 150  # every class is present


def test_describe_and_locate_synthetic() -> None:
    info = data.describe("synthetic")
    assert info["name"] == "synthetic" and info["real"] is False
    assert info["n_train"] == 60000 and info["n_test"] == 10000 and "prototype" in info["source"]
    assert locate("synthetic")["kind"] == "synthetic"
    mnist = data.describe("mnist")
    assert mnist["real"] and mnist["files"] == list(FILES) and len(mnist["sha256"]) == 4
    with pytest.raises(ValueError, match="known datasets"):
        data.describe("cifar")


def test_pinned_sums_are_well_formed() -> None:
    for spec in data.DATASETS.values():
        assert sorted(spec.sha256) == sorted(FILES)
        assert all(len(s) == 64 and int(s, 16) >= 0 for s in spec.sha256.values())
