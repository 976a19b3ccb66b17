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
