/** Per-channel RGB mean and std in [0, 1] units: x_norm = (x/255 − mean) / std. */
export interface Normalization {
  mean: readonly [number, number, number];
  std: readonly [number, number, number];
}

/** mini-ImageNet / tiered-ImageNet constants of MetaOptNet's loaders (docs/reference.md §4.6). */
export const MINI_IMAGENET_NORMALIZATION: Normalization = {
  mean: [120.39586422 / 255, 115.59361427 / 255, 104.54012653 / 255],
  std: [70.68188272 / 255, 68.27635443 / 255, 72.54505529 / 255],
};

/** CIFAR-FS / FC100 constants of the MetaOptNet loaders (docs/reference.md §4.6). */
export const CIFAR_FS_NORMALIZATION: Normalization = {
  mean: [129.37731888 / 255, 124.10583864 / 255, 112.47758569 / 255],
  std: [68.20947949 / 255, 65.43124043 / 255, 70.45866994 / 255],
};

/** lut[c·256 + v] = normalised value of byte v in channel c (computed in float64, stored as float32). */
export function normalizationTable(norm: Normalization): Float32Array {
  const lut = new Float32Array(3 * 256);
  for (let c = 0; c < 3; c++) {
    for (let v = 0; v < 256; v++) lut[c * 256 + v] = (v / 255 - norm.mean[c]) / norm.std[c];
  }
  return lut;
}

const lutCache = new WeakMap<Normalization, Float32Array>();
function tableFor(norm: Normalization): Float32Array {
  let lut = lutCache.get(norm);
  if (!lut) lutCache.set(norm, (lut = normalizationTable(norm)));
  return lut;
}

/** What gathering needs from a split: `LoadedSplit` satisfies it. */
export interface PixelStore {
  imageSize: number;
  numItems: number;
  /** uint8 [numItems, S, S, 3] NHWC RGB. */
  pixels: Uint8Array;
}

function checkItem(store: PixelStore, item: number, position: number): void {
  if (!Number.isInteger(item) || item < 0 || item >= store.numItems) {
    throw new RangeError(`item index ${item} at position ${position} is outside 0..${store.numItems - 1}`);
  }
}

/** Raw uint8 NHWC pixels of the given items, in order (for augmentation before normalising). */
export function gatherPixels(store: PixelStore, items: ArrayLike<number>): Uint8Array {
  const per = store.imageSize * store.imageSize * 3;
  const out = new Uint8Array(items.length * per);
  for (let i = 0; i < items.length; i++) {
    checkItem(store, items[i], i);
    out.set(store.pixels.subarray(items[i] * per, (items[i] + 1) * per), i * per);
  }
  return out;
}

/** Apply a normalisation to uint8 RGB NHWC pixels (any count), giving float32 NHWC. */
export function normalizePixels(pixels: Uint8Array, norm: Normalization = MINI_IMAGENET_NORMALIZATION): Float32Array {
  if (pixels.length % 3 !== 0) throw new RangeError(`pixel buffer length ${pixels.length} is not a multiple of 3 (RGB)`);
  const lut = tableFor(norm);
  const out = new Float32Array(pixels.length);
  for (let p = 0; p < pixels.length; p += 3) {
    out[p] = lut[pixels[p]];
    out[p + 1] = lut[256 + pixels[p + 1]];
    out[p + 2] = lut[512 + pixels[p + 2]];
  }
  return out;
}

/** Normalised float32 NHWC images [items.length, S, S, 3] for the given item indices, in order. */
export function gatherImages(store: PixelStore, items: ArrayLike<number>, norm: Normalization = MINI_IMAGENET_NORMALIZATION): Float32Array {
  const lut = tableFor(norm);
  const per = store.imageSize * store.imageSize * 3;
  const out = new Float32Array(items.length * per);
  const px = store.pixels;
  for (let i = 0; i < items.length; i++) {
    checkItem(store, items[i], i);
    const src = items[i] * per;
    const dst = i * per;
    for (let p = 0; p < per; p += 3) {
      out[dst + p] = lut[px[src + p]];
      out[dst + p + 1] = lut[256 + px[src + p + 1]];
      out[dst + p + 2] = lut[512 + px[src + p + 2]];
    }
  }
  return out;
}
