"""MNIST-family datasets: IDX file I/O, finding or downloading the files, and a synthetic stand-in.

:func:`load_dataset` returns ``(train_images, train_labels, test_images, test_labels)``: images
float32 in ``[0, 1]`` shaped ``(N, 784)`` (the uint8 pixels divided by 255), labels one-hot float32
shaped ``(N, 10)``. :func:`locate` says where the files came from, for a benchmark's provenance.

Where ``"mnist"`` and ``"fashion-mnist"`` are looked for, in order (the first location holding all
four :data:`FILES` wins):

1. the ``data_dir`` argument (the command line's ``--data-dir``), kind ``"data_dir"``;
2. the directory named by the ``MNIST_KERNELS_DATA`` environment variable, kind ``"env"``;
3. the per-user cache :func:`cache_dir` (``$XDG_CACHE_HOME/mnist-kernels/<name>``, by default
   ``~/.cache/mnist-kernels/<name>``), kind ``"cache"``;
4. Fashion-MNIST only: Debian's ``dataset-fashion-mnist`` package, :data:`DEBIAN_FASHION_MNIST_DIR`,
   kind ``"debian"``;
5. a download from the dataset's mirrors into the cache (unless ``download=False``), kind
   ``"download"``.

In 1 and 2 the subfolder ``<dir>/<name>/`` is tried before ``<dir>`` itself, so one directory can
hold both datasets; there each file may be gzipped (``X.gz``) or not (``X``). A location holding
only some of the files is skipped (and named in the error if nothing is found), except the cache,
whose missing files are downloaded. Files from 1, 2 and 4 are checked by :func:`read_idx` and the
shape checks; cached files must also match the pinned SHA-256 sums (a mismatching one is deleted
and fetched again). A broken file in a location that holds all four raises ``ValueError`` rather
than silently falling back to another location.

Overrides: :data:`DATASETS` maps each name to a frozen :class:`DatasetSpec`; replace an entry
(``dataclasses.replace(DATASETS["mnist"], mirrors=(...), sha256={...})``) to change the mirrors
and pinned sums process-wide, or pass ``mirrors=[...]`` to one :func:`load_dataset` call.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import sys
import tempfile
import urllib.request
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: The four IDX files of an MNIST-style dataset, in the order :func:`load_dataset` returns them.
FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
ENV_VAR = "MNIST_KERNELS_DATA"
#: Where Debian's ``dataset-fashion-mnist`` package installs the (gzipped) files.
DEBIAN_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
NUM_CLASSES = 10
IMAGE_SHAPE = (28, 28)

# IDX type code -> (name, big-endian numpy dtype).
_IDX_TYPES: dict[int, tuple[str, str]] = {
    0x08: ("uint8", ">u1"),
    0x09: ("int8", ">i1"),
    0x0B: ("int16", ">i2"),
    0x0C: ("int32", ">i4"),
    0x0D: ("float32", ">f4"),
    0x0E: ("float64", ">f8"),
}


@dataclass(frozen=True)
class DatasetSpec:
    """A downloadable dataset: its title, pinned SHA-256 sum per file of :data:`FILES`, mirrors.

    Each mirror is a base URL; a file's URL is the base followed by the file name.
    """

    name: str
    title: str
    sha256: dict[str, str]
    mirrors: tuple[str, ...]
    homepage: str


DATASETS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec(
        name="mnist",
        title="MNIST",
        sha256={
            "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        },
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ),
        homepage="http://yann.lecun.com/exdb/mnist/",
    ),
    "fashion-mnist": DatasetSpec(
        name="fashion-mnist",
        title="Fashion-MNIST",
        sha256={
            "train-images-idx3-ubyte.gz": "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
            "train-labels-idx1-ubyte.gz": "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
            "t10k-images-idx3-ubyte.gz": "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
            "t10k-labels-idx1-ubyte.gz": "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
        },
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        homepage="https://github.com/zalandoresearch/fashion-mnist",
    ),
}
SYNTHETIC = "synthetic"
_SYNTHETIC_SOURCE = (
    "generated: 10 seeded random prototype images (70% shared base) plus Gaussian noise of "
    "sd 0.4, clipped to [0, 1] and quantized to uint8 (numpy.random.RandomState)"
)


class DatasetNotFoundError(FileNotFoundError):
    """No location held the dataset's files and none could be downloaded."""


def _spec(name: str) -> DatasetSpec:
    if name not in DATASETS:
        known = ", ".join(repr(n) for n in [*DATASETS, SYNTHETIC])
        raise ValueError(f"unknown dataset {name!r}; known datasets are {known}")
    return DATASETS[name]


def _shape_str(dims: Sequence[int], type_name: str) -> str:
    return "x".join(str(d) for d in dims) + " " + type_name


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (raw, or gzipped: detected by the ``1f 8b`` magic, not by the name).

    Args:
        path: The file.

    Returns:
        The array, shaped as the header's dimensions, in native byte order (uint8, int8, int16,
        int32, float32 or float64, as the header's type code says).

    Raises:
        ValueError: Naming the file and the problem: a corrupt gzip stream, a wrong magic, an
            unknown type code, no dimensions, a truncated header or payload, or trailing bytes.
    """
    data = Path(path).read_bytes()
    zipped = data[:2] == b"\x1f\x8b"
    if zipped:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as e:
            raise ValueError(
                f"{path}: corrupt gzip stream ({e}); delete it and fetch it again"
            ) from None
    holds = f"{len(data)} bytes" + (" (after gunzip)" if zipped else "")
    if len(data) < 4:
        raise ValueError(
            f"{path}: truncated header: the file holds {holds}, an IDX header needs at least 4"
        )
    if data[:2] != b"\0\0":
        magic = int.from_bytes(data[:2], "big")
        raise ValueError(
            f"{path}: wrong magic 0x{magic:04x} (expected 0x0000 then type and dimension bytes); "
            "this is not an IDX file (an HTML error page saved by a failed download?)"
        )
    code, ndim = data[2], data[3]
    if code not in _IDX_TYPES:
        known = ", ".join(f"0x{c:02X} {n}" for c, (n, _) in _IDX_TYPES.items())
        raise ValueError(f"{path}: unknown type code 0x{code:02X}; IDX knows {known}")
    if ndim == 0:
        raise ValueError(f"{path}: dimension count is 0 in the header; IDX needs at least 1")
    start = 4 + 4 * ndim
    if len(data) < start:
        raise ValueError(
            f"{path}: truncated header: {ndim} dimensions need {start} header bytes but the file "
            f"holds {holds}; delete it and fetch it again"
        )
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    type_name, dtype = _IDX_TYPES[code]
    count = int(np.prod(dims, dtype=object))
    want, got = count * np.dtype(dtype).itemsize, len(data) - start
    if got < want:
        raise ValueError(
            f"{path}: truncated: header says {_shape_str(dims, type_name)} = {want} bytes of data "
            f"but the file holds {got}{' (after gunzip)' if zipped else ''}; "
            "delete it and fetch it again"
        )
    if got > want:
        raise ValueError(
            f"{path}: trailing bytes: {got - want} more than the header's "
            f"{_shape_str(dims, type_name)} ({want} bytes of data); not a well-formed IDX file"
        )
    array = np.frombuffer(data, dtype=dtype, count=count, offset=start).reshape(dims)
    return array.astype(np.dtype(dtype).newbyteorder("="))


def write_idx(path: str | os.PathLike[str], array: np.ndarray) -> None:
    """Write ``array`` as an IDX file, gzipped if ``path`` ends with ``.gz``.

    Args:
        path: The file to write (overwritten).
        array: At least 1-D, of dtype uint8, int8, int16, int32, float32 or float64.

    Raises:
        ValueError: If the dtype has no IDX type code or the array is 0-D.
    """
    array = np.asarray(array)
    codes = {np.dtype(big).newbyteorder("="): code for code, (_, big) in _IDX_TYPES.items()}
    code = codes.get(array.dtype.newbyteorder("="))
    if code is None:
        names = ", ".join(n for n, _ in _IDX_TYPES.values())
        raise ValueError(
            f"write_idx({path}): dtype {array.dtype} has no IDX type code; use {names}"
        )
    if array.ndim == 0 or array.ndim > 255:
        raise ValueError(f"write_idx({path}): IDX needs 1 to 255 dimensions, got {array.ndim}")
    header = bytes([0, 0, code, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    payload = header + array.astype(_IDX_TYPES[code][1]).tobytes()
    if str(path).endswith(".gz"):
        payload = gzip.compress(payload, mtime=0)
    Path(path).write_bytes(payload)


def cache_dir(name: str) -> Path:
    """The per-user cache for dataset ``name``: ``$XDG_CACHE_HOME`` or ``~/.cache``, then
    ``mnist-kernels/<name>``. Downloads go here."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "mnist-kernels" / name


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _scan(directory: Path) -> tuple[dict[str, Path], str]:
    """The files of :data:`FILES` present in ``directory`` (``X.gz`` or ``X``), and a status."""
    if not directory.is_dir():
        return {}, "does not exist"
    found = {}
    for f in FILES:
        for candidate in (directory / f, directory / f.removesuffix(".gz")):
            if candidate.is_file():
                found[f] = candidate
                break
    if not found:
        return found, "holds none of the four files"
    missing = [f for f in FILES if f not in found]
    return found, ("missing " + ", ".join(missing)) if missing else "complete"


def _fetch(url: str, dest: Path, sha256: str, timeout: float) -> None:
    """Stream ``url`` into a temporary file beside ``dest``; check length and sum; rename."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    # Not a ``with``: the file is closed by the ``with tmp`` below but must be renamed after it.
    tmp = tempfile.NamedTemporaryFile(  # noqa: SIM115
        dir=dest.parent, prefix=f".{dest.name}.", suffix=".part", delete=False
    )
    try:
        with tmp, urllib.request.urlopen(url, timeout=timeout) as response:
            declared = response.headers.get("Content-Length")
            h, size = hashlib.sha256(), 0
            while chunk := response.read(1 << 20):
                tmp.write(chunk)
                h.update(chunk)
                size += len(chunk)
            tmp.flush()
            os.fsync(tmp.fileno())
        if declared is not None and size != int(declared):
            raise ValueError(f"incomplete transfer: got {size} of {declared} bytes")
        if h.hexdigest() != sha256:
            raise ValueError(
                f"sha256 mismatch: got {h.hexdigest()}, pinned {sha256} ({size} bytes); "
                "the mirror served different data"
            )
        os.replace(tmp.name, dest)
    except BaseException:
        Path(tmp.name).unlink(missing_ok=True)
        raise


def _download(
    filename: str,
    spec: DatasetSpec,
    mirrors: Sequence[str],
    dest_dir: Path,
    timeout: float,
    looked: list[str],
) -> bool:
    """Fetch ``filename`` into ``dest_dir`` from the first mirror that works; log failures."""
    for base in mirrors:
        url = base if base.endswith("/") else base + "/"
        url += filename
        print(f"mnist-kernels: downloading {url} -> {dest_dir / filename}", file=sys.stderr)
        try:
            _fetch(url, dest_dir / filename, spec.sha256[filename], timeout)
            return True
        except (OSError, ValueError, http.client.HTTPException) as e:
            looked.append(f"download {url}: {e}")
            print(f"mnist-kernels: {url} failed: {e}", file=sys.stderr)
    return False


def _provenance(
    spec: DatasetSpec, kind: str, directory: Path, files: dict[str, Path]
) -> dict[str, Any]:
    sums = {f: _sha256(files[f]) for f in FILES}
    for other in DATASETS.values():
        if other.name != spec.name and any(sums[f] == other.sha256.get(f) for f in FILES):
            raise ValueError(
                f"{directory}: these are {other.title}'s files (their SHA-256 sums match), not "
                f"{spec.title}'s; keep each dataset in its own subfolder <dir>/<name>/"
            )
    return {
        "name": spec.name,
        "real": True,
        "kind": kind,
        "source": str(directory),
        "files": {f: str(files[f]) for f in FILES},
        "sha256": sums,
        "verified": all(sums[f] == spec.sha256[f] for f in FILES),
    }


def _verified_cache(spec: DatasetSpec, cache: Path, looked: list[str]) -> dict[str, Path]:
    """The cached files whose sums match the pinned ones; mismatching ones are deleted."""
    cached = {}
    for f in FILES:
        path = cache / f
        if not path.is_file():
            continue
        if (digest := _sha256(path)) == spec.sha256[f]:
            cached[f] = path
        else:
            path.unlink()
            note = f"cache {path}: sha256 {digest} is not the pinned {spec.sha256[f]}; deleted it"
            print(f"mnist-kernels: {note}", file=sys.stderr)
            looked.append(note)
    return cached


def _not_found(spec: DatasetSpec, missing: list[str], looked: list[str]) -> DatasetNotFoundError:
    remedies = [
        f"set {ENV_VAR}=/path/to/dir holding the four files (or <dir>/{spec.name}/)",
        f"copy the four .gz files into {cache_dir(spec.name)}",
        "pass --data-dir /path/to/dir (load_dataset(..., data_dir=...))",
    ]
    if spec.name == "fashion-mnist":
        remedies.insert(
            0, f"apt-get install dataset-fashion-mnist (installs to {DEBIAN_FASHION_MNIST_DIR})"
        )
    return DatasetNotFoundError(
        f"{spec.title} not found: missing {', '.join(missing)}.\nLooked in:\n"
        + "".join(f"  - {line}\n" for line in looked)
        + "To provide the files, do one of:\n"
        + "".join(f"  - {line}\n" for line in remedies)
        + f"(Or use the {SYNTHETIC!r} dataset, which needs no files.)"
    )


def locate(
    name: str,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    download: bool = True,
    mirrors: Sequence[str] | None = None,
    timeout: float = 30.0,
) -> dict[str, Any]:
    """Find (downloading if needed) the dataset's files, following the module's search order.

    Args:
        name: ``"mnist"``, ``"fashion-mnist"`` or ``"synthetic"``.
        data_dir: A directory to look in first (``<data_dir>/<name>/`` or ``<data_dir>``).
        download: Whether the mirrors may be used when no location holds the files.
        mirrors: Base URLs to download from instead of ``DATASETS[name].mirrors``.
        timeout: Seconds each network operation may block.

    Returns:
        Provenance: ``name``, ``real`` (False for synthetic), ``kind`` (``"data_dir"``, ``"env"``,
        ``"cache"``, ``"debian"``, ``"download"`` or ``"synthetic"``), ``source`` (the directory,
        or how synthetic data is made), ``files`` (file name -> path), ``sha256`` (file name ->
        sum of the file as stored) and ``verified`` (all sums equal the pinned ones).

    Raises:
        DatasetNotFoundError: Listing the missing files, every place looked and the remedies.
        ValueError: Unknown name, or files that belong to another dataset.
    """
    if name == SYNTHETIC:
        return {
            "name": name,
            "real": False,
            "kind": name,
            "source": _SYNTHETIC_SOURCE,
            "files": {},
            "sha256": {},
            "verified": False,
        }
    spec = _spec(name)
    looked: list[str] = []
    user_dirs = [("data_dir", data_dir), ("env", os.environ.get(ENV_VAR) or None)]
    for kind, base in user_dirs:
        if base is None:
            looked.append(f"{kind}: not given" if kind == "data_dir" else f"${ENV_VAR}: not set")
            continue
        for directory in (Path(base) / name, Path(base)):
            found, status = _scan(directory)
            if len(found) == len(FILES):
                return _provenance(spec, kind, directory, found)
            looked.append(f"{kind} {directory}: {status}")
    cache = cache_dir(name)
    cached = _verified_cache(spec, cache, looked)
    if len(cached) == len(FILES):
        return _provenance(spec, "cache", cache, cached)
    missing = [f for f in FILES if f not in cached]
    looked.append(f"cache {cache}: missing {', '.join(missing)}")
    if name == "fashion-mnist":
        found, status = _scan(DEBIAN_FASHION_MNIST_DIR)
        if len(found) == len(FILES):
            return _provenance(spec, "debian", DEBIAN_FASHION_MNIST_DIR, found)
        looked.append(f"debian {DEBIAN_FASHION_MNIST_DIR}: {status}")
    mirrors = spec.mirrors if mirrors is None else tuple(mirrors)
    if not download or not mirrors:
        looked.append("download: " + ("no mirrors" if download else "disabled (download=False)"))
    else:
        fetched = [f for f in missing if _download(f, spec, mirrors, cache, timeout, looked)]
        if len(fetched) == len(missing):
            return _provenance(spec, "download", cache, {f: cache / f for f in FILES})
        missing = [f for f in missing if f not in fetched]
    raise _not_found(spec, missing, looked)


def _read_split(images_path: str, labels_path: str) -> tuple[np.ndarray, np.ndarray]:
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.dtype != np.uint8 or images.shape[1:] != IMAGE_SHAPE or images.ndim != 3:
        raise ValueError(
            f"{images_path}: expected uint8 images shaped (N, 28, 28), got {images.dtype} "
            f"{images.shape}; is this the right file?"
        )
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise ValueError(
            f"{labels_path}: expected uint8 labels shaped (N,), got {labels.dtype} "
            f"{labels.shape}; is this the right file?"
        )
    if labels.size and int(labels.max()) >= NUM_CLASSES:
        raise ValueError(f"{labels_path}: label {int(labels.max())} is outside 0..9")
    if len(images) != len(labels):
        raise ValueError(
            f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} "
            "labels; both files must come from the same dataset and split"
        )
    return images, labels


def _take(n: int | None, total: int, what: str) -> int:
    if n is None:
        return total
    if not 1 <= n <= total:
        raise ValueError(f"{what}={n}: must be between 1 and the {total} examples available")
    return n


def pixels_to_float(pixels: Any) -> Any:
    """uint8 pixels to the model's float32 inputs in ``[0, 1]``: ``pixels / 255`` in float32.

    The one definition of that conversion, for NumPy arrays (:func:`load_dataset`) and JAX
    arrays alike (the fused epoch converts its device-resident uint8 batches with it).
    """
    return pixels.astype(np.float32) / np.float32(255)


def _format(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    flat = pixels_to_float(images.reshape(len(images), -1))
    return flat, np.eye(NUM_CLASSES, dtype=np.float32)[labels]


def stored_form(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The dataset as its files store it, from :func:`load_dataset`'s arrays: uint8 pixels
    ``(N, 784)`` and uint8 class labels ``(N,)`` (a quarter and a fortieth of the bytes).

    Exact: :func:`pixels_to_float` of the pixels gives ``images`` back bit for bit.

    Raises:
      ValueError: ``images`` are not pixels divided by 255, or ``labels`` are not one-hot.
    """
    pixels = np.rint(np.asarray(images, np.float32) * np.float32(255))
    if pixels.min(initial=0) < 0 or pixels.max(initial=0) > 255:
        raise ValueError("images are outside [0, 1]: not pixels divided by 255")
    pixels = pixels.astype(np.uint8)
    if not np.array_equal(pixels_to_float(pixels), images):
        raise ValueError(
            "images are not uint8 pixels divided by 255 (as load_dataset gives them); the "
            "stored form would change them"
        )
    labels = np.asarray(labels)
    classes = np.argmax(labels, axis=-1).astype(np.uint8)
    if labels.ndim != 2 or not np.array_equal(
        np.eye(labels.shape[-1], dtype=labels.dtype)[classes], labels
    ):
        raise ValueError(f"labels of shape {labels.shape} are not one-hot rows")
    return pixels, classes


def _synthetic(
    n_train: int, n_test: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.RandomState(seed)
    # Classes share a common base image (as digits share a centred stroke), so they overlap.
    prototypes = (0.7 * rng.rand(784) + 0.3 * rng.rand(NUM_CLASSES, 784)) ** 2
    # Each split has its own stream, so the test set does not depend on n_train.
    split_seeds = rng.randint(2**31, size=2)

    def split(n: int, split_seed: int) -> tuple[np.ndarray, np.ndarray]:
        stream = np.random.RandomState(split_seed)
        labels = stream.randint(NUM_CLASSES, size=n).astype(np.uint8)
        images = np.empty((n, 784), np.uint8)
        for i in range(0, n, 8192):  # chunks keep the float64 noise small
            chunk = labels[i : i + 8192]
            noisy = prototypes[chunk] + 0.4 * stream.randn(len(chunk), 784)
            images[i : i + 8192] = np.rint(255 * np.clip(noisy, 0.0, 1.0))
        return _format(images, labels)

    return (*split(n_train, split_seeds[0]), *split(n_test, split_seeds[1]))


def load_dataset(
    name: str,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    n_train: int | None = None,
    n_test: int | None = None,
    seed: int = 0,
    download: bool = True,
    mirrors: Sequence[str] | None = None,
    timeout: float = 30.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Load a dataset as ``(train_images, train_labels, test_images, test_labels)``.

    Args:
        name: ``"mnist"``, ``"fashion-mnist"`` or ``"synthetic"``.
        data_dir: A directory to look in first; see the module docstring for the search order.
        n_train: Training examples: the first ``n_train`` of a real set (default all 60000), or
            how many to generate for synthetic (default 60000).
        n_test: Test examples, likewise (default 10000).
        seed: Seed of the synthetic data (ignored for real sets).
        download: Whether the mirrors may be used when no location holds the files.
        mirrors: Base URLs to download from instead of ``DATASETS[name].mirrors``.
        timeout: Seconds each network operation may block.

    Returns:
        Images float32 in [0, 1] shaped ``(N, 784)`` and one-hot labels float32 ``(N, 10)``,
        for the training split then the test split.

    Raises:
        DatasetNotFoundError: No location held the files and downloading failed or was disabled.
        ValueError: Unknown name, bad sizes, or malformed files (the message names the file).
    """
    if name == SYNTHETIC:
        n_train, n_test = 60000 if n_train is None else n_train, 10000 if n_test is None else n_test
        if n_train < 1 or n_test < 1:
            raise ValueError(f"n_train={n_train}, n_test={n_test}: both must be at least 1")
        return _synthetic(n_train, n_test, seed)
    files = locate(name, data_dir, download=download, mirrors=mirrors, timeout=timeout)["files"]
    train_x, train_y = _read_split(files[FILES[0]], files[FILES[1]])
    test_x, test_y = _read_split(files[FILES[2]], files[FILES[3]])
    k, m = _take(n_train, len(train_y), "n_train"), _take(n_test, len(test_y), "n_test")
    return (*_format(train_x[:k], train_y[:k]), *_format(test_x[:m], test_y[:m]))


def describe(name: str) -> dict[str, Any]:
    """Static facts about a dataset, without touching the file system.

    Args:
        name: ``"mnist"``, ``"fashion-mnist"`` or ``"synthetic"``.

    Returns:
        ``name``, ``real``, the default ``n_train``/``n_test``, ``source`` (the homepage, or how
        synthetic data is made) and, for real sets, ``files``, pinned ``sha256`` and ``mirrors``.
        :func:`locate` says where the files were actually found.
    """
    info: dict[str, Any] = {
        "name": name,
        "real": name != SYNTHETIC,
        "n_train": 60000,
        "n_test": 10000,
    }
    if name == SYNTHETIC:
        return info | {"source": _SYNTHETIC_SOURCE}
    spec = _spec(name)
    return info | {
        "source": spec.homepage,
        "files": list(FILES),
        "sha256": dict(spec.sha256),
        "mirrors": list(spec.mirrors),
    }
