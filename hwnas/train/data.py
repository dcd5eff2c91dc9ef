"""Training data: the embedded digits set, an image folder, or a ``.npz`` of arrays.

Every source ends as float tensors in NCHW at the space's input size, normalised with the
training split's mean and standard deviation, plus integer labels; the train/validation
split is fixed by a seed. Nothing is downloaded: the default is scikit-learn's bundled
handwritten digits (8x8 grey, upsampled). Folders are read without torchvision: images
(PNG, JPEG, BMP, GIF, PGM/PPM) through Pillow, ``.npy`` files with numpy.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import UserError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".pgm", ".ppm", ".pnm", ".npy")
# the one Pillow decoder each documented suffix may use
IMAGE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP", ".gif": "GIF",
                 ".pgm": "PPM", ".ppm": "PPM", ".pnm": "PPM"}
MAX_IMAGE_PIXELS = 4096 * 4096  # training images are resized to the space's input (32-224)


@dataclass(frozen=True)
class DataSplit:
    """Train and validation tensors at one input size; ``source`` says where they came from."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    classes: int
    source: str
    mean: float = 0.0   # normalisation applied: (x - mean) / std, from the training split
    std: float = 1.0
    # held-out test split: took no part in training or in choosing an architecture (the
    # validation split ranks candidates and picks networks); empty unless asked for
    test_x: "torch.Tensor | None" = None
    test_y: "torch.Tensor | None" = None
    labels: tuple[str, ...] = ()  # class name of each output index (empty: the index itself)

    @property
    def has_test(self) -> bool:
        return self.test_y is not None and len(self.test_y) > 0

    def preprocessing(self, input_hwc: tuple[int, int, int]) -> dict[str, Any]:
        """What a caller must do to an image before feeding an engine (for manifests)."""
        h, w, c = input_hwc
        return {"layout": "NCHW float32, batch 1", "input_shape": [1, c, h, w],
                "scale": "pixel values to [0, 1] (8-bit images / 255; digits / 16)",
                "resize": f"bilinear to {h}x{w}, align_corners=False",
                "channels": f"grey repeated to {c}" if c != 1 else "grey (RGB averaged)",
                "normalise": {"mean": self.mean, "std": self.std,
                              "formula": "(x - mean) / std, one scalar for all channels"},
                "labels": list(self.labels) or [str(i) for i in range(self.classes)],
                "output": "logits; the class of output index i is labels[i]",
                "source": self.source}

    def describe(self) -> dict[str, Any]:
        return {"source": self.source, "train": int(len(self.train_y)),
                "val": int(len(self.val_y)),
                "test": int(len(self.test_y)) if self.test_y is not None else 0,
                "classes": self.classes,
                "input": list(self.train_x.shape[1:])}

    def to(self, device: "str | torch.device") -> "DataSplit":
        """The same split with its tensors on ``device`` (small in-memory sets: once)."""
        if str(device) == "cpu":
            return self
        from dataclasses import replace

        test = {} if self.test_y is None else {"test_x": self.test_x.to(device),
                                                 "test_y": self.test_y.to(device)}
        return replace(self, train_x=self.train_x.to(device), train_y=self.train_y.to(device),
                       val_x=self.val_x.to(device), val_y=self.val_y.to(device), **test)

    def subsample(self, ratio: float, seed: int) -> "DataSplit":
        """A training subset of ``ratio`` (EcoNAS sample ratio); validation is kept whole."""
        if ratio >= 1.0:
            return self
        n = max(self.classes, int(round(len(self.train_y) * ratio)))
        idx = torch.randperm(len(self.train_y), generator=torch.Generator().manual_seed(seed))[:n]
        from dataclasses import replace

        return replace(self, train_x=self.train_x[idx], train_y=self.train_y[idx],
                       source=f"{self.source} (train x{ratio:g})")


# ----------------------------------------------------------------- sources
def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.images / 16.0).astype(np.float32)[..., None], d.target.astype(np.int64)


def _digits_hard(copies: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``digits-hard``: a harder task built from the same embedded digits, for comparing
    search methods where digits itself leaves little room (97% for most networks). Each
    digit appears ``copies`` times at 16x16, every copy rotated (up to 30 degrees either
    way), scaled (0.8-1.2) and shifted (up to 2 px) at random, with a fainter digit of
    another class overlaid (weight 0.45) and Gaussian noise (0.15). Seeded: every run and
    every machine sees the same images. No image set ships inside a registry package this
    project may depend on (scikit-learn's others download at run time)."""
    from ..errors import require

    ndimage = require("scipy.ndimage", "host")
    base, labels = _digits()
    rng = np.random.default_rng(seed)
    up = np.stack([ndimage.zoom(im[..., 0], 2.0, order=1) for im in base])  # 16x16
    out, ys = [], []
    for _ in range(copies):
        for i in range(len(up)):
            a = np.deg2rad(rng.uniform(-30, 30))
            s = rng.uniform(0.8, 1.2)
            m = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]) / s
            c = np.array([7.5, 7.5])
            off = c - m @ (c + rng.uniform(-2, 2, 2))
            im = ndimage.affine_transform(up[i], m, offset=off, order=1, mode="constant")
            other = rng.choice(np.flatnonzero(labels != labels[i]))
            im = np.clip(im + 0.45 * up[other] + rng.normal(0, 0.15, im.shape), 0, 1.5)
            out.append(im.astype(np.float32)[..., None])
            ys.append(labels[i])
    return np.stack(out), np.asarray(ys, dtype=np.int64)


# data names that are not paths, and their loaders (images HxWxC in [0, 1], labels)
BUILTIN_DATA = {"digits": _digits, "digits-hard": _digits_hard}


# Arrays are checked from their headers before anything is allocated: a 100-byte .npz
# can declare 23 TiB. Limits far above any dataset this tool trains on a CPU or one GPU.
MAX_ARRAY_BYTES = 8 * 2**30
MAX_IMAGE_BYTES = 256 * 2**20


def _npy_header(fh: Any, where: str, limit: int) -> tuple[tuple[int, ...], int]:
    """Shape and data size in bytes of a ``.npy`` stream from its header alone (numbers
    only, at most ``limit`` bytes), or one ``UserError``."""
    from numpy.lib import format as npf

    try:
        version = npf.read_magic(fh)
        if version not in ((1, 0), (2, 0)):
            raise ValueError(f"npy format version {version[0]}.{version[1]} (read: 1.0, 2.0)")
        read = npf.read_array_header_1_0 if version == (1, 0) else npf.read_array_header_2_0
        shape, _, dtype = read(fh, max_header_size=10_000)
    except (ValueError, OSError, EOFError, SyntaxError, TypeError) as exc:
        raise UserError(f"{where}: not a readable .npy array ({_short(exc)})") from None
    if dtype.hasobject or dtype.kind not in "biuf":
        raise UserError(f"{where}: must hold numbers, found dtype {dtype}")
    nbytes = dtype.itemsize
    for d in shape:
        nbytes *= int(d)
    if nbytes > limit:
        raise UserError(f"{where}: declares {nbytes / 2**30:.1f} GiB (shape "
                        f"{tuple(shape)}); hwnas reads arrays up to {limit / 2**30:g} GiB")
    return tuple(int(d) for d in shape), nbytes


def _short(exc: BaseException) -> str:
    from hwnas_profilers.fileformat import one_line

    return one_line(f"{exc.__class__.__name__}: {exc}", 160)


def _finite(x: np.ndarray, where: str) -> np.ndarray:
    if x.size and not np.isfinite(x).all():
        raise UserError(f"{where}: holds NaN or infinite values")
    return x


def _read_image(path: Path) -> np.ndarray:
    """One image as HxWxC float32 in [0, 1]."""
    suffix = path.suffix.lower()
    if suffix == ".npy":
        with open(path, "rb") as fh:
            shape, _ = _npy_header(fh, str(path), MAX_IMAGE_BYTES)
        if len(shape) not in (2, 3) or min(shape, default=0) < 1 or (
                len(shape) == 3 and shape[2] not in (1, 3, 4)):
            raise UserError(f"{path}: .npy image must be HxW or HxWxC (C 1, 3 or 4) with no "
                            f"empty axis, got shape {shape}")
        try:
            arr = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise UserError(f"{path}: not a readable .npy image ({_short(exc)})") from None
        arr = arr[..., None] if arr.ndim == 2 else arr
        arr = _finite(arr.astype(np.float32), str(path))
        return arr / 255.0 if arr.max(initial=0) > 1.0 else arr
    if path.stat().st_size > MAX_IMAGE_BYTES:
        raise UserError(f"{path}: image file over {MAX_IMAGE_BYTES // 2**20} MiB")
    try:  # PNG, JPEG, PGM/PPM, ...: Pillow (a size bomb is its DecompressionBombError)
        from PIL import Image
    except ImportError:
        raise UserError(f"{path}: reading {suffix} images needs Pillow (pip install "
                        "'hwnas[torch]'); .npy images are read without it") from None
    try:
        # only the decoder its suffix names: EPS bytes in a file named .png never reach
        # Pillow's EPS plugin (which runs Ghostscript)
        with Image.open(path, formats=[IMAGE_FORMATS[suffix]]) as im:
            w, h = im.size  # from the header: the pixel count is checked before decoding
            if w * h > MAX_IMAGE_PIXELS:
                raise UserError(f"{path}: image of {w}x{h} pixels; hwnas reads images up to "
                                f"{MAX_IMAGE_PIXELS:,} pixels (a decompression bomb, or "
                                "resize it first)")
            im = im.convert("L" if im.mode in ("1", "L", "I", "F") else "RGB")
            arr = np.asarray(im, dtype=np.float32) / 255.0
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise UserError(f"{path}: cannot read image as {IMAGE_FORMATS[suffix]} "
                        f"({_short(exc)})") from None
    if min(arr.shape[:2], default=0) < 1:
        raise UserError(f"{path}: empty image")
    return arr[..., None] if arr.ndim == 2 else arr


def _folder(root: Path) -> tuple[list[np.ndarray], np.ndarray, list[str]]:
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    from hwnas_profilers.bounds import available_bytes

    images, labels, used = [], [], []
    total, room = 0, min(MAX_ARRAY_BYTES, available_bytes() // 2)
    for c in classes:
        files = sorted(f for f in (root / c).iterdir()
                       if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            continue
        used.append(c)
        for f in files:
            images.append(_read_image(f))
            labels.append(len(used) - 1)
            total += images[-1].nbytes
            if total > room:  # many large images: stop before memory runs out, not after
                raise UserError(f"image folder {root} decodes to over {room / 2**30:.1f} GiB "
                                f"(at {f}); resize its images or use fewer")
    if not images:
        raise UserError(f"image folder {root} holds no images (expected one sub-folder per class "
                        f"with {', '.join(IMAGE_SUFFIXES)} files)")
    if len(used) < 2:
        raise UserError(f"image folder {root} has images of only one class ({used[0]!r}); "
                        "need at least two class sub-folders")
    return images, np.asarray(labels, dtype=np.int64), used


def _npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    import zipfile

    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            if "x.npy" not in names or "y.npy" not in names:
                found = ", ".join(n.removesuffix(".npy") for n in names[:8]) or "none"
                raise UserError(f"{path}: .npz must hold arrays 'x' (images) and 'y' (labels), "
                                f"found {found}")
            for name in ("x.npy", "y.npy"):  # headers first: nothing allocated yet
                with zf.open(name) as fh:
                    _, n = _npy_header(fh, f"{path} ({name[0]})", MAX_ARRAY_BYTES)
                if n > zf.getinfo(name).file_size:
                    raise UserError(f"{path} ({name[0]}): truncated (declares {n} bytes, "
                                    f"holds {zf.getinfo(name).file_size})")
        with np.load(path, allow_pickle=False) as z:
            x, y = z["x"], z["y"]
    except UserError:
        raise
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, RuntimeError,
            NotImplementedError) as exc:
        raise UserError(f"{path}: not a readable .npz file ({_short(exc)})") from None
    if x.ndim < 3 or 0 in x.shape:
        raise UserError(f"{path}: 'x' must be N x H x W, N x H x W x C or N x C x H x W with "
                        f"at least one image and no empty axis, got shape {tuple(x.shape)}")
    if x.ndim == 3:
        x = x[..., None]
    elif x.ndim == 4 and x.shape[-1] not in (1, 3, 4) and x.shape[1] in (1, 3, 4):
        x = np.transpose(x, (0, 2, 3, 1))  # NCHW given
    if x.ndim != 4 or x.shape[-1] not in (1, 3, 4):
        raise UserError(f"{path}: 'x' must be N x H x W, N x H x W x C or N x C x H x W with C "
                        f"in 1, 3, 4; got shape {tuple(x.shape)}")
    if y.ndim != 1 or len(y) != len(x):
        raise UserError(f"{path}: 'y' must be a 1-D label array of length {len(x)}, got shape "
                        f"{tuple(y.shape)}")
    if not np.issubdtype(y.dtype, np.integer) or (len(y) and y.min() < 0):
        raise UserError(f"{path}: 'y' must hold non-negative integer class labels")
    if not np.issubdtype(x.dtype, np.number):
        raise UserError(f"{path}: 'x' must be numeric, got {x.dtype}")
    x = _finite(x.astype(np.float32), f"{path} ('x')")
    if x.max(initial=0) > 1.0:
        x = x / 255.0
    return x, y.astype(np.int64)


# ----------------------------------------------------------------- tensors
def _to_input(images: "np.ndarray | list[np.ndarray]", hwc: tuple[int, int, int]) -> torch.Tensor:
    """Resize each image to H x W and map channels to C (grey repeated, RGB averaged)."""
    h, w, c = hwc
    out = []
    groups = [images] if isinstance(images, np.ndarray) else [im[None] for im in images]
    for g in groups:
        t = torch.from_numpy(np.ascontiguousarray(g[..., :3])).permute(0, 3, 1, 2)
        if t.shape[1] != c:
            t = t.mean(1, keepdim=True)
            t = t.expand(-1, c, -1, -1) if c != 1 else t
        if t.shape[2:] != (h, w):
            t = F.interpolate(t, size=(h, w), mode="bilinear", align_corners=False)
        out.append(t.contiguous())
    return torch.cat(out)


def load_data(ref: "str | Path", input_hwc: tuple[int, int, int], classes: int, seed: int = 0,
              val_fraction: float = 0.2, test_fraction: float = 0.0) -> DataSplit:
    """``digits``, an image folder or a ``.npz``, at ``input_hwc``, split by ``seed``.

    One seeded permutation: its first ``val_fraction`` is the validation split, the next
    ``test_fraction`` the held-out test split, the rest trains (so ``test_fraction=0``
    gives the same train/validation split as before the test split existed)."""
    ref_s = str(ref)
    if ref_s in BUILTIN_DATA:
        (images, labels), source = BUILTIN_DATA[ref_s](), ref_s
        names = [str(i) for i in range(int(labels.max()) + 1)]  # the digit each class is
    else:
        path = Path(ref_s)
        if path.is_dir():
            images, labels, names = _folder(path)
            source = f"folder:{path} ({len(names)} classes)"
        elif path.suffix.lower() == ".npz":
            if not path.is_file():
                raise UserError(f"data file {path} does not exist")
            images, labels = _npz(path)
            source = f"npz:{path}"
            names = []  # integer labels: the index is the class
        else:
            names = " or ".join(map(repr, BUILTIN_DATA))
            raise UserError(f"unknown data {ref_s!r}: give {names}, "
                            "an image folder (one sub-folder per class) or a .npz file with "
                            "arrays x and y")
    n_cls = int(labels.max()) + 1 if len(labels) else 0
    if len(np.unique(labels)) < 2:
        raise UserError(f"data {ref_s} has fewer than two classes")
    if n_cls > classes:
        raise UserError(f"data {ref_s} has {n_cls} classes but the space's head has {classes}")
    if not 0.0 < val_fraction < 1.0:
        raise UserError(f"validation fraction must be in (0, 1), got {val_fraction}")
    if not (0.0 <= test_fraction < 1.0 and val_fraction + test_fraction < 1.0):
        raise UserError(f"test fraction must be in [0, 1) and leave training data beside the "
                        f"validation fraction, got {test_fraction}")
    x = _to_input(images, input_hwc)
    y = torch.from_numpy(labels)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    n_val = max(1, int(round(len(y) * val_fraction)))
    n_test = int(round(len(y) * test_fraction)) if test_fraction > 0 else 0
    if test_fraction > 0 and n_test < 1 or len(y) - n_val - n_test < 2:
        raise UserError(f"data {ref_s} has only {len(y)} samples; too few to split")
    val_idx, test_idx = perm[:n_val], perm[n_val:n_val + n_test]
    train_idx = perm[n_val + n_test:]
    mean, std = x[train_idx].mean(), x[train_idx].std().clamp_min(1e-6)
    x = (x - mean) / std
    test = {"test_x": x[test_idx], "test_y": y[test_idx]} if n_test else {}
    return DataSplit(x[train_idx], y[train_idx], x[val_idx], y[val_idx], classes, source,
                     float(mean), float(std), **test, labels=tuple(names))
