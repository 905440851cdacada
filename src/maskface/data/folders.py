"""Identity-labelled image sets: one folder per identity (AT&T/ORL's s1..s40 too), Yale's flat
``subjectNN.condition`` files, and CelebA's ``identity_CelebA.txt``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from maskface.errors import DatasetError
from maskface.io.images import iter_image_files


@dataclass
class IdentitySet:
    """Images with identity labels: ``samples[i] = (path, label)``, labels index into ``names``."""

    names: list[str]
    samples: list[tuple[Path, int]]

    def by_identity(self) -> dict[str, list[Path]]:
        grouped: dict[str, list[Path]] = {name: [] for name in self.names}
        for path, label in self.samples:
            grouped[self.names[label]].append(path)
        return grouped

    @classmethod
    def from_groups(cls, groups: dict[str, list[Path]]) -> IdentitySet:
        names = sorted(name for name, paths in groups.items() if paths)
        return cls(names, [(p, i) for i, name in enumerate(names) for p in sorted(groups[name])])


def read_identity_folders(root: str | Path) -> IdentitySet:
    """``ROOT/<identity>/<image>``: every sub-folder is a person (LFW, AT&T/ORL, VGGFace2, CASIA-style sets)."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(str(root), "not a folder")
    groups = {d.name: [p for p, _ in iter_image_files([d])] for d in sorted(root.iterdir()) if d.is_dir()}
    result = IdentitySet.from_groups(groups)
    if not result.samples:
        raise DatasetError(str(root), "no identity folders with images found")
    return result


def read_yale(root: str | Path) -> IdentitySet:
    """Yale faces: flat files ``subjectNN.<condition>`` (no extension); the identity is the part before the dot."""
    root = Path(root)
    files = sorted(p for p in root.iterdir() if p.is_file() and p.name.startswith("subject"))
    if not files:
        raise DatasetError(str(root), "no Yale 'subjectNN.condition' files found")
    groups: dict[str, list[Path]] = {}
    for path in files:
        groups.setdefault(path.name.split(".")[0], []).append(path)
    return IdentitySet.from_groups(groups)


def read_celeba_identities(identity_file: str | Path, image_dir: str | Path) -> IdentitySet:
    """CelebA: ``identity_CelebA.txt`` lines ``000001.jpg 2880`` and the images in ``image_dir``."""
    identity_file, image_dir = Path(identity_file), Path(image_dir)
    if not identity_file.is_file():
        raise DatasetError(str(identity_file), "identity file not found")
    groups: dict[str, list[Path]] = {}
    for line_no, line in enumerate(identity_file.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            raise DatasetError(str(identity_file), f"line {line_no}: expected '<image> <identity>', got {line!r}")
        groups.setdefault(parts[1], []).append(image_dir / parts[0])
    return IdentitySet.from_groups(groups)
