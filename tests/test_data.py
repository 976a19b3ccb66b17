"""Minibatches: real bundled images, class balance, seeding, ImageFolders and their errors."""

import itertools
import os
import re
import socket
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
import unprivileged
from PIL import Image

from ntknas.core.errors import InputWarning, UserError
from ntknas.inputs import data, image_folder


def test_bundled_sample_is_real_labelled_cifar():
    train, test = data.load("cifar10-sample"), data.load("cifar10-sample", "test")
    assert len(train) == 1000 and len(test) == 300
    assert train.classes[0] == "airplane" and len(train.classes) == 10
    assert torch.equal(train.labels.bincount(), torch.full((10,), 100))
    px = train.pixels(torch.tensor([0, 1]))
    assert px.dtype == torch.uint8 and px.shape == (2, 3, 32, 32) and px.float().std() > 30


def test_minibatch_is_balanced_seeded_and_normalised():
    images = data.load("cifar10-sample")
    x, y = data.minibatch(images, 64, seed=0)
    counts = y.bincount(minlength=10)
    assert x.shape == (64, 3, 32, 32) and x.dtype == torch.float32
    assert counts.max() - counts.min() <= 1
    assert abs(float(x.mean())) < 0.3 and 0.7 < float(x.std()) < 1.3
    # each pixel is (value / 255 − mean) / std, per channel, with CIFAR's statistics
    white = data.normalise(torch.full((1, 3, 1, 1), 255, dtype=torch.uint8)).flatten()
    expected = [(1 - m) / s for m, s in zip(data.CIFAR_MEAN, data.CIFAR_STD, strict=True)]
    assert white.tolist() == pytest.approx(expected)
    x2, y2 = data.minibatch(images, 64, seed=0)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    x3, _ = data.minibatch(images, 64, seed=1)
    assert not torch.equal(x, x3)


def test_minibatch_errors():
    images = data.load("synthetic")
    with pytest.raises(UserError, match="--batch-size 5000 is larger than the data \\(1000 images\\)"):
        data.minibatch(images, 5000, 0)
    with pytest.raises(UserError, match="--batch-size must be at least 2"):
        data.minibatch(images, 1, 0)


def write_folder(root, classes=("cat", "dog"), per=3, size=(40, 36)):
    rng = np.random.default_rng(0)
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(per):
            Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(root / c / f"{i}.png")


def test_image_folder(tmp_path):
    write_folder(tmp_path / "train")
    write_folder(tmp_path / "test", per=2)
    train = data.load(str(tmp_path))
    assert len(train) == 6 and train.classes == ("cat", "dog")
    assert train.pixels().shape == (6, 3, 32, 32)
    assert len(data.load(str(tmp_path), "test")) == 4
    _, y = data.minibatch(train, 4, 0)
    assert y.bincount().tolist() == [2, 2]


def test_image_folder_errors(tmp_path):
    with pytest.raises(UserError, match="does not exist; give an ImageFolder directory or one of"):
        data.load(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no images found in"):
        data.load(str(tmp_path / "empty"))
    write_folder(tmp_path / "flat")
    with pytest.raises(UserError, match="has no test/ folder"):
        data.load(str(tmp_path / "flat"), "test")
    (tmp_path / "flat" / "cat" / "broken.png").write_bytes(b"not a png at all")
    images = data.load(str(tmp_path / "flat"))
    with pytest.raises(UserError, match=r"broken\.png is not a readable image"):
        images.pixels()
    with pytest.raises(UserError, match="needs --data-root"):
        data.load("cifar10")
    with pytest.raises(UserError, match=r"CIFAR-10 not found under .*ntknas never downloads"):
        data.load("cifar10", root=tmp_path)


def png(pixels: np.ndarray, bits: int = 16) -> bytes:
    """A PNG file of (H, W, C) ``pixels`` (C = 3 or 4) at ``bits`` per channel, written by hand:
    Pillow cannot write 16-bit colour PNGs."""
    height, width, channels = pixels.shape
    dtype = ">u2" if bits == 16 else ">u1"
    raw = b"".join(b"\x00" + pixels[y].astype(dtype).tobytes() for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, bits, 2 if channels == 3 else 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(raw))
        + _chunk(b"IEND", b"")
    )


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` × ``height`` pixels, with no image data behind it."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IEND", b"")


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def picture(seed=0, size=(9, 7)):
    return np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)


def read(path):
    return image_folder.read(str(path), 32)


def test_any_bit_depth_reads_as_the_picture_it_shows(tmp_path):
    rgb = picture()
    grey = rgb[..., 0]
    Image.fromarray(rgb).save(tmp_path / "rgb8.png")
    (tmp_path / "rgb16.png").write_bytes(png(rgb.astype(np.uint16) * 257))
    assert torch.equal(read(tmp_path / "rgb16.png"), read(tmp_path / "rgb8.png"))
    Image.fromarray(grey).save(tmp_path / "grey8.png")
    Image.fromarray(grey.astype(np.uint16) * 257).save(tmp_path / "grey16.png")  # mode I;16
    Image.fromarray(grey.astype(np.int32) * 257).save(tmp_path / "grey32.tif")  # mode I, 16-bit values
    Image.fromarray(grey.astype(np.float32) / 255).save(tmp_path / "float.tif")  # mode F in 0..1
    eight = read(tmp_path / "grey8.png")
    assert eight[0].tolist() == eight[1].tolist() == eight[2].tolist()
    for name in ("grey16.png", "grey32.tif", "float.tif"):
        assert torch.equal(read(tmp_path / name), eight), name
    # one bit, palettes, CMYK: as Pillow shows them in RGB
    Image.fromarray(grey > 127).save(tmp_path / "bits.png")
    Image.fromarray(np.where(grey > 127, 255, 0).astype(np.uint8)).save(tmp_path / "bits8.png")
    assert torch.equal(read(tmp_path / "bits.png"), read(tmp_path / "bits8.png"))
    Image.fromarray(rgb).convert("P").save(tmp_path / "palette.png")
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "cmyk.jpg")
    for name in ("palette.png", "cmyk.jpg"):
        assert read(tmp_path / name).shape == (3, 32, 32) and read(tmp_path / name).float().std() > 10


def test_transparency_is_shown_over_black(tmp_path):
    rgb = picture()
    alpha = np.full((*rgb.shape[:2], 1), 255, np.uint8)
    Image.fromarray(np.concatenate([rgb, alpha], 2)).save(tmp_path / "opaque.png")
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    assert torch.equal(read(tmp_path / "opaque.png"), read(tmp_path / "rgb.png"))
    Image.fromarray(np.concatenate([rgb, 0 * alpha], 2)).save(tmp_path / "clear.png")
    assert read(tmp_path / "clear.png").max() == 0
    grey = Image.fromarray(rgb[..., 0]).convert("LA")
    grey.putalpha(0)
    grey.save(tmp_path / "la.png")
    palette = Image.fromarray(rgb).convert("P")
    palette.info["transparency"] = palette.getpixel((0, 0))
    palette.save(tmp_path / "p.png", transparency=palette.getpixel((0, 0)))
    assert read(tmp_path / "la.png").max() == 0
    p = read(tmp_path / "p.png")
    assert p.float().std() > 10 and p.min() == 0


def test_degenerate_and_refused_images(tmp_path):
    Image.new("RGB", (1, 1), (10, 20, 30)).save(tmp_path / "dot.png")
    assert read(tmp_path / "dot.png").flatten(1).tolist() == [[10] * 1024, [20] * 1024, [30] * 1024]
    Image.fromarray(picture(size=(4, 4000))).save(tmp_path / "strip.png")  # 1000:1, cut to its centre
    assert read(tmp_path / "strip.png").shape == (3, 32, 32)
    (tmp_path / "cut.png").write_bytes(png(picture(size=(40, 40)), bits=8)[:200])
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "huge.png").write_bytes(png_claiming(20_000, 20_000))
    (tmp_path / "text.png").write_text("not an image")
    Image.new("RGB", (4, 4)).save(tmp_path / "gif.png", format="GIF")  # a decoder .png does not call
    Image.fromarray(np.full((3, 3), 2.0, np.float32)).save(tmp_path / "bright.tif")
    Image.fromarray(np.full((3, 3), 70_000, np.int32)).save(tmp_path / "deep.tif")
    cases = {
        "cut.png": "is not a readable image (it is truncated); remove it or replace it",
        "empty.png": "is not a readable image (it is empty: 0 bytes); remove it or replace it",
        "huge.png": "is too large to decode safely (more than 89,478,485 pixels); shrink it or remove it",
        "text.png": "is not a readable image (not a BMP, JPEG, PNG, PPM, TIFF or WebP file); remove it",
        "gif.png": "is not a readable image (not a BMP, JPEG, PNG, PPM, TIFF or WebP file); remove it",
        "bright.tif": "has floating-point pixels outside 0..1 (or NaN)",
        "deep.tif": "has 32-bit integer pixels outside 0..65535",
    }
    for name, message in cases.items():
        with pytest.raises(UserError, match=f"^{re.escape(str(tmp_path / name))} {re.escape(message)}"):
            read(tmp_path / name)


def test_a_decoders_warning_names_the_file_it_is_about(tmp_path, monkeypatch):
    """Pillow warns about a file it reads anyway (corrupt EXIF data) without naming it: the
    warning comes as one InputWarning that does, once per file and message."""
    from PIL import ImageOps

    transpose = ImageOps.exif_transpose
    CORRUPT = "Corrupt EXIF data.  Expecting to read 2 bytes but only got 0. "

    def corrupt_exif(image, **kwargs):
        for _ in range(2):
            warnings.warn(CORRUPT, UserWarning, stacklevel=2)
        return transpose(image, **kwargs)

    Image.new("RGB", (2, 2), (10, 20, 30)).save(tmp_path / "exif.jpg")
    monkeypatch.setattr(ImageOps, "exif_transpose", corrupt_exif)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert read(tmp_path / "exif.jpg").shape == (3, 32, 32)
    assert [(w.category, str(w.message)) for w in seen] == [
        (
            InputWarning,
            f"{tmp_path / 'exif.jpg'}: {CORRUPT.strip()}; read as it is",
        )
    ]


def test_a_source_name_that_is_also_a_folder_here_is_read_as_the_source_with_one_warning(
    tmp_path, monkeypatch
):
    from test_bad_input import KINDS, matches

    monkeypatch.chdir(tmp_path)
    (tmp_path / "synthetic" / "cats").mkdir(parents=True)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        train, test = data.load("synthetic"), data.load("synthetic", "test")
    assert len(train) == len(data.load("synthetic", size=32)) and len(test) > 0  # the source's images
    assert [w.category for w in seen] == [InputWarning]
    assert matches(KINDS["a source name that is also a folder here"].message, str(seen[0].message))
    with pytest.raises(UserError, match=r"^no images found in synthetic: "):  # ./synthetic is the folder
        data.load("./synthetic")


def test_an_entry_nested_past_the_systems_path_limit_is_named_as_skipped(tmp_path):
    """A folder whose path is longer than PATH_MAX cannot be opened: it is one of the skipped
    entries the warning names, never left out unsaid (it was taken for a dangling link, and only
    links and image files were named)."""
    write_folder(tmp_path / "photos")
    fds = [os.open(tmp_path / "photos" / "cat", os.O_RDONLY)]
    try:
        for _ in range(2100):  # made relative to an open folder: no path is ever that long
            os.mkdir("d", dir_fd=fds[-1])
            fds.append(os.open("d", os.O_RDONLY, dir_fd=fds[-1]))
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            listing = image_folder.scan(tmp_path / "photos")
        assert len(listing.files) == 6
        [warning] = seen
        assert warning.category is InputWarning
        assert str(warning.message).startswith(
            f"skipped 1 entry of {tmp_path / 'photos'} that cannot be images: "
        )
        assert str(warning.message).endswith("/d/d (its path is longer than the system allows)")
    finally:
        for parent in reversed(fds[:-1]):  # deepest first, each relative to its parent
            os.rmdir("d", dir_fd=parent)
        for fd in fds:
            os.close(fd)


def test_the_scan_lists_what_image_folder_lists(tmp_path):
    import torchvision

    write_folder(tmp_path / "set", classes=("b", "a", "c"), per=2)
    for c in ("a", "c"):
        write_folder(tmp_path / "set" / c / "deeper", classes=("z",), per=2)
        (tmp_path / "set" / c / "notes.txt").write_text("ignored, as ImageFolder ignores it")
    (tmp_path / "set" / "loose.png").write_bytes(b"")  # a file beside the class folders: ignored
    os.symlink(tmp_path / "set" / "b", tmp_path / "set" / "linked")  # a class folder through a link
    reference = torchvision.datasets.ImageFolder(str(tmp_path / "set"))
    listing = image_folder.scan(tmp_path / "set")
    assert listing.files == tuple(path for path, _ in reference.samples)
    assert listing.labels == tuple(reference.targets) and listing.classes == tuple(reference.classes)
    images = data.load(str(tmp_path / "set"))
    assert torch.equal(images.pixels(torch.tensor([0])), read(listing.files[0])[None])


def test_special_files_and_broken_links_are_skipped_with_one_warning(tmp_path):
    write_folder(tmp_path / "set", per=2)
    cat = tmp_path / "set" / "cat"
    os.mkfifo(cat / "fifo.png")  # open() on it would wait forever for a writer
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(cat / "socket.jpg"))
        os.symlink("/dev/null", cat / "device.png")
        os.symlink(cat / "missing.png", cat / "dangling.png")
        os.symlink(cat / "loop.png", cat / "loop.png")
        os.symlink(tmp_path / "set", cat / "up")  # a folder loop: the walk would never end
        with pytest.warns(InputWarning) as caught:
            listing = image_folder.scan(tmp_path / "set")
    assert [str(w.message) for w in caught] == [
        f"skipped 6 entries of {tmp_path / 'set'} that cannot be images: {cat / 'dangling.png'} (a dangling "
        f"link); {cat / 'device.png'} (a character device, not a regular file); {cat / 'fifo.png'} (a FIFO, "
        "not a regular file) and 3 more"
    ]
    assert [Path(f).relative_to(tmp_path).as_posix() for f in listing.files] == [
        "set/cat/0.png",
        "set/cat/1.png",
        "set/dog/0.png",
        "set/dog/1.png",
    ]
    with pytest.raises(UserError, match=r"fifo\.png is not a regular file; remove it"):
        read(cat / "fifo.png")  # a FIFO that appears after the scan is refused, not waited on


def test_links_that_fork_and_join_are_walked_once(tmp_path):
    """Two links to the same folder at each of 40 levels: 2**40 paths to the bottom, which a walk
    following every link would never finish; each folder is walked once."""
    write_folder(tmp_path / "set", per=1)
    cat = tmp_path / "set" / "cat"
    (cat / "level0").mkdir()
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(cat / "level0" / "deep.png")
    for level in range(1, 41):
        (cat / f"level{level}").mkdir()
        for fork in ("x", "y"):
            os.symlink(f"../level{level - 1}", cat / f"level{level}" / fork)
    with pytest.warns(InputWarning, match="a link to a folder listed already"):
        listing = image_folder.scan(tmp_path / "set")
    assert sorted(Path(f).name for f in listing.files) == ["0.png", "0.png", "deep.png"]


def test_a_tree_of_too_many_folders_is_no_image_folder(tmp_path, monkeypatch):
    """--data / or /proc/self would be walked for hours: beyond MAX_FOLDERS the scan stops."""
    write_folder(tmp_path / "set", per=1)
    for i in range(5):
        (tmp_path / "set" / "dog" / f"sub{i}").mkdir()
    monkeypatch.setattr(image_folder, "MAX_FOLDERS", 5)
    with pytest.raises(UserError) as info:
        image_folder.scan(tmp_path / "set")
    assert str(info.value) == (
        f"{tmp_path / 'set'} holds more than 5 folders (links followed): it is not an image folder; give "
        "--data a folder with one folder of images per class"
    )
    monkeypatch.setattr(image_folder, "MAX_FOLDERS", 7)
    assert len(image_folder.scan(tmp_path / "set").files) == 2


def test_unreadable_files_are_refused_where_permissions_bind(tmp_path):
    if unprivileged.unavailable():
        pytest.skip(unprivileged.unavailable())
    write_folder(tmp_path / "set", per=2)
    (tmp_path / "set" / "cat" / "0.png").chmod(0)
    (tmp_path / "closed" / "dog" / "inner").mkdir(parents=True)
    write_folder(tmp_path / "closed", classes=("cat",), per=1)
    (tmp_path / "closed" / "dog" / "inner").chmod(0)
    out = unprivileged.run(
        "from ntknas.inputs import data\n"
        "for path in ('set', 'closed'):\n"
        "    try:\n"
        "        data.load(path)\n"
        "    except Exception as e:\n"
        "        print(type(e).__name__, e)\n",
        tmp_path,
    )
    assert out.splitlines() == [
        "UserError set/cat/0.png cannot be read (permission denied); make it readable or remove it",
        "UserError cannot list the folder closed/dog/inner (Permission denied); make it readable",
    ]


def test_minibatches_resize_for_models_that_need_other_sizes():
    images = data.load("cifar10-sample")
    x, y = data.minibatch(images, 4, seed=0)
    big, same = data.minibatch(images, 4, seed=0, image_size=224)
    assert big.shape == (4, 3, 224, 224) and torch.equal(same, y)
    assert torch.allclose(big.mean((2, 3)), x.mean((2, 3)), atol=0.02)  # the same pictures, larger
    assert torch.equal(big[..., 0, 0], x[..., 0, 0]) and torch.equal(big[..., -1, -1], x[..., -1, -1])
    flat = data.resize(torch.full((1, 3, 32, 32), 0.5), 224)
    assert torch.allclose(flat, torch.full_like(flat, 0.5))
    assert data.resize(x, 32) is x
    with pytest.raises(UserError, match="--image-size must be from 1 to 1024 pixels; got 0"):
        data.resize(x, 0)


def test_an_image_folder_is_read_at_the_asked_size(tmp_path):
    """64-pixel photos read at 48: 48-pixel tensors of the same pictures; a wide photo keeps its
    central square (shorter side resized to 48, sides cropped)."""
    write_folder(tmp_path / "train", size=(64, 64))
    wide = np.zeros((64, 128, 3), dtype=np.uint8)
    wide[:, :32, 0] = wide[:, 32:96, 1] = wide[:, 96:, 2] = 255  # red | green (the centre) | blue
    Image.fromarray(wide).save(tmp_path / "train" / "cat" / "wide.png")
    images = data.load(str(tmp_path), size=48)
    pixels = images.pixels()
    assert pixels.shape == (7, 3, 48, 48) and pixels.dtype == torch.uint8
    native = data.load(str(tmp_path), size=64).pixels()
    assert native.shape == (7, 3, 64, 64)
    photo = np.array(Image.open(tmp_path / "train" / "cat" / "1.png"))
    assert torch.equal(native[1], torch.from_numpy(photo).permute(2, 0, 1))  # at its own size: as is
    assert (pixels[:6].float().mean((2, 3)) - native[:6].float().mean((2, 3))).abs().max() < 2
    centre = pixels[3]  # cat/wide.png, listed after cat/0-2.png
    assert centre[1, :, 1:-1].min() == 255 and centre[[0, 2], :, 1:-1].max() == 0
    x, y = data.minibatch(images, 4, seed=0)
    assert x.shape == (4, 3, 48, 48) and y.bincount().tolist() == [2, 2]


@pytest.mark.parametrize("source", ["cifar10-sample", "synthetic"])
def test_stored_32_pixel_images_are_resized_to_the_asked_size(source):
    small, large = data.load(source), data.load(source, size=48)
    index = torch.tensor([0, 5, 999])
    assert small.pixels(index).shape == (3, 3, 32, 32) and torch.equal(small.labels, large.labels)
    resized = data.resize(small.pixels(index).float(), 48).round().clamp(0, 255).to(torch.uint8)
    assert torch.equal(large.pixels(index), resized)
    assert large.pixels(index).shape == (3, 3, 48, 48) and large.pixels(index).dtype == torch.uint8
    assert torch.equal(data.load(source, size=32).pixels(index), small.pixels(index))


# Folders an ImageFolder's top level may hold: the splits, classes (one named like a split), and
# a hidden folder a notebook leaves behind.
TOP_FOLDERS = ("train", "test", "cat", "dog", ".ipynb_checkpoints")


@pytest.mark.parametrize(
    "top",
    [
        frozenset(chosen)
        for size in range(1, len(TOP_FOLDERS) + 1)
        for chosen in itertools.combinations(TOP_FOLDERS, size)
    ],
    ids=lambda top: "+".join(sorted(top)),
)
def test_every_top_level_layout_is_read_as_splits_or_classes_or_refused(tmp_path, top):
    """Every set of top-level folders: split folders (each holding cat/ and dog/) alone are
    splits; class folders alone are the train split's classes; splits beside classes are refused
    as ambiguous (a class named train would else be read as the split); fewer than 2 classes are
    refused. A hidden folder is never a split's rival, nor a class."""
    for name in top:
        if name in data.SPLITS:
            write_folder(tmp_path / name, per=1, size=(4, 4))
        else:
            write_folder(tmp_path, classes=(name,), per=1, size=(4, 4))
    splits = top & set(data.SPLITS)
    classes = top - set(data.SPLITS) - {".ipynb_checkpoints"}
    for split in data.SPLITS:
        if splits and classes:
            with pytest.raises(UserError, match=r"beside other folders .*: are they splits or classes\?"):
                data.load(str(tmp_path), split)
        elif splits and split not in splits:
            with pytest.raises(UserError, match=rf"has no {split}/ folder"):
                data.load(str(tmp_path), split)
        elif splits:
            assert data.load(str(tmp_path), split).classes == ("cat", "dog")
        elif split == "test":
            with pytest.raises(UserError, match="has no test/ folder"):
                data.load(str(tmp_path), split)
        elif not classes:  # a hidden folder alone: never a class
            with pytest.raises(UserError, match=r"no images found in .*: Couldn't find any class folder"):
                data.load(str(tmp_path), split)
        elif len(classes) < 2:  # cat or dog alone, a hidden folder beside it or not
            with pytest.raises(UserError, match=r"has 1 class folder \(.*\); a classifier needs at least 2"):
                data.load(str(tmp_path), split)
        else:
            assert data.load(str(tmp_path), split).classes == tuple(sorted(classes))


def test_the_documented_image_folder_rows(tmp_path, monkeypatch):
    from test_bad_input import KINDS, matches

    monkeypatch.chdir(tmp_path)
    for row, root, classes in (
        (KINDS["a class folder named like a split"], "vehicles", ("bus", "train", "truck")),
        (KINDS["an image folder of one class"], "only", ("cat",)),
    ):
        write_folder(tmp_path / root, classes=classes, per=1, size=(4, 4))
        with pytest.raises(UserError) as info:
            data.load(root)
        assert matches(row.message, str(info.value)), str(info.value)


def test_a_data_path_under_home_is_expanded(tmp_path, monkeypatch):
    """``--data=~/photos`` (a shell leaves ~ alone after =) reads the folder in the home folder."""
    monkeypatch.setenv("HOME", str(tmp_path))
    write_folder(tmp_path / "photos", per=1, size=(4, 4))
    assert data.load("~/photos").classes == ("cat", "dog")
