"""Online mask synthesis speed on one core: masks per second on 150x150 dlib chips (canonical landmarks, as in
training), and on full 250x250 LFW photos with their own landmarks. Run: ``python benchmarks/mask_speed.py``."""

from __future__ import annotations

import cv2
import torch

from common import best_rate, lfw_chips, machine
from maskface.masks.synth import MaskSynthesizer

cv2.setNumThreads(1)
torch.set_num_threads(1)


def main() -> None:
    chips, _ = lfw_chips(200)
    synthesizer = MaskSynthesizer(seed=0)

    def on_chips() -> int:
        for chip in chips:
            synthesizer(chip)
        return len(chips)

    rate = best_rate(on_chips)
    print(f"machine: {machine()}\n")
    print(f"| workload | masks/s on one core |\n|---|---:|\n| 150x150 chips, random type | {rate:.0f} |")
    for kind in ("surgical", "n95", "kn95", "cloth", "gas"):
        typed = MaskSynthesizer(seed=0, mask_type=kind)

        def work(typed=typed) -> int:
            for chip in chips:
                typed(chip)
            return len(chips)

        print(f"| 150x150 chips, {kind} | {best_rate(work):.0f} |")


if __name__ == "__main__":
    main()
