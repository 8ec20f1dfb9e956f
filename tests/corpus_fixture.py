"""A tiny face corpus in build-faces' layout, written directly (no detector): three crops of
two procedural people with landmarks, for the tests of what reads a corpus."""

import json

import cv2
import numpy as np

from pycrl.train.data.synthetic import SyntheticFaces


def tiny_corpus(root, people=((0, 2), (1, 1))):
    faces = SyntheticFaces(seed=11)
    rows = []
    for person, count in people:
        ident = f"fixture-p{person}"
        folder = root / "crops" / ident
        folder.mkdir(parents=True, exist_ok=True)
        for k in range(count):
            img, lm = faces.frame(person, k)
            img = cv2.resize(img, (256, 256), interpolation=cv2.INTER_AREA)
            lm = lm * (256.0 / img.shape[0])
            cv2.imwrite(str(folder / f"{k}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
            np.save(folder / f"{k}.npy", lm.astype(np.float32))
            rows.append({"crop": f"crops/{ident}/{k}.png", "landmarks": f"crops/{ident}/{k}.npy",
                         "photo": f"crops/{ident}/{k}.png", "identity": ident,
                         "split": "val" if person else "train", "source": "fixture", "box": [40, 40, 216, 216]})
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root
