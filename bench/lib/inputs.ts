import { promises as fs } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import seedrandom from 'seedrandom';
import { normalizePixels } from '../../src/data/index.ts';
import type { EpisodeImages } from '../../src/episodes/images.ts';
import { labelMajorLabels } from '../../src/episodes/images.ts';

/** One benchmark episode shape: N-way K-shot with Q queries per class at S×S pixels. */
export interface EpisodeSpec {
  way: number;
  shot: number;
  query: number;
  imageSize: number;
}

/**
 * Seeded random episodes shared by both sides: uniformly random uint8 RGB pixels, normalised with the toolkit's
 * mini-ImageNet statistics, so values look like real inputs. Each episode is float32 NHWC
 * [way·shot + way·query, S, S, 3], support (label-major) first, then queries (label-major).
 * Timing of a dense Conv-4 step does not depend on pixel content; the seed makes the loss check reproducible.
 */
export function makeEpisodes(spec: EpisodeSpec, count: number, seed: string): Float32Array[] {
  const perEpisode = (spec.way * spec.shot + spec.way * spec.query) * spec.imageSize * spec.imageSize * 3;
  const episodes: Float32Array[] = [];
  for (let e = 0; e < count; e++) {
    const rand = seedrandom(`${seed}/${e}`);
    const pixels = new Uint8Array(perEpisode);
    for (let i = 0; i < perEpisode; i++) pixels[i] = Math.floor(rand() * 256);
    episodes.push(normalizePixels(pixels));
  }
  return episodes;
}

/** Write episodes back to back as float32 little-endian (what the peer reads with numpy.fromfile). */
export async function writeEpisodesFile(file: string, episodes: readonly Float32Array[]): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  const handle = await fs.open(file, 'w');
  try {
    for (const ep of episodes) await handle.write(new Uint8Array(ep.buffer, ep.byteOffset, ep.byteLength));
  } finally {
    await handle.close();
  }
}

/** An episode's tensors (caller disposes with disposeEpisode from src/episodes/images.ts). */
export function episodeImages(spec: EpisodeSpec, data: Float32Array): EpisodeImages {
  const s = spec.imageSize;
  const nSupport = spec.way * spec.shot;
  const nQuery = spec.way * spec.query;
  const per = s * s * 3;
  return {
    supportImages: tf.tensor4d(data.subarray(0, nSupport * per), [nSupport, s, s, 3]),
    supportLabels: labelMajorLabels(spec.way, spec.shot),
    queryImages: tf.tensor4d(data.subarray(nSupport * per, (nSupport + nQuery) * per), [nQuery, s, s, 3]),
    queryLabels: labelMajorLabels(spec.way, spec.query),
    way: spec.way,
  };
}
