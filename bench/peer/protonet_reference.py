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
--checkpoint the run outlasts a sitting: it writes the model, Adam's state, both generators' states, the running loss
and the best-validation weights every 500 episodes, and SIGUSR1 or SIGTERM (or --deadline-seconds) stops it after the
step in progress with a checkpoint at that episode (exit 128 + the signal's number; 75 at the deadline); the same
command resumes it, with the same weights as a run never stopped. With --test-file, a finished run tests its last and
its best-validation weights on that episode file.

--device cuda holds the images on the GPU and runs the same augmentation batched in torch (`augment_batch`, float32,
TF32 off); its random draws come from the same numpy generator in another order (`draw_augment_batch`), so it is a
different sample of the same protocol, not the CPU run's numbers. `--check-augment` compares the two paths on the same
draws (on the GPU: largest difference 6e-5 before rounding). Contiguous (NCHW) tensors and tcmalloc on the CPU: on
this machine, one thread, a training step took 1.2 s that way and 8 s in channels_last with jemalloc (measured beside
two trainings, so both slower than alone); on an H200, four runs at once took about 30 ms a step each and two
about 15 ms (Python and kernel launches, not the GPU, bound it).
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
    pad = round(8 * img.shape[0] / 84)
    top, left = rng.integers(0, 2 * pad + 1, size=2)
    order = rng.permutation(3)
    factors = [rng.uniform(0.6, 1.4) for _ in order]
    flip = rng.random() < 0.5
    return np.round(augment_with(img, top, left, order, factors, flip)).astype(np.uint8)


GRAY_WEIGHTS = (0.299, 0.587, 0.114)


def augment_with(img, top, left, order, factors, flip):
    """The augmentation with its random draws given: crop offsets into the zero-padded image, the order of the three
    jitter operations (0 brightness, 1 contrast, 2 saturation) and the factor of each in that order, the flip; float."""
    size = img.shape[0]
    pad = round(8 * size / 84)
    padded = np.zeros((size + 2 * pad, size + 2 * pad, 3), np.float32)
    padded[pad:pad + size, pad:pad + size] = img
    x = padded[top:top + size, left:left + size]
    gray_weights = np.array(GRAY_WEIGHTS, np.float32)
    for op, f in zip(order, factors):
        if op == 0:
            x = np.clip(x * f, 0, 255)
        elif op == 1:
            mean = float((x @ gray_weights).mean())
            x = np.clip((x - mean) * f + mean, 0, 255)
        else:
            g = (x @ gray_weights)[..., None]
            x = np.clip((x - g) * f + g, 0, 255)
    return x[:, ::-1] if flip else x


def draw_augment_batch(rng, n, size):
    """The random draws of `augment` for n images at once (the batched path's own stream, not the per-image order)."""
    pad = round(8 * size / 84)
    return {'top': rng.integers(0, 2 * pad + 1, size=n), 'left': rng.integers(0, 2 * pad + 1, size=n),
            'order': rng.permuted(np.tile(np.arange(3), (n, 1)), axis=1), 'factors': rng.uniform(0.6, 1.4, size=(n, 3)),
            'flip': rng.random(n) < 0.5}


def augment_batch(x_u8, draws, rounded=True):
    """`augment_with` for a batch [n, S, S, 3] of uint8 images on any torch device, with draws from
    `draw_augment_batch`: the same operations in float32, every image's operation order selected elementwise. Float,
    rounded as the per-image path's uint8 unless `rounded` is false."""
    n, size = x_u8.shape[0], x_u8.shape[1]
    dev = x_u8.device
    pad = round(8 * size / 84)
    padded = torch.zeros((n, size + 2 * pad, size + 2 * pad, 3), dtype=torch.float32, device=dev)
    padded[:, pad:pad + size, pad:pad + size] = x_u8.float()
    steps = torch.arange(size, device=dev)
    rows = (torch.as_tensor(draws['top'], device=dev)[:, None] + steps)[:, :, None]
    cols = (torch.as_tensor(draws['left'], device=dev)[:, None] + steps)[:, None, :]
    x = padded[torch.arange(n, device=dev)[:, None, None], rows, cols]
    gray_weights = torch.tensor(GRAY_WEIGHTS, dtype=torch.float32, device=dev)
    order = torch.as_tensor(draws['order'], device=dev)
    factors = torch.as_tensor(draws['factors'], dtype=torch.float32, device=dev)
    for k in range(3):
        f = factors[:, k].view(n, 1, 1, 1)
        op = order[:, k].view(n, 1, 1, 1)
        gray = (x @ gray_weights)[..., None]
        mean = gray.mean(dim=(1, 2, 3), keepdim=True)
        brightness = (x * f).clamp(0, 255)
        contrast = ((x - mean) * f + mean).clamp(0, 255)
        saturation = ((x - gray) * f + gray).clamp(0, 255)
        x = torch.where(op == 0, brightness, torch.where(op == 1, contrast, saturation))
    x = torch.where(torch.as_tensor(draws['flip'], device=dev).view(n, 1, 1, 1), x.flip(2), x)
    return x.round() if rounded else x


def check_augment(pixels, device, n=256, seed=1):
    """The batched path against the per-image one on the same draws: largest difference before rounding."""
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(pixels), size=n, replace=False))
    imgs = np.asarray(pixels[idx])
    draws = draw_augment_batch(rng, n, imgs.shape[1])
    x = torch.from_numpy(imgs).to(device)
    unrounded = augment_batch(x, draws, rounded=False).cpu().numpy()
    per_image = np.stack([augment_with(imgs[i], draws['top'][i], draws['left'][i], draws['order'][i], draws['factors'][i], draws['flip'][i]) for i in range(n)])
    # Rounded values may still differ by one where float32 sums in another order fall on the other side of a .5.
    rounded_differ = int((augment_batch(x, draws).cpu().numpy() != np.round(per_image)).sum())
    return float(np.abs(unrounded - per_image).max()), rounded_differ, per_image.size


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


def portable_path(arg):
    """An argument as the record shows it: a results file holds no absolute path of the machine it ran on (a path
    inside the working folder becomes relative; one outside keeps only its last component)."""
    if not os.path.isabs(arg):
        return arg
    rel = os.path.relpath(arg)
    return rel if not rel.startswith('..') else os.path.join('<outside>', os.path.basename(arg))


def normalize(x_float, mean, std):
    """Rounded float pixels [n, S, S, 3] (the batched augmentation's output) to the network's NCHW input."""
    return ((x_float / 255.0 - mean) / std).permute(0, 3, 1, 2).contiguous()


def evaluate(model, pixels, episodes, way, shot, mean, std, device, per_forward):
    """Accuracy per episode (batch norm in inference mode); `per_forward` episodes share one forward pass, which in
    inference mode changes nothing but the summation order."""
    model.eval()
    query = len(episodes[0][2]) // way
    labels = torch.arange(way, device=device).repeat_interleave(query)
    accs = []
    with torch.no_grad():
        for start in range(0, len(episodes), per_forward):
            chunk = episodes[start:start + per_forward]
            items = [i for _, support, q in chunk for i in support + q]  # label-major rows (the episode file's encoding)
            if isinstance(pixels, torch.Tensor):
                x = normalize(pixels[torch.as_tensor(items, device=device)].float(), mean, std)
            else:
                x = to_tensor(np.asarray(pixels[items]), mean, std)
            z = model(x)
            z = z.reshape(len(chunk), -1, z.shape[-1])
            for e in range(len(chunk)):
                pred = proto_logits(z[e], way, shot).argmax(1)
                accs.append((pred == labels).float().mean().item())
    model.train()
    accs = np.array(accs)
    return {'mean': float(accs.mean()), 'ci95': float(1.96 * accs.std(ddof=1) / np.sqrt(len(accs))), 'n': len(accs)}


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--cache', required=True)
    ap.add_argument('--val-file', help='the fixed val episode file (required to train)')
    ap.add_argument('--out', help='the output JSON (required to train)')
    ap.add_argument('--shot', type=int, default=1)
    ap.add_argument('--way', type=int, default=5)
    ap.add_argument('--query', type=int, default=15)
    ap.add_argument('--episodes', type=int, default=8000)
    ap.add_argument('--val-every', type=int, default=2000)
    ap.add_argument('--val-episodes', type=int, default=600)
    ap.add_argument('--test-file', help='after the last episode, test the last and the best-validation weights on this episode file')
    ap.add_argument('--test-episodes', type=int, default=0, help='the first N episodes of --test-file (0: all)')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--device', default='cpu', help="'cpu' (per-image numpy augmentation, as the CPU runs so far) or "
                    "'cuda' (images held on the GPU, the same augmentation batched in torch, TF32 off)")
    ap.add_argument('--batched', action='store_true', help="the GPU's batched path on the CPU too (to test it)")
    ap.add_argument('--checkpoint', help='resume from this file if it exists; written every --checkpoint-every episodes '
                    'and when SIGUSR1 or SIGTERM stops the run (at the episode reached)')
    ap.add_argument('--checkpoint-every', type=int, default=500)
    ap.add_argument('--deadline-seconds', type=float, default=0, help='stop as at SIGUSR1 once this sitting has run '
                    'this long (exit 75, resumable)')
    ap.add_argument('--check-augment', action='store_true', help='compare the batched augmentation with the '
                    'per-image one on 256 train images of --cache on --device, print the result and exit (1 on a mismatch)')
    args = ap.parse_args()
    if not args.check_augment and not (args.val_file and args.out):
        ap.error('training needs --val-file and --out')
    return args


def setup_torch(args):
    """Threads, seeds and the device; returns (device, batched)."""
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    if device.type == 'cuda':
        # Full float32, as on the CPU: no TF32 in convolutions or matrix products.
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.benchmark = True
    return device, device.type != 'cpu' or args.batched


class Data:
    """The cache's train and val images (on the device when batched), its normalisation, the val episodes and the
    sha256 of every file read."""

    def __init__(self, args, device):
        manifest = json.load(open(os.path.join(args.cache, 'manifest.json')))
        self.size = manifest['imageSize']
        self.mean = torch.tensor(manifest['normalization']['mean'], dtype=torch.float32, device=device)
        self.std = torch.tensor(manifest['normalization']['std'], dtype=torch.float32, device=device)
        self.train_px, _, self.train_by_class = load_split(args.cache, 'train', self.size)

    def load_val(self, args, device, batched):
        val_px, _, _ = load_split(args.cache, 'val', self.size)
        val_file = json.load(open(args.val_file))
        assert val_file['spec'] == {'way': args.way, 'shot': args.shot, 'query': args.query}, val_file['spec']
        self.val_episodes = val_file['episodes'][:args.val_episodes]
        self.inputs = {name: sha256_file(os.path.join(args.cache, name)) for name in ['train.u8', 'train.items.csv', 'val.u8', 'val.items.csv']}
        self.inputs[os.path.basename(args.val_file)] = sha256_file(args.val_file)
        if batched:
            self.train_px = torch.from_numpy(np.asarray(self.train_px)).to(device)
            val_px = torch.from_numpy(np.asarray(val_px)).to(device)
        self.val_px = val_px


def run_check_augment(args, data, device):
    max_diff, rounded_differ, values = check_augment(data.train_px, device)
    ok = max_diff < 1e-3
    print(json.dumps({'check': 'augment', 'device': args.device, 'max_abs_diff_before_rounding': max_diff,
                      'rounded_values_differing': rounded_differ, 'values': values, 'ok': ok}))
    sys.exit(0 if ok else 1)


def new_record(args, inputs, device, batched):
    return {
        'what': 'independent PyTorch ProtoNet under the cpu-84px protocol (bench/peer/protonet_reference.py)',
        'command': ' '.join(['bench/peer/protonet_reference.py'] + [portable_path(a) for a in sys.argv[1:]]),
        'seed': args.seed, 'way': args.way, 'shot': args.shot, 'query': args.query, 'episodes': args.episodes,
        'torch': torch.__version__, 'numpy': np.__version__, 'threads': args.threads,
        'device': torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu',
        'augmentation': 'batched torch (draw_augment_batch)' if batched else 'per-image numpy',
        'allocator': os.path.basename(os.environ.get('LD_PRELOAD', '')) or 'glibc',
        'inputs_sha256': inputs, 'train': [], 'validation': [], 'episodes_done': 0,
    }


class Run:
    """One sitting of the training: the model, Adam, the generator, the record and the running loss, with the
    checkpoint that carries them across sittings."""

    def __init__(self, args, data, device, batched, t0):
        self.args, self.data, self.device, self.batched, self.t0 = args, data, device, batched, t0
        self.rng = np.random.default_rng(args.seed)
        self.model = Conv4().to(device)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
        self.labels = torch.arange(args.way, device=device).repeat_interleave(args.query)
        self.record = new_record(args, data.inputs, device, batched)
        # Wall time of earlier sittings, so a resumed run reports its total.
        self.wall_before = 0.0
        self.best = {'episode': None, 'mean': -1.0, 'state': None}
        self.loss_sum, self.loss_n = torch.zeros((), dtype=torch.float64, device=device), 0
        self.per_forward = 50 if batched else 1

    def write(self):
        args = self.args
        self.record['wall_seconds'] = round(self.wall_before + time.time() - self.t0, 1)
        tmp = args.out + '.tmp'
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(tmp, 'w') as f:
            json.dump(self.record, f, indent=1)
        os.replace(tmp, args.out)

    def save_checkpoint(self, episode):
        args = self.args
        if not args.checkpoint:
            return
        tmp = args.checkpoint + '.tmp'
        os.makedirs(os.path.dirname(os.path.abspath(args.checkpoint)), exist_ok=True)
        torch.save({'episode': episode, 'model': self.model.state_dict(), 'opt': self.opt.state_dict(),
                    'numpy_rng': self.rng.bit_generator.state, 'torch_rng': torch.get_rng_state(),
                    'loss_sum': float(self.loss_sum), 'loss_n': self.loss_n, 'record': self.record, 'best': self.best,
                    'wall_before': self.wall_before + time.time() - self.t0}, tmp)
        os.replace(tmp, args.checkpoint)

    def resume(self):
        """The first episode to run: 1, or the one after the checkpoint's."""
        args = self.args
        if not (args.checkpoint and os.path.exists(args.checkpoint)):
            return 1
        # On the CPU: the generator state must stay a CPU tensor; load_state_dict copies weights onto the device.
        state = torch.load(args.checkpoint, map_location='cpu', weights_only=False)
        if state['record']['inputs_sha256'] != self.data.inputs or state['record']['seed'] != args.seed or state['record']['shot'] != args.shot:
            sys.exit(f'[reference] {args.checkpoint} is of another run (seed, shot or data differ); remove it or pass another --checkpoint')
        self.model.load_state_dict(state['model'])
        self.opt.load_state_dict(state['opt'])
        self.rng.bit_generator.state = state['numpy_rng']
        torch.set_rng_state(state['torch_rng'])
        self.loss_sum += state['loss_sum']
        self.loss_n, self.wall_before = state['loss_n'], state['wall_before']
        if state.get('best'):
            self.best.update(state['best'])
        sittings = state['record'].get('sittings', 1) + 1
        self.record.update({k: state['record'][k] for k in ['train', 'validation', 'episodes_done']}, sittings=sittings,
                           command=self.record['command'])
        print(f'[reference] resuming at episode {state["episode"]} of {args.episodes} from {args.checkpoint}', file=sys.stderr, flush=True)
        return state['episode'] + 1

    def evaluate(self, pixels, episodes):
        d, a = self.data, self.args
        return evaluate(self.model, pixels, episodes, a.way, a.shot, d.mean, d.std, self.device, self.per_forward)

    def validate(self, episode):
        entry = {'episode': episode, **self.evaluate(self.data.val_px, self.data.val_episodes)}
        self.record['validation'].append(entry)
        if entry['mean'] > self.best['mean']:
            self.best.update(episode=episode, mean=entry['mean'], state={k: v.detach().clone() for k, v in self.model.state_dict().items()})
        print(f'[reference] validation at {episode}: {100 * entry["mean"]:.2f} +- {100 * entry["ci95"]:.2f}', file=sys.stderr, flush=True)

    def episode_images(self):
        """A training episode's augmented, normalised images: support then query, label-major."""
        args, d, rng = self.args, self.data, self.rng
        per_class = args.shot + args.query
        classes = rng.choice(len(d.train_by_class), size=args.way, replace=False)
        picks = [rng.choice(d.train_by_class[c], size=per_class, replace=False) for c in classes]
        items = [p[k] for p in picks for k in range(args.shot)] + [p[k] for p in picks for k in range(args.shot, per_class)]
        if self.batched:
            draws = draw_augment_batch(rng, len(items), d.size)
            return normalize(augment_batch(d.train_px[torch.as_tensor(np.array(items), device=self.device)], draws), d.mean, d.std)
        return to_tensor(np.stack([augment(d.train_px[i], rng) for i in items]), d.mean, d.std)

    def step(self, episode):
        loss = F.cross_entropy(proto_logits(self.model(self.episode_images()), self.args.way, self.args.shot), self.labels)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.loss_sum += loss.detach().double()  # read back every 100 episodes, not every step
        self.loss_n += 1
        if episode % 100 == 0:
            mean_loss = self.loss_sum.item() / self.loss_n
            self.record['train'].append({'episode': episode, 'loss': mean_loss})
            print(f'[reference] episode {episode}/{self.args.episodes} loss {mean_loss:.4f} ({time.time() - self.t0:.0f} s)', file=sys.stderr, flush=True)
            self.loss_sum.zero_()
            self.loss_n = 0
            self.record['episodes_done'] = episode

    def stop(self, episode, why):
        """Checkpoint at the last whole episode and exit (75 at the deadline, 128 + the signal's number)."""
        self.save_checkpoint(episode - 1)
        self.record['episodes_done'] = episode - 1
        self.write()
        print(f'[reference] stopped by {why}, checkpoint at episode {episode - 1} of {self.args.episodes}', file=sys.stderr, flush=True)
        sys.exit(75 if why == 'deadline' else 128 + getattr(signal, why))

    def test(self):
        """The last and the best-validation weights on --test-file."""
        args = self.args
        test_file = json.load(open(args.test_file))
        assert test_file['spec'] == {'way': args.way, 'shot': args.shot, 'query': args.query}, test_file['spec']
        test_episodes = test_file['episodes'][:args.test_episodes or None]
        test_px, _, _ = load_split(args.cache, 'test', self.data.size)
        self.record['test_inputs_sha256'] = {name: sha256_file(os.path.join(args.cache, name)) for name in ['test.u8', 'test.items.csv']}
        self.record['test_inputs_sha256'][os.path.basename(args.test_file)] = sha256_file(args.test_file)
        if self.batched:
            test_px = torch.from_numpy(np.asarray(test_px)).to(self.device)
        self.record['test'] = {'last': {'episode': args.episodes, **self.evaluate(test_px, test_episodes)}}
        if self.best['state'] is not None:
            self.model.load_state_dict(self.best['state'])
            self.record['test']['best_validation'] = {'episode': self.best['episode'], **self.evaluate(test_px, test_episodes)}
        for which, r in self.record['test'].items():
            print(f'[reference] test ({which} weights, episode {r["episode"]}): {100 * r["mean"]:.2f} +- {100 * r["ci95"]:.2f} (n={r["n"]})', file=sys.stderr, flush=True)


def main():
    args = parse_args()
    device, batched = setup_torch(args)
    t0 = time.time()
    data = Data(args, device)
    if args.check_augment:
        run_check_augment(args, data, device)
    data.load_val(args, device, batched)
    print(f'[reference] data loaded and hashed in {time.time() - t0:.0f} s', file=sys.stderr, flush=True)
    run = Run(args, data, device, batched, t0)

    # A stop request is acted on between steps, so the checkpoint is of a whole episode (like the toolkit's SIGUSR1).
    stop = {'signal': None}

    def request_stop(signum, _frame):
        stop['signal'] = signal.Signals(signum).name
    signal.signal(signal.SIGUSR1, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    for episode in range(run.resume(), args.episodes + 1):
        if not stop['signal'] and args.deadline_seconds and time.time() - t0 > args.deadline_seconds:
            stop['signal'] = 'deadline'
        if stop['signal']:
            run.stop(episode, stop['signal'])
        run.step(episode)
        if episode % args.val_every == 0 or episode == args.episodes:
            run.validate(episode)
            run.write()
        if episode % args.checkpoint_every == 0 or episode == args.episodes:
            run.save_checkpoint(episode)
    if args.test_file and run.record['episodes_done'] == args.episodes:
        run.test()
    run.write()


if __name__ == '__main__':
    main()
