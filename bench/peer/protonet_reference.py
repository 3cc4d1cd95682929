#!/usr/bin/env python3
"""An independent PyTorch ProtoNet training under the cpu-84px protocol of the protonet-paper table, to hold our
training curve against. Not part of the toolkit and never one of its dependencies (Debian's python3-torch).

Protocol (Chen et al., ICLR 2019, as `experiments/protonet-chen-84px-5w1s.json` runs it): Conv-4 at 84 px (4 x
[3x3 conv 64 no bias, He-normal fan-out init, BatchNorm, ReLU, 2x2 max-pool], 1,600-d), 5-way episodes with 15
queries per class, logits = -squared Euclidean distance to the class means, cross-entropy, Adam 1e-3 constant,
MetaOptNet's augmentation (RandomCrop 84 with 8 px zero padding, ColorJitter 0.4/0.4/0.4 in a random order,
horizontal flip) on uint8 RGB, then the cache's normalisation; validation on the first N episodes of our fixed val
episode file with batch norm in inference mode (running statistics), accuracy as mean and 1.96 * sd / sqrt(N).

What it shares with the toolkit is only data: the decoded 84 px images of `fewshot data prepare` (the cache folder:
`<split>.u8`, uint8 [n, 84, 84, 3], and `<split>.items.csv`, items grouped by class) and the val episode file. The
training episodes, the augmentation's random draws and the initial weights come from this script's own generators,
so the two curves are compared as samples, within their CIs, not value for value.

  OMP_WAIT_POLICY=PASSIVE LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 \
      /usr/bin/python3 bench/peer/protonet_reference.py \
      --cache .cache/mini-imagenet-84 --val-file episodes/mini-imagenet/val_5w1s15q_seed0_1000.json \
      --shot 1 --episodes 8000 --checkpoint runs/reference/protonet-chen-84px-5w1s-torch.pt \
      --out results/mini-imagenet/reference/protonet-chen-84px-5w1s-torch.json

The output JSON is rewritten after every validation (so a stopped run keeps its curve so far), with the command, the
seed, the versions, the sha256 of every data file read, and the wall time (of all sittings together). With
--checkpoint the run outlasts a sitting: it writes the model, Adam's state, both generators' states and the running
loss every 500 episodes, and SIGUSR1 or SIGTERM stops it after the step in progress with a checkpoint at that episode
(exit 128 + the signal's number); the same command resumes it, with the same weights as a run never stopped. Contiguous (NCHW) tensors and tcmalloc: on
this machine, one thread, a training step took 1.2 s that way and 8 s in channels_last with jemalloc (measured
beside two trainings, so both slower than alone).
"""
import argparse
import csv
import hashlib
import json
import os
import signal
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 24), b''):
            h.update(block)
    return h.hexdigest()


def load_split(cache, split, size):
    labels = [row['label'] for row in csv.DictReader(open(os.path.join(cache, f'{split}.items.csv'), newline=''))]
    # Mapped, not read: only the images an episode uses are paged in (the train split is 0.8 GB at 84 px).
    pixels = np.memmap(os.path.join(cache, f'{split}.u8'), dtype=np.uint8, mode='r', shape=(len(labels), size, size, 3))
    classes = list(dict.fromkeys(labels))
    by_class = [np.array([i for i, l in enumerate(labels) if l == c]) for c in classes]
    return pixels, classes, by_class


def augment(img, rng):
    """MetaOptNet's training augmentation on one uint8 HWC image (torchvision's RandomCrop(84, padding=8), ColorJitter
    with brightness/contrast/saturation 0.4 applied in a random order, RandomHorizontalFlip)."""
    size = img.shape[0]
    pad = round(8 * size / 84)
    padded = np.zeros((size + 2 * pad, size + 2 * pad, 3), np.float32)
    padded[pad:pad + size, pad:pad + size] = img
    top, left = rng.integers(0, 2 * pad + 1, size=2)
    x = padded[top:top + size, left:left + size]
    gray_weights = np.array([0.299, 0.587, 0.114], np.float32)
    for op in rng.permutation(3):
        f = rng.uniform(0.6, 1.4)
        if op == 0:
            x = np.clip(x * f, 0, 255)
        elif op == 1:
            mean = float((x @ gray_weights).mean())
            x = np.clip((x - mean) * f + mean, 0, 255)
        else:
            g = (x @ gray_weights)[..., None]
            x = np.clip((x - g) * f + g, 0, 255)
    if rng.random() < 0.5:
        x = x[:, ::-1]
    return np.round(x).astype(np.uint8)


class Conv4(nn.Module):
    def __init__(self, width=64):
        super().__init__()
        self.convs = nn.ModuleList([nn.Conv2d(3 if i == 0 else width, width, 3, padding=1, bias=False) for i in range(4)])
        self.norms = nn.ModuleList([nn.BatchNorm2d(width, eps=1e-5, momentum=0.1) for _ in range(4)])
        for conv in self.convs:
            nn.init.normal_(conv.weight, 0.0, (2.0 / (3 * 3 * width)) ** 0.5)

    def forward(self, x):
        for conv, bn in zip(self.convs, self.norms):
            x = F.max_pool2d(F.relu(bn(conv(x))), 2)
        return x.flatten(1)


def proto_logits(z, way, shot):
    support, query = z[:way * shot], z[way * shot:]
    protos = support.reshape(way, shot, -1).mean(1)
    return -((query[:, None, :] - protos[None]) ** 2).sum(-1)


def to_tensor(batch_u8, mean, std):
    x = torch.from_numpy(batch_u8).float().div_(255.0)
    x = (x - mean) / std
    return x.permute(0, 3, 1, 2).contiguous()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--cache', required=True)
    ap.add_argument('--val-file', required=True)
    ap.add_argument('--out', required=True)
    ap.add_argument('--shot', type=int, default=1)
    ap.add_argument('--way', type=int, default=5)
    ap.add_argument('--query', type=int, default=15)
    ap.add_argument('--episodes', type=int, default=8000)
    ap.add_argument('--val-every', type=int, default=2000)
    ap.add_argument('--val-episodes', type=int, default=600)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--checkpoint', help='resume from this file if it exists; written every --checkpoint-every episodes '
                    'and when SIGUSR1 or SIGTERM stops the run (at the episode reached)')
    ap.add_argument('--checkpoint-every', type=int, default=500)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    t0 = time.time()

    manifest = json.load(open(os.path.join(args.cache, 'manifest.json')))
    size = manifest['imageSize']
    mean = torch.tensor(manifest['normalization']['mean'], dtype=torch.float32)
    std = torch.tensor(manifest['normalization']['std'], dtype=torch.float32)
    train_px, _, train_by_class = load_split(args.cache, 'train', size)
    val_px, _, _ = load_split(args.cache, 'val', size)
    val_file = json.load(open(args.val_file))
    assert val_file['spec'] == {'way': args.way, 'shot': args.shot, 'query': args.query}, val_file['spec']
    val_episodes = val_file['episodes'][:args.val_episodes]
    inputs = {name: sha256_file(os.path.join(args.cache, name)) for name in ['train.u8', 'train.items.csv', 'val.u8', 'val.items.csv']}
    inputs[os.path.basename(args.val_file)] = sha256_file(args.val_file)
    print(f'[reference] data loaded and hashed in {time.time() - t0:.0f} s', file=sys.stderr, flush=True)

    model = Conv4()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    labels = torch.arange(args.way).repeat_interleave(args.query)
    record = {
        'what': 'independent PyTorch ProtoNet under the cpu-84px protocol (bench/peer/protonet_reference.py)',
        'command': ' '.join(['bench/peer/protonet_reference.py'] + sys.argv[1:]),
        'seed': args.seed, 'way': args.way, 'shot': args.shot, 'query': args.query, 'episodes': args.episodes,
        'torch': torch.__version__, 'numpy': np.__version__, 'threads': args.threads,
        'allocator': os.path.basename(os.environ.get('LD_PRELOAD', '')) or 'glibc',
        'inputs_sha256': inputs, 'train': [], 'validation': [], 'episodes_done': 0,
    }

    # Wall time of earlier sittings, so a resumed run reports its total.
    wall_before = 0.0

    def write():
        record['wall_seconds'] = round(wall_before + time.time() - t0, 1)
        tmp = args.out + '.tmp'
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(tmp, 'w') as f:
            json.dump(record, f, indent=1)
        os.replace(tmp, args.out)

    # A stop request is acted on between steps, so the checkpoint is of a whole episode (like the toolkit's SIGUSR1).
    stop = {'signal': None}

    def request_stop(signum, _frame):
        stop['signal'] = signal.Signals(signum).name
    signal.signal(signal.SIGUSR1, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    def save_checkpoint(episode):
        if not args.checkpoint:
            return
        tmp = args.checkpoint + '.tmp'
        os.makedirs(os.path.dirname(os.path.abspath(args.checkpoint)), exist_ok=True)
        torch.save({'episode': episode, 'model': model.state_dict(), 'opt': opt.state_dict(),
                    'numpy_rng': rng.bit_generator.state, 'torch_rng': torch.get_rng_state(),
                    'loss_sum': loss_sum, 'loss_n': loss_n, 'record': record,
                    'wall_before': wall_before + time.time() - t0}, tmp)
        os.replace(tmp, args.checkpoint)

    def validate(episode):
        model.eval()
        accs = []
        with torch.no_grad():
            for classes, support, query in val_episodes:
                items = support + query  # rows of the split, label-major (the episode file's encoding)
                z = model(to_tensor(val_px[items], mean, std))
                pred = proto_logits(z, args.way, args.shot).argmax(1)
                accs.append((pred == labels).float().mean().item())
        model.train()
        accs = np.array(accs)
        entry = {'episode': episode, 'mean': float(accs.mean()), 'ci95': float(1.96 * accs.std(ddof=1) / np.sqrt(len(accs))), 'n': len(accs)}
        record['validation'].append(entry)
        print(f'[reference] validation at {episode}: {100 * entry["mean"]:.2f} +- {100 * entry["ci95"]:.2f}', file=sys.stderr, flush=True)

    loss_sum, loss_n = 0.0, 0
    start = 1
    if args.checkpoint and os.path.exists(args.checkpoint):
        state = torch.load(args.checkpoint)
        if state['record']['inputs_sha256'] != inputs or state['record']['seed'] != args.seed or state['record']['shot'] != args.shot:
            sys.exit(f'[reference] {args.checkpoint} is of another run (seed, shot or data differ); remove it or pass another --checkpoint')
        model.load_state_dict(state['model'])
        opt.load_state_dict(state['opt'])
        rng.bit_generator.state = state['numpy_rng']
        torch.set_rng_state(state['torch_rng'])
        loss_sum, loss_n, wall_before = state['loss_sum'], state['loss_n'], state['wall_before']
        sittings = state['record'].get('sittings', 1) + 1
        record.update({k: state['record'][k] for k in ['train', 'validation', 'episodes_done']}, sittings=sittings,
                      command=record['command'])
        start = state['episode'] + 1
        print(f'[reference] resuming at episode {state["episode"]} of {args.episodes} from {args.checkpoint}', file=sys.stderr, flush=True)
    per_class = args.shot + args.query
    for episode in range(start, args.episodes + 1):
        if stop['signal']:
            save_checkpoint(episode - 1)
            record['episodes_done'] = episode - 1
            write()
            print(f'[reference] stopped by {stop["signal"]}, checkpoint at episode {episode - 1} of {args.episodes}', file=sys.stderr, flush=True)
            sys.exit(128 + getattr(signal, stop['signal']))
        classes = rng.choice(len(train_by_class), size=args.way, replace=False)
        picks = [rng.choice(train_by_class[c], size=per_class, replace=False) for c in classes]
        items = [p[k] for p in picks for k in range(args.shot)] + [p[k] for p in picks for k in range(args.shot, per_class)]
        batch = np.stack([augment(train_px[i], rng) for i in items])
        loss = F.cross_entropy(proto_logits(model(to_tensor(batch, mean, std)), args.way, args.shot), labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss_sum += loss.item()
        loss_n += 1
        if episode % 100 == 0:
            record['train'].append({'episode': episode, 'loss': loss_sum / loss_n})
            print(f'[reference] episode {episode}/{args.episodes} loss {loss_sum / loss_n:.4f} ({time.time() - t0:.0f} s)', file=sys.stderr, flush=True)
            loss_sum, loss_n = 0.0, 0
            record['episodes_done'] = episode
        if episode % args.val_every == 0 or episode == args.episodes:
            validate(episode)
            write()
        if episode % args.checkpoint_every == 0 or episode == args.episodes:
            save_checkpoint(episode)
    write()


if __name__ == '__main__':
    main()
