"""torchvision models by name: a model that cannot run on the data's image size says what it needs."""

import pytest
import torch
from torch import nn

from ntknas.core.errors import UserError
from ntknas.objectives import torchvision_models


def test_a_model_that_needs_larger_images_says_which_size():
    with pytest.raises(UserError) as info:
        torchvision_models.build("vit_b_16")
    assert str(info.value) == (
        "torchvision model 'vit_b_16' cannot run on 32×32 images (it needs larger ones: it runs on 224×224); "
        "pass --image-size 224 or choose a model that accepts 32×32, e.g. resnet18"
    )
    with pytest.raises(UserError, match=r"'alexnet' cannot run on 32×32 images \(.*it runs on 64×64\)"):
        torchvision_models.build("alexnet")
    model = torchvision_models.build("alexnet", num_classes=3, image_size=64)
    assert model(torch.zeros(2, 3, 64, 64)).shape == (2, 3)


def test_the_probe_leaves_the_model_as_it_was():
    model = torchvision_models.build("resnet18", num_classes=4)
    assert all(m.training for m in model.modules())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    torchvision_models.check_runs(model, "resnet18", 32)
    assert all(m.training for m in model.modules())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # no BatchNorm update


def test_a_model_that_runs_on_no_size_gets_the_reason():
    class Broken(nn.Module):
        def forward(self, x):
            raise RuntimeError("mat1 and mat2 shapes cannot be multiplied\nmore")

    with pytest.raises(UserError) as info:
        torchvision_models.check_runs(Broken(), "broken", 32)
    assert str(info.value) == (
        "torchvision model 'broken' cannot run on 32×32 images (RuntimeError: mat1 and mat2 shapes cannot be "
        "multiplied); choose another model, e.g. resnet18"
    )


@pytest.mark.parametrize("name", ["googlenet", "inception_v3", "vgg11", "resnet18"])
def test_building_a_model_warns_nothing(name, recwarn):
    """googlenet and inception_v3 warn (FutureWarning) that their default initialisation will
    change unless told which one; they are told the one they use now."""
    torchvision_models.build(name, 10, image_size=75)
    assert [str(w.message) for w in recwarn] == []


def test_score_shows_what_a_model_gives_and_names_what_it_cannot(monkeypatch):
    """A model whose activations are functional (torchvision's googlenet) has no ReLU module for
    NASWOT, so ntk_score, which reads it, cannot be measured: one warning names it and the reason,
    and every other score stands (before: exit 2, nothing shown)."""
    import json

    import torch.nn.functional as F
    from typer.testing import CliRunner

    from ntknas.cli import app
    from ntknas.objectives import torchvision_models

    class Functional(nn.Module):
        def __init__(self, classes: int) -> None:
            super().__init__()
            self.conv, self.fc = nn.Conv2d(3, 4, 3), nn.Linear(4 * 30 * 30, classes)

        def forward(self, x):
            return self.fc(F.relu(self.conv(x)).flatten(1))

    monkeypatch.setattr(torchvision_models, "build", lambda name, classes, image_size: Functional(classes))
    args = ["score", "--model", "resnet18", "--data", "synthetic", "--batch-size", "4", "--format", "json"]
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.output
    assert done.stderr.strip().splitlines()[-1] == (
        "warning: ntk_score is n/a for this model: naswot needs activation modules (nn.ReLU, nn.GELU, ...) "
        "in the model; it has none"
    )
    shown = json.loads(done.stdout)
    assert shown["ntk_score"] is None and shown["condition_number"] > 1 and shown["params"] == 108 + 4 + 36010
