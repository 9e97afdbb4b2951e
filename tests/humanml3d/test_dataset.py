"""``amasskit.data.HumanML3D`` against the text-to-motion loaders' rules, restated plainly here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from amasskit.data import HumanML3D
from amasskit.errors import InvalidArgumentError
from amasskit.humanml3d import published_mean_std


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A HumanML3D folder: 14 motions of 30-230 frames, texts with whole and tagged captions, one motion without a
    whole caption, one without texts, one listed but not built."""
    root = tmp_path_factory.mktemp("hml")
    rng = np.random.default_rng(0)
    (root / "new_joint_vecs").mkdir()
    (root / "texts").mkdir()
    lengths = [30, 39, 40, 41, 57, 99, 120, 150, 199, 200, 230, 64, 88, 47]
    names = [f"{i:06d}" for i in range(len(lengths))]
    for name, n in zip(names, lengths, strict=True):
        np.save(root / "new_joint_vecs" / f"{name}.npy", rng.normal(size=(n, 263)).astype(np.float32))
        if name == "000013":
            continue  # no text file
        lines = [
            f"a person walks {name}#a/DET person/NOUN walk/VERB#0.0#0.0",
            "someone moves#someone/PRON move/VERB#nan#nan",
        ]
        if name == "000011":
            lines = ["only a part#only/ADV#0.5#3.2"]  # no whole-motion caption: the part alone
        if name == "000008":
            lines.append("the first half#the/DET first/ADJ half/NOUN#0.0#4.9")  # 98 frames: an entry
            lines.append("too short#too/ADV short/ADJ#1.0#2.0")  # 20 frames: none
        (root / "texts" / f"{name}.txt").write_text("\n".join(lines) + "\n")
    mean, std = rng.normal(size=263).astype(np.float32), rng.uniform(0.5, 2, 263).astype(np.float32)
    np.save(root / "Mean.npy", mean)
    np.save(root / "Std.npy", std)
    (root / "train.txt").write_text("\n".join([*names, "999999"]) + "\n")
    return root


def _expected(root: Path) -> list[tuple[str, int, int]]:
    """The loaders' entries, rule by rule: (id, first frame, frames)."""
    out = []
    for name in (root / "train.txt").read_text().split():
        path = root / "new_joint_vecs" / f"{name}.npy"
        if not path.exists():
            continue
        n = len(np.load(path))
        if n < 40 or n >= 200 or not (root / "texts" / f"{name}.txt").exists():
            continue
        whole = False
        for line in (root / "texts" / f"{name}.txt").read_text().splitlines():
            f, t = (0.0 if v == "nan" else float(v) for v in line.split("#")[2:4])
            if f == 0 and t == 0:
                whole = True
            elif 40 <= len(range(n)[int(f * 20) : int(t * 20)]) < 200:
                out.append((name, int(f * 20), len(range(n)[int(f * 20) : int(t * 20)])))
        if whole:
            out.append((name, 0, n))
    return sorted(out, key=lambda e: (e[2], e[0], e[1]))


def test_entries_follow_the_loaders_rules(folder: Path) -> None:
    data = HumanML3D(folder, "train")
    assert [(e.name, e.start, e.length) for e in data.entries] == _expected(folder)
    assert len(data) == len(_expected(folder))
    assert "000013" not in {e.name for e in data.entries}  # no texts
    without = HumanML3D(
        folder, "train", texts=False
    )  # every built motion of 40-199 frames, whole, no captions
    assert sorted(e.name for e in without.entries) == sorted(
        n for n in (folder / "train.txt").read_text().split()
        if (folder / "new_joint_vecs" / f"{n}.npy").exists() and 40 <= len(np.load(folder / "new_joint_vecs" / f"{n}.npy")) < 200
    )  # fmt: skip
    assert without[0]["caption"] == ""


def test_items_are_normalised_windows_of_whole_units(folder: Path) -> None:
    data = HumanML3D(folder, "train", seed=3)
    mean, std = np.load(folder / "Mean.npy"), np.load(folder / "Std.npy")
    lengths = []
    for epoch in range(6):
        data.set_epoch(epoch)
        for i, entry in enumerate(data.entries):
            item = data[i]
            n = int(item["length"])
            assert n % 4 == 0 and n in (entry.length // 4 * 4, (entry.length // 4 - 1) * 4)
            motion = item["motion"].numpy()
            assert motion.shape == (196, 263) and not motion[n:].any()
            source = np.load(folder / "new_joint_vecs" / f"{entry.name}.npy")[entry.start : entry.stop]
            restored = motion[:n] * std + mean
            starts = [
                s for s in range(entry.length - n + 1) if np.allclose(source[s : s + n], restored, atol=1e-5)
            ]
            assert len(starts) == 1  # a window of the entry's own frames
            assert item["caption"] in entry.captions
            lengths.append(n == entry.length // 4 * 4)
    assert 0.5 < np.mean(lengths) < 0.85  # the shorter length about one time in three
    assert np.allclose(data.inverse(item["motion"][:n]).numpy(), restored, atol=1e-6)


def test_draws_depend_on_seed_epoch_and_index_only(folder: Path) -> None:
    a, b = HumanML3D(folder, "train", seed=1), HumanML3D(folder, "train", seed=1)
    order = list(reversed(range(len(a))))
    for i in order:
        assert torch.equal(a[i]["motion"], b[i]["motion"]) and a[i]["caption"] == b[i]["caption"]
    loader = torch.utils.data.DataLoader(a, batch_size=4, num_workers=2, shuffle=False)
    batched = torch.cat([batch["motion"] for batch in loader])
    assert torch.equal(batched, torch.stack([b[i]["motion"] for i in range(len(b))]))
    b.set_epoch(1)
    assert any(not torch.equal(a[i]["motion"], b[i]["motion"]) for i in range(len(a)))


def test_published_normalisation_and_bad_input(folder: Path) -> None:
    data = HumanML3D(folder, "train", normalization="published")
    mean, std = published_mean_std()
    assert np.array_equal(data.mean, mean) and np.array_equal(data.std, std)
    with pytest.raises(InvalidArgumentError, match="no split list"):
        HumanML3D(folder, "nonesuch")
    with pytest.raises(InvalidArgumentError, match="not a HumanML3D folder"):
        HumanML3D(folder / "texts")
