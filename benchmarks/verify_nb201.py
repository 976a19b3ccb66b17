"""Does the training-free pick train? A seeded nb201 search scored on a CIFAR-10 subset, then the
best pick trained from scratch with the verification recipe (`ntknas verify`); prints its test
accuracy against chance (10 %) and the seconds per epoch.

    python benchmarks/verify_nb201.py [--data ../shared/data/cifar10-subset] [--trials 20] [--epochs 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

import search_spaces
from ntknas.inputs import data
from ntknas.objectives import reference
from ntknas.run import verify
from ntknas.run.search import objective_of, search
from ntknas.scoring import metrics
from ntknas.study.settings import Settings
from ntknas.study.studies import open_study

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-subset"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="ImageFolder with train/ and test/")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--n", type=int, default=64, help="kernel minibatch size")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"

    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'bench.db'}"
        settings = Settings("nb201", args.data, args.n, "batch", args.seed, metrics.DEFAULT)
        study = open_study("nb201", url, settings, "tpe")
        images = data.load(args.data, "train")
        batch = data.minibatch(images, args.n, args.seed)
        began = time.perf_counter()
        space = search_spaces.get("nb201")
        placed = reference.for_space(space, int(batch[0].shape[-1]), len(images.classes), batch=args.n).terms
        search(
            study,
            objective_of(space, settings, batch, len(images.classes), device, reference=placed),
            settings,
            args.trials,
        )
        search_seconds = time.perf_counter() - began

        splits = verify.load_splits(args.data, None)
        [pick] = verify.top_picks(study, 1)
        print(f"search: {args.trials} trials in {search_seconds:.0f} s, best by {metrics.DEFAULT}:")
        print(f"  trial {pick.number} {pick.user_attrs['config']}")
        print(f"  {metrics.DEFAULT} {pick.values[0]:.3f}, {pick.user_attrs['params'] / 1e6:.3f}M parameters")
        print(f"training on {len(splits.train_labels)} images, testing on {len(splits.test_labels)}:")

        def report(trial: int, step: verify.Step) -> None:
            if step.step == step.steps:
                loss, acc = step.loss, step.accuracy
                print(f"  epoch {step.epoch}/{step.epochs}: loss {loss:.3f}, train acc {acc:.1f}%")

        [outcome] = verify.verify(
            study,
            url,
            [pick],
            splits,
            verify.Recipe(args.epochs),
            device=device,
            checkpoints=Path(folder) / "checkpoints",
            report=report,
        )
    a = outcome.attrs
    chance = 100 / len(splits.classes)
    per_epoch = a["verified_seconds"] / args.epochs
    print(
        f"verified on {device}: test accuracy {a['verified_test_acc']:.2f}% (chance {chance:.0f}%), "
        f"train accuracy {a['verified_train_acc']:.2f}%, {per_epoch:.0f} s per epoch ({a['verified_status']})"
    )


if __name__ == "__main__":
    main()
