import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { prepareDataset } from '../../src/data/index.ts';
import { PIL_PREPARE_SCRIPT } from './peer.ts';

/** The target of `fewshot data prepare`: all 60,000 mini-ImageNet images in 60 s. */
export const PREPARE_GOAL_IMAGES_PER_SECOND = 60_000 / 60;
export const PREPARE_IMAGE_SIZE = 84;
export const PEER_PREPARE_WORKERS = 2;

export interface PrepareSource {
  /** The folder prepare reads (for --quick a temp folder built from `dataset`). */
  folder: string;
  dataset: string;
  /** What it holds: the full real dataset, or the quick subset. */
  description: string;
  images: number;
}

/**
 * For `--quick`: a folder with only the real val archive (symlinked) and split CSVs made from val.csv's 16 classes
 * (8 / 4 / 4 classes as train / val / test), i.e. the 9,600 val JPEGs read and decoded exactly as in a full prepare.
 * No SHA256SUMS (the CSVs are not the published ones).
 */
export async function makeQuickPrepareSource(dataset: string, dir: string): Promise<PrepareSource> {
  await fs.mkdir(dir, { recursive: true });
  await fs.symlink(path.join(dataset, 'images-val.tar.gz'), path.join(dir, 'images-val.tar.gz'));
  const [header, ...rows] = (await fs.readFile(path.join(dataset, 'val.csv'), 'utf8')).trim().split(/\r?\n/);
  const classes = [...new Set(rows.map((r) => r.split(',')[1]))];
  const groups: Record<string, string[]> = { train: classes.slice(0, 8), val: classes.slice(8, 12), test: classes.slice(12) };
  for (const [split, cls] of Object.entries(groups)) {
    const keep = new Set(cls);
    await fs.writeFile(path.join(dir, `${split}.csv`), `${header}\n${rows.filter((r) => keep.has(r.split(',')[1])).join('\n')}\n`);
  }
  return { folder: dir, dataset, description: `quick subset: the ${rows.length} images of images-val.tar.gz (16 classes as 8/4/4)`, images: rows.length };
}

export interface OursPrepareResult {
  images: number;
  /** Whole prepareDataset call (CSV checks, archive reading, decode, write, hashing the split files). */
  wallSeconds: number;
  imagesPerSecond: number;
  /** The decode phase as the cache manifest records it. */
  decodeImagesPerSecond: number;
  decodeWallSeconds: number;
  uvThreadpoolSize: string;
}

export async function runOursPrepare(source: PrepareSource, cacheDir: string): Promise<OursPrepareResult> {
  const t0 = performance.now();
  const { manifest } = await prepareDataset({ source: source.folder, cacheDir, imageSize: PREPARE_IMAGE_SIZE, prefer: 'archives' });
  const wallSeconds = (performance.now() - t0) / 1000;
  await fs.rm(cacheDir, { recursive: true, force: true });
  return {
    images: manifest.decode.images,
    wallSeconds: Math.round(wallSeconds * 100) / 100,
    imagesPerSecond: Math.round(manifest.decode.images / wallSeconds),
    decodeImagesPerSecond: manifest.decode.imagesPerSecond,
    decodeWallSeconds: manifest.decode.wallSeconds,
    uvThreadpoolSize: process.env.UV_THREADPOOL_SIZE ?? '4 (libuv default)',
  };
}

export interface PeerPrepareResult {
  images: number;
  expected: number;
  missing: number;
  wallSeconds: number;
  imagesPerSecond: number;
  workers: number;
  pil: string;
}

/** bench/peer/pil_prepare.py on the same folder: PIL decode (+ BOX resize if needed) with 2 worker processes. */
export async function runPeerPrepare(python: string, source: PrepareSource, outDir: string, log: (m: string) => void): Promise<PeerPrepareResult> {
  await fs.mkdir(outDir, { recursive: true });
  try {
    const stdout = await new Promise<string>((resolve, reject) => {
      const child = spawn(python, [PIL_PREPARE_SCRIPT, source.folder, outDir, String(PREPARE_IMAGE_SIZE), String(PEER_PREPARE_WORKERS)]);
      let out = '';
      let err = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString()));
      child.stderr.on('data', (c: Buffer) => (err += c.toString()));
      child.on('error', reject);
      child.on('exit', (code) =>
        code === 0 ? resolve(out) : reject(new Error(`pil_prepare.py exited ${code}: ${err.trim().split('\n').slice(-3).join(' | ')}`)),
      );
    });
    const result = JSON.parse(stdout.trim().split('\n').pop()!) as PeerPrepareResult;
    result.wallSeconds = Math.round(result.wallSeconds * 100) / 100;
    result.imagesPerSecond = Math.round(result.imagesPerSecond);
    if (result.missing > 0) log(`peer prepare: ${result.missing} images missing`);
    return result;
  } finally {
    await fs.rm(outDir, { recursive: true, force: true });
  }
}
