"""The distance-field network: equal to a plain per-bone reimplementation of the originals, loaded from checkpoints in
the released layout, finite gradients where the quaternion flip switches."""

from __future__ import annotations

import itertools
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn import functional

from amasskit.errors import CheckpointError, InvalidArgumentError
from amasskit.prior import PARENT_MAPS, DistanceField, DistanceFieldConfig, load_official

OFFICIAL = [-1, -1, -1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19]
FIXED = [-1, -1, -1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 8, 8, 11, 12, 13, 15, 16, 17, 18]
DIMS = [32, 48, 16]  # small hidden widths: the layout is what is tested


def official_state(
    parents: list[int], dims: list[int], seed: int, *, decoder: bool = False
) -> dict[str, torch.Tensor]:
    """Random weights under the original key names and shapes."""
    g = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}
    for j, p in enumerate(parents):
        state[f"enc.net.{j}.net.0.weight"] = torch.randn(10, 4 if p < 0 else 10, generator=g) * 0.5
        state[f"enc.net.{j}.net.0.bias"] = torch.randn(10, generator=g) * 0.1
        state[f"enc.net.{j}.net.2.weight"] = torch.randn(6, 10, generator=g) * 0.5
        state[f"enc.net.{j}.net.2.bias"] = torch.randn(6, generator=g) * 0.1
        if decoder:
            state[f"dec.net.{j}.net.0.weight"] = torch.randn(10, 6, generator=g)
    widths = [6 * len(parents), *dims, 1]
    for i, (a, b) in enumerate(itertools.pairwise(widths)):
        state[f"dfnet.lin{i}.weight"] = torch.randn(b, a, generator=g) / a**0.5
        state[f"dfnet.lin{i}.bias"] = torch.randn(b, generator=g) * 0.1
    return state


def reference(
    state: dict[str, torch.Tensor], parents: list[int], act: str, beta: float, quat_xyzw: torch.Tensor
):
    """The original network written out plainly: WXYZ, normalised, w >= 0, one bone at a time along the map."""
    q = functional.normalize(quat_xyzw, dim=-1)[..., [3, 0, 1, 2]]
    q = torch.where(q[..., :1] < 0, -q, q)

    def hidden(x: torch.Tensor) -> torch.Tensor:
        return (
            functional.softplus(x, beta=beta)
            if act == "softplus"
            else functional.leaky_relu(x)
            if act == "lrelu"
            else functional.relu(x)
        )

    def out(x: torch.Tensor) -> torch.Tensor:
        return functional.softplus(x, beta=beta) if act == "softplus" else functional.relu(x)

    feats: list[torch.Tensor] = []
    for j, p in enumerate(parents):
        x = q[:, j] if p == -1 else torch.cat([q[:, j], feats[p]], -1)
        h = hidden(x @ state[f"enc.net.{j}.net.0.weight"].T + state[f"enc.net.{j}.net.0.bias"])
        feats.append(hidden(h @ state[f"enc.net.{j}.net.2.weight"].T + state[f"enc.net.{j}.net.2.bias"]))
    x = torch.cat(feats, -1)
    n = sum(1 for k in state if k.startswith("dfnet.") and k.endswith(".weight"))
    for i in range(n):
        x = x @ state[f"dfnet.lin{i}.weight"].T + state[f"dfnet.lin{i}.bias"]
        x = hidden(x) if i < n - 1 else out(x)
    return x[:, 0]


def write_official(folder: Path, state: dict[str, torch.Tensor], config: str) -> Path:
    ckpt = folder / "checkpoints" / "checkpoint_epoch_best.tar"
    ckpt.parent.mkdir(parents=True)
    torch.save({"epoch": 7, "model_state_dict": state, "optimizer_state_dict": {"state": {}, "param_groups": []}},
               ckpt, _use_new_zipfile_serialization=False)  # fmt: skip
    (folder / "config.yaml").write_text(config)
    return ckpt


def random_poses(n: int, seed: int, joints: int = 21) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, joints, 4, generator=g) * torch.rand(n, joints, 1, generator=g).add(0.2)


def test_parent_maps_are_the_tree_and_the_released_bug() -> None:
    """``fixed`` is the SMPL tree re-indexed without the root; ``official`` is Pose-NDF's unshifted map."""
    assert list(PARENT_MAPS["fixed"][21]) == FIXED
    assert list(PARENT_MAPS["official"][21]) == OFFICIAL
    hands = PARENT_MAPS["fixed"][51]
    assert len(hands) == 51 and hands[21] == 19 and hands[36] == 20  # first finger joints hang off the wrists


@pytest.mark.parametrize("act", ["lrelu", "softplus", "relu"])
@pytest.mark.parametrize("mapping", ["official", "nrdf"])
@pytest.mark.parametrize("dims_as", ["string", "list"])
def test_load_official_equals_the_original_network(
    tmp_path: Path, act: str, mapping: str, dims_as: str
) -> None:
    """A checkpoint in the released layout (legacy serialisation, config beside it) gives the original network's
    outputs within float32 rounding, for XYZW input of any sign and norm; float64 to 1e-12."""
    parents = OFFICIAL if mapping == "official" else FIXED
    state = official_state(parents, DIMS, seed=3, decoder=mapping == "nrdf")
    dims = ", ".join(map(str, DIMS)) if dims_as == "string" else str(DIMS)
    enc = f"    act: {act}\n    beta: 100\n" + (
        f"    smpl_mapping: {','.join(map(str, FIXED))}\n" if mapping == "nrdf" else ""
    )
    config = (
        f"model:\n  DFNet:\n    dims: {dims}\n    act: {act}\n    beta: 100\n  StrEnc:\n    use: True\n{enc}"
    )
    ckpt = write_official(tmp_path, state, config)
    model = load_official(ckpt)
    assert model.config.order == "wxyz" and model.config.reduction == "mean"
    assert model.config.metric == ("posendf" if mapping == "official" else "geodesic")
    q = random_poses(300, seed=5)
    q[:7, :, 3] = 0.0  # w = 0 exactly (x > 0, where the originals' flip on w < 0 and amasskit's agree)
    q[:7, :, 0] = q[:7, :, 0].abs() + 0.1
    with torch.no_grad():
        got, want = model(q), reference(state, parents, act, 100.0, q)
    torch.testing.assert_close(got, want, rtol=2e-5, atol=2e-6)
    model64 = model.double()
    with torch.no_grad():
        got64 = model64(q.double())
        want64 = reference({k: v.double() for k, v in state.items()}, parents, act, 100.0, q.double())
    torch.testing.assert_close(got64, want64, rtol=1e-12, atol=1e-12)
    # leading batch dimensions, and sign flips of single joints change nothing (at w = 0 too)
    q[7:14, :, 3] = 0.0
    with torch.no_grad():
        got64 = model64(q.double())
    flipped = q.clone()
    flipped[:, ::2] *= -1
    with torch.no_grad():
        torch.testing.assert_close(model64(flipped.double().reshape(3, 100, 21, 4)), got64.reshape(3, 100))


def test_wrong_parent_map_is_detected(tmp_path: Path) -> None:
    """Loading the official weights with the fixed map gives other outputs (the equivalence test can fail)."""
    state = official_state(OFFICIAL, DIMS, seed=1)
    q = random_poses(50, seed=2)
    config = DistanceFieldConfig(parents="fixed", activation="lrelu", dims=tuple(DIMS), order="wxyz")
    model = DistanceField(config)
    with torch.no_grad():
        for j in range(21):
            w = state[f"enc.net.{j}.net.0.weight"]
            model.bone(j)["quat"].copy_(w[:, :4])
            if OFFICIAL[j] >= 0:
                model.bone(j)["parent"].copy_(w[:, 4:])
            model.bone(j)["bias"].copy_(state[f"enc.net.{j}.net.0.bias"])
            model.bone(j)["out"].copy_(state[f"enc.net.{j}.net.2.weight"])
            model.bone(j)["out_bias"].copy_(state[f"enc.net.{j}.net.2.bias"])
        for i, lin in enumerate(model.mlp):
            lin.weight.copy_(state[f"dfnet.lin{i}.weight"])
            lin.bias.copy_(state[f"dfnet.lin{i}.bias"])
        assert not torch.allclose(model(q), reference(state, OFFICIAL, "lrelu", 100.0, q), rtol=1e-3)
        torch.testing.assert_close(model(q), reference(state, FIXED, "lrelu", 100.0, q), rtol=2e-5, atol=2e-6)


def test_bad_checkpoints_raise_checkpoint_errors(tmp_path: Path) -> None:
    """Missing file, code-carrying pickle, missing or misshapen weights, missing config: typed errors naming the file."""
    config = "model:\n  DFNet:\n    dims: 32, 48, 16\n    act: lrelu\n    beta: 100\n"
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_official(tmp_path / "nothing.tar")

    class Payload:
        def __reduce__(self):  # would run code when unpickled
            return (print, ("pwned",))

    evil = tmp_path / "evil" / "checkpoint.tar"
    evil.parent.mkdir()
    with evil.open("wb") as fp:
        pickle.dump({"model_state_dict": {"x": Payload()}}, fp, protocol=2)
    (evil.parent / "config.yaml").write_text(config)
    with pytest.raises(CheckpointError, match="weights_only") as err:
        load_official(evil)
    assert isinstance(err.value, ValueError) and err.value.path == str(evil)

    state = official_state(OFFICIAL, DIMS, seed=0)
    del state["enc.net.4.net.2.bias"]
    with pytest.raises(CheckpointError, match=r"enc\.net\.4\.net\.2\.bias is missing"):
        load_official(write_official(tmp_path / "a", state, config))
    state = official_state(OFFICIAL, DIMS, seed=0)
    state["dfnet.lin1.weight"] = torch.zeros(5, 5)
    with pytest.raises(CheckpointError, match=r"dfnet\.lin1\.weight"):
        load_official(write_official(tmp_path / "b", state, config))
    state = official_state(OFFICIAL, DIMS, seed=0)
    state["head.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match=r"unexpected weight 'head\.weight'"):
        load_official(write_official(tmp_path / "c", state, config))
    ckpt = write_official(tmp_path / "d", official_state(OFFICIAL, DIMS, seed=0), config)
    (tmp_path / "d" / "config.yaml").unlink()
    with pytest.raises(CheckpointError, match=r"no config\.yaml"):
        load_official(ckpt)
    (tmp_path / "d" / "config.yaml").write_text("model: [1, 2]\n")
    with pytest.raises(CheckpointError, match=r"model\.DFNet"):
        load_official(ckpt)


@pytest.mark.parametrize("act", ["lrelu", "softplus"])
def test_gradients_are_finite_at_w_zero_and_identity(act: str) -> None:
    """The flip to w >= 0 and the normalisation give finite gradients at w = 0 and at the identity, and the
    double backward (the eikonal term) is finite too."""
    model = DistanceField(DistanceFieldConfig(activation=act, dims=(32, 16))).double()
    q = torch.zeros(3, 21, 4, dtype=torch.float64)
    q[0, :, 3] = 1.0  # identity
    q[1, :, 0] = 1.0  # w = 0: a half turn
    q[2] = random_poses(1, seed=9)[0].double()
    q[2, :, 3] = 0.0
    q.requires_grad_(True)
    d = model(q)
    (g,) = torch.autograd.grad(d.sum(), q, create_graph=True)
    assert torch.isfinite(g).all()
    (g.norm(dim=-1) - 1).pow(2).mean().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_hands_and_arbitrary_batch_shapes() -> None:
    """51 joints with the hands' tree; leading dimensions kept; a wrong joint count is refused."""
    model = DistanceField(DistanceFieldConfig(joints=51, dims=(16,)))
    q = random_poses(6, seed=1, joints=51).reshape(2, 3, 51, 4)
    out = model(q)
    assert out.shape == (2, 3)
    torch.testing.assert_close(out.reshape(-1), model(q.reshape(6, 51, 4)))
    with pytest.raises(InvalidArgumentError, match=r"\(\.\.\., 51, 4\)"):
        model(torch.zeros(4, 21, 4))
    with pytest.raises(InvalidArgumentError, match="official"):
        DistanceFieldConfig(joints=51, parents="official")
    with pytest.raises(InvalidArgumentError, match="earlier bone"):
        DistanceFieldConfig(joints=3, parents=(-1, 2, 0))
    assert np.isfinite(out.detach().numpy()).all()


@pytest.mark.parametrize(("activation", "order", "parents", "joints"), [
    ("softplus", "xyzw", "fixed", 21), ("lrelu", "wxyz", "official", 21), ("relu", "xyzw", "official", 21),
    ("lrelu", "xyzw", "fixed", 51), ("softplus", "wxyz", "fixed", 51),
])  # fmt: skip
def test_hand_written_gradient_is_autograds(activation: str, order: str, parents: str, joints: int) -> None:
    """value_and_grad (the chain rule written out) equals forward and autograd's gradient of it, in float64, over
    any leading dims, with quaternions of either sign, unnormalised, and on the w = 0 tie-break; field_value's
    backward is the same gradient; the Pose-NDF leaky ReLU's kink is taken as autograd takes it."""
    from amasskit.prior.field import field_value

    torch.manual_seed(0)
    field = DistanceField(DistanceFieldConfig(activation=activation, order=order, parents=parents, joints=joints,
                                              dims=(48, 32, 16))).double()  # fmt: skip
    with torch.no_grad():
        field.mlp[-1].bias.fill_(
            1.0
        )  # a positive output: the last ReLU passes gradients (as a trained field's does)
    quat = torch.randn(3, 5, joints, 4, dtype=torch.float64) * 2
    quat[0, 0, 0] = torch.tensor([-0.6, 0.2, 0.1, 0.0])  # w = 0, x < 0: flipped by the tie-break
    quat[0, 1, 3] = torch.tensor([0.0, 0.0, 0.0, -2.0])
    value, grad = field.value_and_grad(quat)
    x = quat.clone().requires_grad_(True)
    expected = field(x)
    (expected_grad,) = torch.autograd.grad(expected.sum(), x)
    torch.testing.assert_close(value, expected.detach(), rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(grad, expected_grad, rtol=1e-9, atol=1e-15)
    for p in field.parameters():
        p.requires_grad_(False)
    y = quat.clone().requires_grad_(True)
    weights = torch.rand(3, 5, dtype=torch.float64)
    (field_value(field, y) * weights).sum().backward()
    torch.testing.assert_close(y.grad, expected_grad * weights[..., None, None], rtol=1e-9, atol=1e-15)
    assert float(grad.abs().max()) > 0
