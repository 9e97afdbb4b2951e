"""Datasets over a store: exact windows, exactly-once under workers and ranks, determinism, resume, rotations,
augmentation, padding, the device path."""

from __future__ import annotations

import itertools
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import roma
import torch

from amasskit.data import (
    Augment,
    ClipDataset,
    FrameDataset,
    Loader,
    SequenceDataset,
    ShardedBatchSampler,
    ShardedSampler,
    pad_collate,
)
from amasskit.store import Store, StoreWriter
from amasskit.topology import mirror_permutation

LENGTHS = [5, 17, 3, 40, 1, 23, 9, 31]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Sequences of awkward lengths; ``trans[:, 0]`` is the frame's row in the store, so every window is identified
    by its first frame; random rotations and joints."""
    target = tmp_path_factory.mktemp("data") / "train"
    rng = np.random.default_rng(0)
    row = 0
    writer = StoreWriter(target)
    if True:
        for i, T in enumerate(LENGTHS):
            trans = rng.normal(size=(T, 3))
            trans[:, 0] = np.arange(row, row + T)
            fields = {
                "root_orient": rng.normal(size=(T, 3)), "pose_body": rng.normal(size=(T, 21, 3)),
                "pose_hand": rng.normal(size=(T, 30, 3)) * 0.3, "trans": trans,
                "dmpls": rng.normal(size=(T, 8)), "joints": rng.normal(size=(T, 52, 3)),
            }  # fmt: skip
            writer.add({k: v.astype(np.float32) for k, v in fields.items()}, fps=30.0 + i,
                       betas=rng.normal(size=16), gender=("male", "female", "neutral")[i % 3],
                       meta={"source": f"S{i}.npz", "augmentation": "none"})  # fmt: skip
            row += T
    writer.close({"rotation": "rotvec"})
    return target


def window_ids(batch: dict[str, torch.Tensor]) -> list[int]:
    """The first frame's row of every window in a batch (unique per window)."""
    trans = batch["trans"]
    first = trans[..., 0, 0] if trans.ndim == 3 else trans[..., 0]
    return [int(x) for x in first.reshape(-1)]


@pytest.mark.parametrize(("clip", "stride"), [(1, 1), (4, 4), (8, 3), (32, 1), (41, 1)])
def test_windows_are_exactly_the_stores_slices(store: Path, clip: int, stride: int) -> None:
    ds = ClipDataset(store, clip, stride=stride)
    assert len(ds) == sum((T - clip) // stride + 1 for T in LENGTHS if clip <= T)
    s = Store(store)
    expected = [(i, k) for i, T in enumerate(LENGTHS) for k in range(0, T - clip + 1, stride)]
    assert len(expected) == len(ds)
    if not expected:
        return
    batch = ds[np.arange(len(ds))]
    for b, (i, k) in enumerate(expected):
        assert int(batch["sequence"][b]) == i and int(batch["start"][b]) == k
        assert np.array_equal(batch["pose_body"][b].numpy(), s[i]["pose_body"][k : k + clip])
    one = ds[len(ds) - 1]
    assert one["trans"].shape == (clip, 3) and one["pose_body"].shape == (clip, 21, 3)
    assert (
        one["betas"].shape == (16,)
        and one["gender"].dtype == torch.int64
        and one["fps"].dtype == torch.float64
    )
    with pytest.raises(IndexError):
        ds[len(ds)]


def test_frame_and_weights(store: Path) -> None:
    frames = FrameDataset(store)
    assert len(frames) == sum(LENGTHS)
    assert frames[7]["pose_body"].shape == (21, 3) and frames[np.array([0, 7])]["trans"].shape == (2, 3)
    clips = ClipDataset(store, 4)
    by_sequence = clips.window_weights("sequence")
    per_seq = Counter()
    seq_of = clips[np.arange(len(clips))]["sequence"].tolist()
    for s, w in zip(seq_of, by_sequence.tolist(), strict=True):
        per_seq[s] += w
    assert all(math.isclose(v, 1.0) for v in per_seq.values())


@pytest.mark.parametrize(("size", "batch"), [(97, 8), (50, 7), (13, 4)])
def test_exactly_once_over_ranks(size: int, batch: int) -> None:
    for world in (1, 2, 3, 5):
        for epoch in (0, 1):
            seen: list[int] = []
            for rank in range(world):
                sampler = ShardedBatchSampler(size, batch, seed=0, num_replicas=world, rank=rank)
                sampler.set_epoch(epoch)
                got = [int(i) for b in sampler for i in b.indices]
                assert len(list(iter(sampler))) == len(sampler)
                seen += got
            assert sorted(seen) == list(range(size))
        even = [
            len(ShardedBatchSampler(size, 1, num_replicas=world, rank=r, even=True)) for r in range(world)
        ]
        assert len(set(even)) == 1 and sum(even) == size - size % world


@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_exactly_once_and_the_same_order_whatever_the_workers(store: Path, context: str) -> None:
    ds = ClipDataset(store, 4, stride=3)
    everything = sorted(window_ids(ds[np.arange(len(ds))]))
    orders = {}
    # ranks split the windows the same way in either context (the fork case covers them); spawned workers cost
    # seconds each, so the spawn case checks one loader of two workers against no workers
    worlds = (1, 3) if context == "fork" else (1,)
    for workers in (0, 2):
        for world in worlds:
            per_rank = []
            for rank in range(world):
                options = {"num_workers": workers} | ({"multiprocessing_context": context} if workers else {})
                loader = Loader(ds, 5, seed=11, num_replicas=world, rank=rank, **options)
                loader.set_epoch(2)
                per_rank.append([window_ids(b) for b in loader])
            assert (
                sorted(itertools.chain.from_iterable(itertools.chain.from_iterable(per_rank))) == everything
            )
            orders[(workers, world)] = per_rank
    assert all(orders[(0, world)] == orders[(2, world)] for world in worlds)
    assert orders[(0, 1)] != [[window_ids(ds[np.arange(len(ds))])]]  # shuffled


def test_standard_dataloader_with_the_per_item_sampler(store: Path) -> None:
    ds = ClipDataset(store, 8, stride=2)
    loader = torch.utils.data.DataLoader(ds, batch_size=6, sampler=ShardedSampler(len(ds), seed=0))
    ids = [i for b in loader for i in window_ids(b)]
    assert sorted(ids) == sorted(window_ids(ds[np.arange(len(ds))]))


@pytest.mark.parametrize("workers", [0, 2])
def test_standard_dataloader_batches_equal_the_items_stacked(store: Path, workers: int) -> None:
    """``DataLoader(batch_size=B)`` goes through ``__getitems__`` (one gather per batch); what it yields must be
    exactly the per-item results stacked, and a per-item transform must still see single items."""
    seen_shapes = set()

    def transform(item: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        seen_shapes.add(tuple(item["trans"].shape))
        return item | {"double": item["trans"] * 2}

    for ds in (
        ClipDataset(store, 4, stride=3),
        FrameDataset(store),
        ClipDataset(store, 4, transform=transform),
    ):
        order = torch.randperm(len(ds), generator=torch.Generator().manual_seed(1)).tolist()
        loader = torch.utils.data.DataLoader(ds, batch_size=5, sampler=order, num_workers=workers)
        batches = list(loader)
        assert len(batches) == math.ceil(len(ds) / 5)
        for b, batch in enumerate(batches):
            items = [ds[i] for i in order[5 * b : 5 * b + 5]]
            assert set(batch) == set(items[0])
            for key, value in batch.items():
                expected = torch.stack([item[key] for item in items])
                assert value.dtype == expected.dtype and torch.equal(value, expected), key
    if workers == 0:
        assert seen_shapes == {(4, 3)}


def test_resume_mid_epoch_continues_with_the_unseen_batches(store: Path) -> None:
    ds = ClipDataset(store, 2, stride=1)
    full = Loader(ds, 7, seed=3, num_workers=2)
    full.set_epoch(4)
    reference = [window_ids(b) for b in full]
    first = Loader(ds, 7, seed=3, num_workers=2)
    first.set_epoch(4)
    seen = []
    for batch in first:
        seen.append(window_ids(batch))
        if len(seen) == 5:
            break
    state = first.state_dict()
    resumed = Loader(ds, 7, seed=3, num_workers=0)
    resumed.load_state_dict(state)
    rest = [window_ids(b) for b in resumed]
    assert seen + rest == reference
    with pytest.raises(ValueError, match="seed"):
        Loader(ds, 7, seed=4).load_state_dict(state)


@pytest.mark.parametrize("rotation", ["quat", "rotmat", "6d"])
def test_rotation_outputs_agree_with_the_store(store: Path, rotation: str) -> None:
    from amasskit.body import to_rotmat

    ds = ClipDataset(store, 4, rotation=rotation)
    batch = ds[np.arange(len(ds))]
    reference = ClipDataset(store, 4)[np.arange(len(ds))]
    R = to_rotmat(batch["pose_body"].double(), rotation)
    R_ref = roma.rotvec_to_rotmat(reference["pose_body"].double())
    assert torch.allclose(R, R_ref, atol=1e-5) and batch["pose_body"].dtype == torch.float32
    if rotation == "quat":
        assert batch["pose_body"].shape[-1] == 4 and bool((batch["pose_body"][..., 3] >= 0).all())


def test_augmentation_is_seeded_per_window_and_exact(store: Path) -> None:
    plain = ClipDataset(store, 4)
    rotated = ClipDataset(store, 4, augment=Augment(rotate=True, seed=5))
    index = np.arange(len(plain))
    a = rotated.gather(index, epoch=1)
    b = rotated.gather(index[::-1].copy(), epoch=1)  # another batch composition: the same per-window result
    assert torch.allclose(a["trans"], b["trans"].flip(0))
    assert not torch.allclose(a["trans"], rotated.gather(index, epoch=2)["trans"])
    base = plain.gather(index)
    # every joint turned about the vertical by one angle per window; the pelvis (joint 0) stays at trans + p
    Ra = roma.rotvec_to_rotmat(a["root_orient"].double()) @ roma.rotvec_to_rotmat(
        base["root_orient"].double()
    ).transpose(-1, -2)
    yaw = Ra[:, :1]  # (B, 1, 3, 3), the same for every frame of a window
    assert torch.allclose(Ra, yaw.expand_as(Ra), atol=1e-5)
    assert torch.allclose(yaw[..., 2, :], torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64), atol=1e-6)
    assert torch.allclose(a["joints"].double(), base["joints"].double() @ yaw.transpose(-1, -2), atol=1e-4)
    p = base["joints"][..., 0, :] - base["trans"]
    assert torch.allclose(a["joints"][..., 0, :] - a["trans"], p, atol=1e-4)
    # joint rotations are relative to their parents: unchanged as rotations (the axis-angle may be re-canonicalised)
    assert torch.allclose(
        roma.rotvec_to_rotmat(a["pose_body"]), roma.rotvec_to_rotmat(base["pose_body"]), atol=1e-5
    )


def test_mirroring_in_the_loader(store: Path) -> None:
    plain = ClipDataset(store, 4)
    mirrored = ClipDataset(store, 4, augment=Augment(mirror=1.0))
    index = np.arange(len(plain))
    base, m = plain.gather(index), mirrored.gather(index)
    flip = torch.tensor([-1.0, 1.0, 1.0])
    assert torch.allclose(m["joints"], base["joints"][:, :, mirror_permutation(52)] * flip, atol=1e-6)
    assert torch.allclose(
        m["joints"][..., 0, :] - m["trans"], base["joints"][..., 0, :] - base["trans"], atol=1e-5
    )
    perm = mirror_permutation(22)[1:] - 1
    expected = base["pose_body"][:, :, perm] * torch.tensor([1.0, -1.0, -1.0])
    assert torch.allclose(roma.rotvec_to_rotmat(m["pose_body"]), roma.rotvec_to_rotmat(expected), atol=1e-5)
    twice = Augment(mirror=1.0).apply(
        Augment(mirror=1.0).apply(_as_rotmat(base), index, 0), index, 0
    )  # mirroring twice is the identity
    assert torch.allclose(twice["pose_hand"], _as_rotmat(base)["pose_hand"], atol=1e-6)


def _as_rotmat(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = dict(batch)
    for name in ("root_orient", "pose_body", "pose_hand"):
        out[name] = roma.rotvec_to_rotmat(batch[name])
    return out


def test_pose_noise_is_small_and_keeps_the_root(store: Path) -> None:
    index = np.arange(10)
    base = ClipDataset(store, 4).gather(index)
    noisy = ClipDataset(store, 4, augment=Augment(noise=0.01, seed=1)).gather(index)
    root = roma.rotmat_geodesic_distance(roma.rotvec_to_rotmat(noisy["root_orient"].double()),
                                         roma.rotvec_to_rotmat(base["root_orient"].double()))  # fmt: skip
    assert float(root.max()) < 1e-6
    angle = roma.rotmat_geodesic_distance(roma.rotvec_to_rotmat(noisy["pose_body"].double()),
                                          roma.rotvec_to_rotmat(base["pose_body"].double()))  # fmt: skip
    assert 0.001 < float(angle.mean()) < 0.05


def test_sequences_pad_with_a_mask(store: Path) -> None:
    ds = SequenceDataset(store)
    assert len(ds) == len(LENGTHS)
    batch = pad_collate([ds[0], ds[3], ds[4]])
    assert batch["trans"].shape == (3, 40, 3) and batch["mask"].shape == (3, 40)
    assert batch["length"].tolist() == [5, 40, 1] and batch["mask"].sum(1).tolist() == [5, 40, 1]
    assert bool((batch["trans"][0, 5:] == 0).all()) and batch["betas"].shape == (3, 16)
    cropped = SequenceDataset(store, crop=10, seed=1)
    item = cropped[3]
    assert item["trans"].shape == (10, 3) and 0 <= int(item["start"]) <= 30
    s = Store(store)
    assert np.array_equal(item["trans"].numpy(), s[3]["trans"][int(item["start"]) : int(item["start"]) + 10])
    assert int(SequenceDataset(store, crop=10, seed=1)[3]["start"]) == int(item["start"])  # seeded


@pytest.mark.parametrize("device", ["cpu", "auto"])
def test_device_path_gathers_the_same(store: Path, device: str) -> None:
    index = np.array([3, 0, 11, 7])
    host = ClipDataset(store, 4, rotation="6d").gather(index)
    on_device = ClipDataset(store, 4, rotation="6d", device=device).gather(index)
    for key, value in host.items():
        assert torch.allclose(on_device[key].cpu().to(value.dtype), value), key


def test_pickled_datasets_reopen_the_store(store: Path) -> None:
    import pickle

    ds = ClipDataset(store, 4)
    ds[0]
    clone = pickle.loads(pickle.dumps(ds))
    assert clone._store is None and torch.equal(clone[5]["trans"], ds[5]["trans"])


@pytest.mark.parametrize("kind", ["as stored", "converted", "frames"])
def test_worker_batches_through_shared_slots_are_exact_and_never_overwritten(store: Path, kind: str) -> None:
    """With workers, batches come back through reused shared buffers (gathered straight into them, or copied in
    after a rotation conversion). Every batch must equal the in-process gather; batches (and views of them) that
    the caller keeps must never be overwritten by later ones; a slot is reused only once every tensor of its batch
    is gone."""
    import gc

    ds = {
        "as stored": ClipDataset(store, 2, stride=1, fields=["trans", "pose_body"]),
        "converted": ClipDataset(store, 2, stride=1, fields=["trans", "pose_body"], rotation="6d"),
        "frames": FrameDataset(store, fields=["trans", "pose_body"]),
    }[kind]
    loader = Loader(ds, 4, seed=5, num_workers=2)
    assert loader.ring is not None
    reference = Loader(ds, 4, seed=5)  # in-process
    expected = list(reference)
    kept = list(loader)  # every batch kept alive: slots run out and the ordinary hand-over takes over
    assert len(kept) == len(expected) > 4 * loader.ring.per_worker
    for got, want in zip(kept, expected, strict=True):
        assert set(got) == set(want)
        for key in want:
            assert torch.equal(got[key], want[key]), key
    del kept, got
    gc.collect()
    assert int(loader.ring.busy.sum()) == 0  # every slot back once its batch is gone
    views = []
    for batch in loader:
        views.append(batch["trans"][:, 0])  # a view of a slot outlives its batch's dict
    for view, want in zip(views, expected, strict=True):
        assert torch.equal(view, want["trans"][:, 0])
    assert int(loader.ring.busy.sum()) > 0  # the views still hold their slots
    del views, view, batch
    gc.collect()
    assert int(loader.ring.busy.sum()) == 0
