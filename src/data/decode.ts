import sharp from 'sharp';
import { UserError } from '../util/errors.ts';
import { resizeAreaRgb } from './pixels.ts';

// The area resize is pure (no sharp, no Node): the browser page runs the same function (src/browser/image.ts).
export { resizeAreaRgb };

/**
 * How source images become S×S RGB, recorded in the cache manifest:
 * - decode with sharp/libvips, strict (`failOn: 'warning'`: truncated or corrupt JPEG data is an error,
 *   not a silently grey-filled image);
 * - grey and CMYK images are converted to sRGB RGB (libvips does this for raw output), images with
 *   alpha lose it, as `PIL.Image.convert('RGB')` does in the usual Python loaders;
 * - any source size is accepted and stretched to S×S (aspect ratio not kept), like the standard
 *   mini-ImageNet tools that make the 84×84 images from ImageNet originals;
 * - same size: pixels as decoded; smaller target: exact area averaging (each output pixel is the
 *   mean of the source area it covers, fractional pixels weighted by overlap, as OpenCV INTER_AREA),
 *   rounded to the nearest integer; larger target (upsampling): libvips cubic (Catmull-Rom).
 * Area averaging is done here rather than by sharp's resize because sharp's resize pipeline costs
 * ~0.7 ms per tiny image (3× the decode), and area averaging is the antialiased choice for shrinking.
 */
export const RESIZE_METHOD = 'area averaging for downscaling (OpenCV INTER_AREA semantics), libvips cubic for upscaling, aspect ratio not kept';

export interface DecodedImage {
  /** S×S×3 RGB, row-major (HWC). */
  pixels: Uint8Array;
  sourceWidth: number;
  sourceHeight: number;
  resized: boolean;
}

/** Decode failures are the user's data problem: name the file and what to do. */
function badImage(filename: string, origin: string, reason: string): UserError {
  return new UserError(
    `image ${filename} (${origin}) cannot be used: ${reason}`,
    `replace it with an intact image (for a benchmark: an intact copy from its original download; re-download or re-extract the archive) or remove it, then run \`fewshot data prepare\` again`,
  );
}

export async function decodeImage(bytes: Uint8Array, size: number, filename: string, origin: string): Promise<DecodedImage> {
  if (bytes.length === 0) throw badImage(filename, origin, 'the file is empty');
  let data: Buffer;
  let info: sharp.OutputInfo;
  try {
    ({ data, info } = await sharp(bytes, { failOn: 'warning' }).raw().toBuffer({ resolveWithObject: true }));
    if (info.channels !== 3) {
      // Rare (sources with alpha): let libvips flatten the colour space and drop alpha.
      ({ data, info } = await sharp(bytes, { failOn: 'warning' }).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true }));
      if (info.channels === 4) data = dropFourthChannel(data, info.width * info.height);
      else if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels, expected RGB`);
    }
  } catch (err) {
    if (err instanceof UserError) throw err;
    throw badImage(filename, origin, `it is not a readable image (${(err as Error).message.trim().split('\n')[0]})`);
  }
  const { width, height } = info;
  const { pixels, resized } = await resizeRawRgb(data, width, height, size);
  return { pixels, sourceWidth: width, sourceHeight: height, resized };
}

/** Raw RGB (HWC) pixels of any size to size×size by the rule in RESIZE_METHOD (as is when already that size). */
export async function resizeRawRgb(data: Uint8Array, width: number, height: number, size: number): Promise<{ pixels: Uint8Array; resized: boolean }> {
  if (width === size && height === size) return { pixels: data, resized: false };
  if (size <= width && size <= height) return { pixels: resizeAreaRgb(data, width, height, size, size), resized: true };
  const up = await sharp(data, { raw: { width, height, channels: 3 } })
    .resize(size, size, { kernel: 'cubic', fit: 'fill' })
    .raw()
    .toBuffer();
  return { pixels: up, resized: true };
}

function dropFourthChannel(data: Buffer, nPixels: number): Buffer {
  const out = Buffer.allocUnsafe(nPixels * 3);
  for (let p = 0; p < nPixels; p++) {
    out[3 * p] = data[4 * p];
    out[3 * p + 1] = data[4 * p + 1];
    out[3 * p + 2] = data[4 * p + 2];
  }
  return out;
}
