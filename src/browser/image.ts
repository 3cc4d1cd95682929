import { resizeAreaRgb, toGrayRgb } from '../data/pixels.ts';
import { UserError } from '../util/errors.ts';

/**
 * A user's photo → S×S RGB bytes, as the Node path makes the cache (src/data/decode.ts):
 * - decoded by the browser (createImageBitmap; Chromium's decoders are libjpeg-turbo, libpng, libwebp —
 *   the libraries libvips uses under sharp), with no colour-space conversion and no alpha premultiplying,
 *   read back at its own size through a 2D canvas, alpha dropped as sharp's removeAlpha does;
 * - shrunk by the same exact area averaging (src/data/pixels.ts: resizeAreaRgb, the very function the
 *   cache is made with) when both sides are at least S, kept as is when already S×S;
 * - enlarged (a side smaller than S) by the canvas's high-quality smoothing: Node uses libvips cubic there,
 *   which the browser does not have, so such images can differ by a few grey levels (docs/browser.md);
 * - greyed by the same BT.601 luma (toGrayRgb) when the model was trained on grey images.
 * One difference remains by design: the browser applies an EXIF orientation (a phone photo shows upright),
 * sharp's raw decode does not rotate.
 */
export interface PreparedImage {
  /** S×S×3 RGB, row-major. */
  pixels: Uint8Array;
  sourceWidth: number;
  sourceHeight: number;
  /** How it reached S×S: `as is`, `area` (shrunk) or `canvas` (enlarged). */
  resize: 'as is' | 'area' | 'canvas';
}

const IMAGE_FIX = 'use a JPEG, PNG, WebP, GIF or BMP photo, or remove it';

/** Decode an image file with the browser's decoders; a file that is not a decodable image is a UserError naming it. */
export async function decodeRgba(file: Blob, name: string): Promise<{ data: Uint8ClampedArray; width: number; height: number; bitmap: ImageBitmap }> {
  if (file.size === 0) throw new UserError(`${name} is empty`, IMAGE_FIX);
  if (file.type && !file.type.startsWith('image/')) throw new UserError(`${name} is not an image (its type is ${file.type})`, IMAGE_FIX);
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(file, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  } catch {
    throw new UserError(`${name} is not an image the browser can decode (damaged, or not an image)`, IMAGE_FIX);
  }
  const { width, height } = bitmap;
  const canvas = new OffscreenCanvas(width, height);
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  if (!ctx) throw new Error('no 2D canvas context');
  ctx.drawImage(bitmap, 0, 0);
  return { data: ctx.getImageData(0, 0, width, height).data, width, height, bitmap };
}

function rgbaToRgb(rgba: Uint8ClampedArray): Uint8Array {
  const n = rgba.length / 4;
  const out = new Uint8Array(n * 3);
  for (let p = 0; p < n; p++) {
    out[3 * p] = rgba[4 * p];
    out[3 * p + 1] = rgba[4 * p + 1];
    out[3 * p + 2] = rgba[4 * p + 2];
  }
  return out;
}

/** Decode and bring to size×size RGB by the rule above. */
export async function prepareImage(file: Blob, name: string, size: number, grayscale: boolean): Promise<PreparedImage> {
  const { data, width, height, bitmap } = await decodeRgba(file, name);
  let pixels: Uint8Array;
  let resize: PreparedImage['resize'];
  try {
    if (width === size && height === size) {
      pixels = rgbaToRgb(data);
      resize = 'as is';
    } else if (size <= width && size <= height) {
      pixels = resizeAreaRgb(rgbaToRgb(data), width, height, size, size);
      resize = 'area';
    } else {
      const canvas = new OffscreenCanvas(size, size);
      const ctx = canvas.getContext('2d', { willReadFrequently: true })!;
      ctx.imageSmoothingEnabled = true;
      ctx.imageSmoothingQuality = 'high';
      ctx.drawImage(bitmap, 0, 0, size, size);
      pixels = rgbaToRgb(ctx.getImageData(0, 0, size, size).data);
      resize = 'canvas';
    }
  } finally {
    bitmap.close();
  }
  return { pixels: grayscale ? toGrayRgb(pixels) : pixels, sourceWidth: width, sourceHeight: height, resize };
}
