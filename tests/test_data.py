"""Minibatches: real bundled images, class balance, seeding, ImageFolders and their errors."""

import numpy as np
import pytest
import torch
from PIL import Image

from ntknas import data
from ntknas.errors import UserError


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
