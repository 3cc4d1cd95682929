#!/usr/bin/env python3
"""Peer of `fewshot data prepare` for `npm run bench`: PIL decode + resize of the same JPEGs from the same archives.

    python3 pil_prepare.py <dataset folder> <out dir> <image size> <workers>

Reads the split CSVs of the folder (which images are wanted), streams every *.tar.gz of the folder in the main
process, decodes each wanted JPEG in a pool of worker processes (PIL: decode, convert('RGB'), BOX = area resize
when the size differs), and writes the pixels into one uint8 [n, S, S, 3] file in <out dir>, by CSV order.
No checksums (the toolkit also hashes every image, which costs little next to decoding). Prints one JSON object.
Needs only numpy and PIL (no torch), so the workers fork a small process.
"""
import csv
import io
import json
import multiprocessing as mp
import os
import sys
import tarfile
import threading
import time

import numpy as np
from PIL import Image, __version__ as PIL_VERSION

IN_FLIGHT = 512
SIZE = 84


def init_worker(size):
    global SIZE
    SIZE = size


def decode(task):
    slot, data = task
    with Image.open(io.BytesIO(data)) as im:
        im = im.convert("RGB")
        if im.size != (SIZE, SIZE):
            im = im.resize((SIZE, SIZE), Image.BOX)
        return slot, im.tobytes()


def main():
    folder, out_dir, size, workers = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    slots = {}
    for split in ("train", "val", "test"):
        with open(os.path.join(folder, f"{split}.csv"), newline="") as f:
            for row in csv.DictReader(f):
                slots.setdefault(row["filename"], len(slots))
    archives = sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.endswith(".tar.gz"))
    total = len(slots)
    pixels = np.lib.format.open_memmap(os.path.join(out_dir, "pixels.npy"), mode="w+", dtype=np.uint8, shape=(total, size, size, 3))
    budget = threading.BoundedSemaphore(IN_FLIGHT)  # Pool.imap reads its input eagerly: bound the bytes in flight

    def tasks():
        for archive in archives:
            with tarfile.open(archive, "r|gz") as tar:
                for member in tar:
                    if not member.isfile():
                        continue
                    slot = slots.get(os.path.basename(member.name))
                    if slot is None:
                        continue
                    data = tar.extractfile(member).read()
                    budget.acquire()
                    yield slot, data

    started = time.perf_counter()
    done = 0
    seen = np.zeros(total, dtype=bool)
    with mp.get_context("fork").Pool(workers, initializer=init_worker, initargs=(size,)) as pool:
        for slot, raw in pool.imap_unordered(decode, tasks(), chunksize=16):
            budget.release()
            pixels[slot] = np.frombuffer(raw, dtype=np.uint8).reshape(size, size, 3)
            seen[slot] = True
            done += 1
    pixels.flush()
    wall = time.perf_counter() - started
    del pixels
    print(json.dumps({
        "images": done,
        "expected": total,
        "missing": int(total - seen.sum()),
        "wallSeconds": wall,
        "imagesPerSecond": done / wall if wall > 0 else None,
        "workers": workers,
        "archives": [os.path.basename(a) for a in archives],
        "pil": PIL_VERSION,
        "numpy": np.__version__,
    }))


if __name__ == "__main__":
    main()
