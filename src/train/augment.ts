import seedrandom from 'seedrandom';
import { gatherPixels, normalizePixels, type Normalization, type PixelStore } from '../data/index.ts';
import type { ImageSource } from '../episodes/images.ts';

/**
 * MetaOptNet's training augmentation (docs/reference.md, "MetaOptNet training augmentation"), on uint8 RGB before normalisation:
 * RandomCrop(S, padding = round(8·S/84), zero fill) → ColorJitter(brightness, contrast, saturation 0.4,
 * applied in a random order as torchvision does) → RandomHorizontalFlip(0.5).
 * Randomness comes from a per-episode seed, so a resumed run sees the same augmented episodes.
 */
export function augmentImageInPlace(img: Uint8Array, size: number, rand: () => number, scratch: Float32Array): void {
  const pad = Math.round((8 * size) / 84);
  const dx = Math.floor(rand() * (2 * pad + 1)) - pad;
  const dy = Math.floor(rand() * (2 * pad + 1)) - pad;
  const flip = rand() < 0.5;
  // Crop (shift with zero fill) + flip into float scratch.
  for (let y = 0; y < size; y++) {
    const sy = y + dy;
    for (let x = 0; x < size; x++) {
      const sxRaw = (flip ? size - 1 - x : x) + dx;
      const o = (y * size + x) * 3;
      if (sy < 0 || sy >= size || sxRaw < 0 || sxRaw >= size) {
        scratch[o] = scratch[o + 1] = scratch[o + 2] = 0;
      } else {
        const i = (sy * size + sxRaw) * 3;
        scratch[o] = img[i];
        scratch[o + 1] = img[i + 1];
        scratch[o + 2] = img[i + 2];
      }
    }
  }
  const n = size * size * 3;
  const factor = () => 0.6 + 0.8 * rand();
  const ops = [0, 1, 2];
  for (let i = 2; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [ops[i], ops[j]] = [ops[j], ops[i]];
  }
  const clamp = (v: number) => (v < 0 ? 0 : v > 255 ? 255 : v);
  for (const op of ops) {
    const f = factor();
    if (op === 0) {
      for (let i = 0; i < n; i++) scratch[i] = clamp(scratch[i] * f);
    } else if (op === 1) {
      let mean = 0;
      for (let i = 0; i < n; i += 3) mean += 0.299 * scratch[i] + 0.587 * scratch[i + 1] + 0.114 * scratch[i + 2];
      mean /= n / 3;
      for (let i = 0; i < n; i++) scratch[i] = clamp((scratch[i] - mean) * f + mean);
    } else {
      for (let i = 0; i < n; i += 3) {
        const g = 0.299 * scratch[i] + 0.587 * scratch[i + 1] + 0.114 * scratch[i + 2];
        for (let c = 0; c < 3; c++) scratch[i + c] = clamp((scratch[i + c] - g) * f + g);
      }
    }
  }
  for (let i = 0; i < n; i++) img[i] = Math.round(scratch[i]);
}

/**
 * An ImageSource whose images are augmented with a stream seeded by `seedKey` (one per episode), then
 * normalised with `norm` (the dataset's; default mini-ImageNet's).
 */
export function augmentedSource(store: PixelStore, seedKey: string, norm?: Normalization): ImageSource {
  const size = store.imageSize;
  const per = size * size * 3;
  const scratch = new Float32Array(per);
  let call = 0;
  return {
    imageSize: size,
    gather(items) {
      const rand = seedrandom(`${seedKey}/${call++}`);
      const px = gatherPixels(store, items);
      for (let i = 0; i < items.length; i++) augmentImageInPlace(px.subarray(i * per, (i + 1) * per), size, rand, scratch);
      return normalizePixels(px, norm);
    },
  };
}
