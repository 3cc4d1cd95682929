#!/usr/bin/env python3
"""PyTorch-CPU peer of `npm run bench` (bench/run.ts): the same ProtoNet / ProtoNet+SLA steps as the toolkit.

Not part of the toolkit and never one of its dependencies: the bench starts it as a subprocess with Debian's
python3-torch. Protocol: one JSON request per line on stdin, one JSON response per line on stdout (nothing else is
ever written to stdout; logs go to stderr). Requests (`op`):

  hello                     versions and thread settings
  train / eval              time a workload: {method, backbone, imageSize, way, shot, query, episodes, inputs,
                            weights, threads, policy, head?} -> {warmup: [...], timesMs: [...], firstScores?, ...}
  memory                    RSS before/after `steps` training episodes
  head                      time a MetaOptNet head on fixed embeddings (bench/peer/qp_heads.py): {head, way, shot,
                            query, rotations, dim, episodes, inputs, svmC, ridgeLambda, scale, threads, policy}
  quit

The model is the one of src/backbones/conv4.ts + src/learners/protonet/index.ts + src/methods/{plain,sla}.ts:
Conv-4 = 4 x [conv3x3 64 no bias, BatchNorm (training mode in train), ReLU, maxpool 2], support and query embedded in
one batch, prototypes = class means, logits = -squared Euclidean distance, cross-entropy over the queries, Adam
(lr 1e-3, betas 0.9/0.999, eps 1e-8). SLA: every image expanded to its 4 rotations torch.rot90(x, k, (2, 3)) in
image-major order (row b*4 + k), joint label y*4 + k, 20-way joint episode, joint CE; evaluation aggregates the
joint logits over the 4 rotations (SLA+AG) and also computes SLA+SI, as the toolkit's predict does.

MetaOptNet end to end (metaoptnet-svm[-sla], metaoptnet-rr[-sla]): the same backbone and episode, the head of
src/learners/metaoptnet-{svm,rr}.ts instead of prototypes, composed from bench/peer/qp_heads.py: K = S S^T, the dual
(SVM: qpth's interior-point method to convergence, backward by its KKT solve; ridge: float64 Cholesky), logits =
scale * (Q S^T) alpha with the learnable scale (init 1, trained by Adam with the backbone), cross-entropy with
MetaOptNet's label smoothing (1 - eps on the true class, eps / (C - 1) on each other one; req["head"] holds C,
lambda and eps).

Inputs and initial weights come from files the bench writes (float32 little-endian), so both sides start from the
same weights and see the same images: the first loss of both sides must agree (the bench checks it).
"""
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import qp_heads

# Responses only on the real stdout; anything a library prints goes to stderr.
PROTOCOL_OUT = sys.stdout
sys.stdout = sys.stderr

ROTATIONS = 4


def log(msg):
    print(f"[torch-peer] {msg}", file=sys.stderr, flush=True)


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def flatten_free(x):
    """Flatten without a copy in either memory format. The element order differs from the toolkit's NHWC flatten
    in the default format, which no head here depends on (squared distances are order-invariant)."""
    if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        return x.permute(0, 2, 3, 1).flatten(1)
    return x.flatten(1)


class Conv4(nn.Module):
    def __init__(self, width=64):
        super().__init__()
        self.convs = nn.ModuleList([nn.Conv2d(3 if i == 0 else width, width, 3, padding=1, bias=False) for i in range(4)])
        self.norms = nn.ModuleList([nn.BatchNorm2d(width, eps=1e-5, momentum=0.1) for _ in range(4)])

    def forward(self, x):
        for conv, bn in zip(self.convs, self.norms):
            x = F.max_pool2d(F.relu(bn(conv(x))), 2)
        return flatten_free(x)


LEAK = 0.1


class ResidualBlock(nn.Module):
    """src/backbones/resnet12.ts: 3 x [conv3x3, BN] with LeakyReLU(0.1) after the first two, shortcut [conv1x1, BN],
    add, LeakyReLU(0.1), maxpool 2. (Dropout / DropBlock are off on both sides in the bench: see bench/README.md.)"""

    def __init__(self, cin, cout):
        super().__init__()
        self.convs = nn.ModuleList([nn.Conv2d(cin if k == 0 else cout, cout, 3, padding=1, bias=False) for k in range(3)])
        self.norms = nn.ModuleList([nn.BatchNorm2d(cout, eps=1e-5, momentum=0.1) for _ in range(3)])
        self.shortcut_conv = nn.Conv2d(cin, cout, 1, bias=False)
        self.shortcut_norm = nn.BatchNorm2d(cout, eps=1e-5, momentum=0.1)

    def forward(self, x):
        residual = self.shortcut_norm(self.shortcut_conv(x))
        out = F.leaky_relu(self.norms[0](self.convs[0](x)), LEAK)
        out = F.leaky_relu(self.norms[1](self.convs[1](out)), LEAK)
        out = self.norms[2](self.convs[2](out))
        return F.max_pool2d(F.leaky_relu(out + residual, LEAK), 2)


class ResNet12(nn.Module):
    def __init__(self, widths=(64, 160, 320, 640)):
        super().__init__()
        cins = (3,) + tuple(widths[:-1])
        self.blocks = nn.ModuleList([ResidualBlock(cin, cout) for cin, cout in zip(cins, widths)])

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        return flatten_free(x)


def bn_target(norm, kind, arr):
    if kind == "gamma":
        return norm.weight, arr
    if kind == "beta":
        return norm.bias, arr
    if kind == "running_mean":
        return norm.running_mean, arr
    if kind == "running_var":
        return norm.running_var, arr
    raise ValueError(f"unknown batch-norm variable {kind}")


def weight_target(model, name, arr):
    """The parameter a toolkit variable (checkpoint key) maps to; HWIO filters -> OIHW."""
    parts = name.split("/")
    oihw = lambda a: np.transpose(a, (3, 2, 0, 1))
    if isinstance(model, Conv4):
        # conv4/block{i}/{conv|bn}/{filter|gamma|beta|running_mean|running_var}
        if len(parts) != 4 or parts[0] != "conv4" or not parts[1].startswith("block"):
            raise ValueError(f"unknown variable {name}")
        i = int(parts[1][len("block"):])
        if parts[3] == "filter":
            return model.convs[i].weight, oihw(arr)
        return bn_target(model.norms[i], parts[3], arr)
    # resnet12/block{1..4}/{conv{k}|bn{k}|shortcut/conv|shortcut/bn}/{filter|gamma|...}
    if parts[0] != "resnet12" or not parts[1].startswith("block"):
        raise ValueError(f"unknown variable {name}")
    block = model.blocks[int(parts[1][len("block"):]) - 1]
    if parts[2] == "shortcut":
        if parts[3] == "conv":
            return block.shortcut_conv.weight, oihw(arr)
        return bn_target(block.shortcut_norm, parts[4], arr)
    if parts[2].startswith("conv"):
        return block.convs[int(parts[2][4:]) - 1].weight, oihw(arr)
    if parts[2].startswith("bn"):
        return bn_target(block.norms[int(parts[2][2:]) - 1], parts[3], arr)
    raise ValueError(f"unknown variable {name}")


def load_weights(model, path, meta, scale=None):
    """Variables as the toolkit names them (checkpoint keys); `head/<head>/scale` goes to `scale` (dual heads)."""
    flat = np.fromfile(path, dtype="<f4")
    offset = 0
    with torch.no_grad():
        for entry in meta:
            name, shape = entry["name"], entry["shape"]
            size = int(np.prod(shape))
            arr = flat[offset:offset + size].reshape(shape)
            offset += size
            if name.startswith("resnet12/training_calls"):
                continue  # the DropBlock schedule counter: no parameter in the peer
            if name.startswith("head/") and name.endswith("/scale"):
                if scale is None:
                    raise ValueError(f"{name}: this method has no logit scale")
                scale.copy_(torch.from_numpy(np.ascontiguousarray(arr)).reshape(()))
                continue
            target, value = weight_target(model, name, arr)
            if tuple(target.shape) != tuple(value.shape):
                raise ValueError(f"{name}: shape {value.shape} does not fit {tuple(target.shape)}")
            target.copy_(torch.from_numpy(np.ascontiguousarray(value)))
    if offset != flat.size:
        raise ValueError(f"weights file has {flat.size} floats, metadata covers {offset}")


def label_major(way, per_class):
    return torch.arange(way).repeat_interleave(per_class)


def joint(labels, m):
    return (labels.view(-1, 1) * m + torch.arange(m).view(1, -1)).reshape(-1)


def expand_rotations(x):
    """[B, 3, S, S] -> [B*4, 3, S, S], row b*4 + k = rot90(x_b, k) (as src/transforms/expand.ts)."""
    b, c, h, w = x.shape
    return torch.stack([torch.rot90(x, k, (2, 3)) for k in range(ROTATIONS)], 1).reshape(b * ROTATIONS, c, h, w)


def protonet_logits(support, query, support_labels, way):
    one_hot = F.one_hot(support_labels, way).to(support.dtype)  # [n, way]
    prototypes = one_hot.t().matmul(support) / one_hot.sum(0).view(way, 1)
    qq = query.pow(2).sum(1, keepdim=True)
    pp = prototypes.pow(2).sum(1).view(1, -1)
    return -(qq - 2 * query.matmul(prototypes.t()) + pp)


class Episodes:
    """The bench's seeded episodes: float32 NHWC [episodes, nSupport + nQuery, S, S, 3], support first."""

    def __init__(self, req):
        s, way, shot, query = req["imageSize"], req["way"], req["shot"], req["query"]
        self.n_support, self.n_query, self.way = way * shot, way * query, way
        per_episode = self.n_support + self.n_query
        raw = np.fromfile(req["inputs"], dtype="<f4").reshape(req["episodes"], per_episode, s, s, 3)
        self.images = [torch.from_numpy(np.ascontiguousarray(raw[e].transpose(0, 3, 1, 2))) for e in range(req["episodes"])]
        self.support_labels = label_major(way, shot)
        self.query_labels = label_major(way, query)

    def __len__(self):
        return len(self.images)


HEADS = ("protonet", "metaoptnet-svm", "metaoptnet-rr")


def smoothed_cross_entropy(logits, labels, eps):
    """src/losses/cross-entropy.ts: eps > 0 puts 1 - eps on the true class and eps / (C - 1) on each other one."""
    if eps <= 0:
        return F.cross_entropy(logits, labels)
    one_hot = F.one_hot(labels, logits.shape[1]).to(logits.dtype)
    target = one_hot * (1 - eps) + (1 - one_hot) * (eps / (logits.shape[1] - 1))
    return -(target * F.log_softmax(logits, 1)).sum(1).mean()


class Method:
    def __init__(self, req):
        name = req["method"]
        self.sla = name.endswith("-sla")
        self.head = name[: -len("-sla")] if self.sla else name
        if self.head not in HEADS:
            raise ValueError(f"unknown method {name}")
        self.m = ROTATIONS if self.sla else 1
        backbone = req.get("backbone", "conv4")
        if backbone == "conv4":
            self.model = Conv4()
        elif backbone == "resnet12":
            self.model = ResNet12()
        else:
            raise ValueError(f"unknown backbone {backbone}")
        head_config = req.get("head") or {}
        self.svm_c = float(head_config.get("C", 0.1))
        self.ridge_lambda = float(head_config.get("lambda", 50))
        self.label_smoothing = float(head_config.get("labelSmoothing", 0))
        # The dual heads' learnable logit scale (MetaOptNet's), loaded with the backbone's weights.
        self.scale = nn.Parameter(torch.tensor(float(head_config.get("scale", 1.0)))) if self.head != "protonet" else None
        load_weights(self.model, req["weights"], req["weightsMeta"], self.scale)
        # channels_last (NHWC in memory) lets oneDNN skip layout reorders; the bench tries both and keeps the faster.
        self.channels_last = bool(req.get("channelsLast", False))
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)

    def parameters(self):
        return list(self.model.parameters()) + ([self.scale] if self.scale is not None else [])

    def embed(self, x, n_support):
        if self.sla:
            x = expand_rotations(x)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        emb = self.model(x)
        ns = n_support * self.m
        return emb[:ns], emb[ns:]

    def logits(self, support, query, support_labels, way):
        if self.head == "protonet":
            return protonet_logits(support, query, support_labels, way)
        K = support @ support.t()
        if self.head == "metaoptnet-svm":
            alpha = qp_heads.svm_alpha(K, support_labels, way, self.svm_c)
        else:
            alpha = qp_heads.ridge_alpha(K, support_labels, way, self.ridge_lambda)
        return self.scale * ((query @ support.t()) @ alpha)

    def train_loss(self, eps, images):
        support, query = self.embed(images, eps.n_support)
        s_labels = joint(eps.support_labels, self.m) if self.sla else eps.support_labels
        q_labels = joint(eps.query_labels, self.m) if self.sla else eps.query_labels
        logits = self.logits(support, query, s_labels, eps.way * self.m)
        return smoothed_cross_entropy(logits, q_labels, self.label_smoothing)

    def predict(self, eps, images):
        support, query = self.embed(images, eps.n_support)
        if not self.sla:
            return {"plain": self.logits(support, query, eps.support_labels, eps.way)}
        m, way = self.m, eps.way
        logits = self.logits(support, query, joint(eps.support_labels, m), way * m)
        blocks = logits.view(-1, m, way, m)  # [b, j, i, l]
        ag = torch.diagonal(blocks, dim1=1, dim2=3).mean(-1)  # mean over j of logit[b*m + j, i*m + j]
        si = blocks[:, 0, :, 0]
        return {"ag": ag, "si": si}


def run_policy(step, policy):
    """Warm up (at most warmupSteps, stop early past warmupSeconds), then time minSteps..maxSteps within budget."""
    warmup = []
    start = time.perf_counter()
    for i in range(max(1, policy["warmupSteps"])):
        t0 = time.perf_counter()
        value = step(i)
        warmup.append({"ms": (time.perf_counter() - t0) * 1e3, "value": value})
        if time.perf_counter() - start >= policy["warmupSeconds"]:
            break
    times = []
    start = time.perf_counter()
    i = len(warmup)
    while len(times) < policy["maxSteps"]:
        t0 = time.perf_counter()
        step(i)
        times.append((time.perf_counter() - t0) * 1e3)
        i += 1
        if len(times) >= policy["minSteps"] and time.perf_counter() - start >= policy["budgetSeconds"]:
            break
    return warmup, times


def set_threads(n):
    torch.set_num_threads(n)
    return torch.get_num_threads()


def do_train(req):
    threads = set_threads(req["threads"])
    eps = Episodes(req)
    method = Method(req)
    method.model.train()
    opt = torch.optim.Adam(method.parameters(), lr=req.get("lr", 1e-3))

    def step(i):
        loss = method.train_loss(eps, eps.images[i % len(eps)])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.item()

    warmup, times = run_policy(step, req["policy"])
    return {"threads": threads, "warmup": warmup, "timesMs": times, "rssBytes": rss_bytes()}


def do_eval(req):
    threads = set_threads(req["threads"])
    eps = Episodes(req)
    method = Method(req)
    method.model.eval()
    first_scores = {}

    def step(i):
        with torch.no_grad():
            scores = method.predict(eps, eps.images[i % len(eps)])
            acc = {mode: (s.argmax(1) == eps.query_labels).float().mean().item() for mode, s in scores.items()}
        if i == 0:
            first_scores.update({mode: s.tolist() for mode, s in scores.items()})
        return acc

    warmup, times = run_policy(step, req["policy"])
    return {"threads": threads, "warmup": warmup, "timesMs": times, "firstScores": first_scores, "rssBytes": rss_bytes()}


def do_memory(req):
    threads = set_threads(req["threads"])
    eps = Episodes(req)
    method = Method(req)
    method.model.train()
    opt = torch.optim.Adam(method.parameters(), lr=1e-3)
    samples = []
    rss_start = rss_bytes()
    rss_before = rss_start
    t0 = time.perf_counter()
    for i in range(req["warmup"] + req["steps"]):
        loss = method.train_loss(eps, eps.images[i % len(eps)])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss.item()
        done = i + 1 - req["warmup"]
        if done == 0:
            rss_before = rss_bytes()
            t0 = time.perf_counter()
        elif done > 0 and (done % req["sampleEvery"] == 0 or done == req["steps"]):
            samples.append({"episode": done, "rssBytes": rss_bytes()})
    return {
        "threads": threads,
        "rssStartBytes": rss_start,
        "rssBeforeBytes": rss_before,
        "rssAfterBytes": rss_bytes(),
        "samples": samples,
        "msPerEpisode": (time.perf_counter() - t0) * 1e3 / req["steps"],
    }


def do_head(req):
    threads = set_threads(req["threads"])
    eps = qp_heads.HeadEpisodes(req)
    iterations = []

    def step(i):
        value = qp_heads.head_step(req, eps, i)
        if req["head"] == "metaoptnet-svm":
            iterations.append(qp_heads.CrammerSingerDual.last_iterations)
        return value

    warmup, times = run_policy(step, req["policy"])
    return {"threads": threads, "warmup": warmup, "timesMs": times, "solverIterations": iterations, "rssBytes": rss_bytes()}


def loaded_allocator():
    """Which malloc this process really uses (an LD_PRELOAD that failed to load would otherwise go unnoticed)."""
    with open("/proc/self/maps") as f:
        maps = f.read()
    for name in ("jemalloc", "tcmalloc"):
        if f"lib{name}" in maps:
            return name
    return "glibc"


def do_hello(_req):
    return {
        "allocatorLoaded": loaded_allocator(),
        "ompWaitPolicy": os.environ.get("OMP_WAIT_POLICY", "default"),
        "mallocTunables": {k: v for k, v in os.environ.items() if k.startswith("MALLOC_")},
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": np.__version__,
        "defaultThreads": torch.get_num_threads(),
        "mkldnn": torch.backends.mkldnn.is_available(),
        "parallelInfo": torch.__config__.parallel_info(),
        "executable": sys.executable,
    }


HANDLERS = {"hello": do_hello, "train": do_train, "eval": do_eval, "memory": do_memory, "head": do_head}


def main():
    torch.manual_seed(0)
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        req = json.loads(line)
        op = req.get("op")
        if op == "quit":
            break
        try:
            handler = HANDLERS[op]
            result = {"ok": True, **handler(req)}
        except Exception as exc:  # reported to the bench, which records it per workload
            import traceback

            traceback.print_exc()
            result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        PROTOCOL_OUT.write(json.dumps(result) + "\n")
        PROTOCOL_OUT.flush()


if __name__ == "__main__":
    main()
