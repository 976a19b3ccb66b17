"""A small real nb201 study of cheap networks, and tiny image sets, for the verify and plot tests."""

import numpy as np
import optuna
from PIL import Image

import search_spaces
from ntknas.inputs import data
from ntknas.objectives.candidates import evaluate
from ntknas.run import verify
from ntknas.scoring import spectra
from ntknas.study.settings import Settings
from ntknas.study.studies import open_study

# Cheap cells (skip and 1×1 edges), best first by condition number at N=8, seed 0; the last
# repeats the best, as a study does when its sampler proposes a scored configuration again.
CONFIGS = (
    "|none~0|+|skip_connect~0|none~1|+|none~0|skip_connect~1|nor_conv_1x1~2|",
    "|skip_connect~0|+|none~0|skip_connect~1|+|none~0|none~1|skip_connect~2|",
    "|nor_conv_1x1~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|",
    "|none~0|+|skip_connect~0|none~1|+|none~0|skip_connect~1|nor_conv_1x1~2|",
)
SETTINGS = Settings("nb201", data.BUNDLED, 8, "batch", 0, "condition_number")


def make_study(
    name: str = "tiny", url: str = "sqlite:///results/ntknas.db", eigenvalues: bool = True
) -> optuna.Study:
    """A study holding CONFIGS scored exactly as `ntknas search` scores them; without
    ``eigenvalues``, as a search made before trials stored their pNTK eigenvalues."""
    study = open_study(name, url, SETTINGS, "random")
    space = search_spaces.get(SETTINGS.space)
    batch = data.minibatch(data.load(SETTINGS.data), SETTINGS.batch_size, SETTINGS.seed)
    for text in CONFIGS:
        attrs = evaluate(
            space,
            space.parse(text),
            batch,
            10,
            objective=SETTINGS.objective,
            bn=SETTINGS.bn,
            seed=SETTINGS.seed,
            device="cpu",
        )
        if not eigenvalues:
            del attrs[spectra.ATTR]
        study.add_trial(optuna.trial.create_trial(value=attrs[SETTINGS.objective], user_attrs=attrs))
    return study


def bundled_slice(n_train: int = 64, n_test: int = 32) -> verify.Splits:
    """The first images of the bundled sample's train and test parts."""
    train, test = data.load(data.BUNDLED, "train"), data.load(data.BUNDLED, "test")
    return verify.Splits(
        "sample-slice",
        train.pixels()[:n_train],
        train.labels[:n_train],
        test.pixels()[:n_test],
        test.labels[:n_test],
        train.classes,
    )


def write_image_folder(root, per_class: int = 8, splits=("train", "test"), size: int = 32) -> None:
    """Two classes of seeded noise images, ``size`` pixels square, under ``root/<split>/<class>/``."""
    rng = np.random.default_rng(0)
    for split in splits:
        for c in ("a", "b"):
            folder = root / split / c
            folder.mkdir(parents=True)
            for i in range(per_class):
                Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(
                    folder / f"{i}.png"
                )
