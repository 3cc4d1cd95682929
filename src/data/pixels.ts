/**
 * Pure pixel operations shared by the Node data path (decode.ts, cache-writer.ts) and the browser page
 * (src/browser/image.ts): no Node built-ins, no sharp, so the page resizes and greys images with the very
 * same code that made the cache.
 */

/** Grey by ITU-R BT.601 luma (0.299 R + 0.587 G + 0.114 B), rounded, in all three channels. */
export function toGrayRgb(px: Uint8Array): Uint8Array {
  const out = new Uint8Array(px.length);
  for (let p = 0; p < px.length; p += 3) {
    const g = Math.round(0.299 * px[p] + 0.587 * px[p + 1] + 0.114 * px[p + 2]);
    out[p] = out[p + 1] = out[p + 2] = g;
  }
  return out;
}

/**
 * 1-D area weights: output o covers source [o·scale, (o+1)·scale); source pixel first[o] + k
 * contributes weights[offset[o] + k] (its overlap / scale), for k < count[o].
 */
interface AreaWeights {
  first: Int32Array;
  count: Int32Array;
  offset: Int32Array;
  weights: Float64Array;
}

const weightCache = new Map<string, AreaWeights>();

function areaWeights(srcLen: number, dstLen: number): AreaWeights {
  const key = `${srcLen}>${dstLen}`;
  const cached = weightCache.get(key);
  if (cached) return cached;
  if (dstLen > srcLen) throw new Error(`area resize only shrinks (${srcLen} -> ${dstLen})`);
  const scale = srcLen / dstLen;
  const first = new Int32Array(dstLen);
  const count = new Int32Array(dstLen);
  const offset = new Int32Array(dstLen);
  const all: number[] = [];
  for (let o = 0; o < dstLen; o++) {
    const lo = o * scale;
    const hi = (o + 1) * scale;
    const a = Math.floor(lo);
    const b = Math.min(srcLen, Math.ceil(hi)) - 1;
    first[o] = a;
    count[o] = b - a + 1;
    offset[o] = all.length;
    for (let i = a; i <= b; i++) all.push((Math.min(hi, i + 1) - Math.max(lo, i)) / scale);
  }
  const result = { first, count, offset, weights: Float64Array.from(all) };
  weightCache.set(key, result);
  return result;
}

/**
 * Shrink an RGB (HWC uint8) image by exact area averaging, separably (rows, then columns);
 * the separable product of the two 1-D box overlaps is exactly the 2-D area overlap.
 */
export function resizeAreaRgb(src: Uint8Array, width: number, height: number, outWidth: number, outHeight: number): Uint8Array {
  if (src.length !== width * height * 3) throw new Error(`resizeAreaRgb: ${src.length} bytes is not ${width}x${height}x3`);
  const wx = areaWeights(width, outWidth);
  const wy = areaWeights(height, outHeight);
  const rowLen = outWidth * 3;
  // Horizontal pass: every source row shrunk to outWidth.
  const rows = new Float64Array(height * rowLen);
  for (let y = 0; y < height; y++) {
    const srcRow = y * width * 3;
    let dst = y * rowLen;
    for (let ox = 0; ox < outWidth; ox++, dst += 3) {
      let base = srcRow + wx.first[ox] * 3;
      let wi = wx.offset[ox];
      const end = wi + wx.count[ox];
      let r = 0,
        g = 0,
        b = 0;
      for (; wi < end; wi++, base += 3) {
        const w = wx.weights[wi];
        r += w * src[base];
        g += w * src[base + 1];
        b += w * src[base + 2];
      }
      rows[dst] = r;
      rows[dst + 1] = g;
      rows[dst + 2] = b;
    }
  }
  // Vertical pass: weighted sums of whole shrunk rows.
  const out = new Uint8Array(outHeight * rowLen);
  const acc = new Float64Array(rowLen);
  for (let oy = 0; oy < outHeight; oy++) {
    acc.fill(0);
    let wi = wy.offset[oy];
    const end = wi + wy.count[oy];
    for (let srcY = wy.first[oy]; wi < end; wi++, srcY++) {
      const w = wy.weights[wi];
      const row = srcY * rowLen;
      for (let x = 0; x < rowLen; x++) acc[x] += w * rows[row + x];
    }
    // Weights sum to 1, so values stay within 0..255 up to rounding error; round to nearest.
    const dst = oy * rowLen;
    for (let x = 0; x < rowLen; x++) {
      const v = Math.round(acc[x]);
      out[dst + x] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
  }
  return out;
}
