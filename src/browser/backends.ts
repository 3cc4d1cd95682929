import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-webgl';
import '@tensorflow/tfjs-backend-webgpu';
import { getThreadsCount, setWasmPaths } from '@tensorflow/tfjs-backend-wasm';

/**
 * The page's compute backends: `auto` tries WebGPU, then WebGL, then wasm (then the slow pure-JS cpu), and
 * a backend named by the user that cannot start falls back along the same order. Every fallback is said,
 * with the reason the backend gave.
 */
export const PAGE_BACKENDS = ['webgpu', 'webgl', 'wasm', 'cpu'] as const;
export type PageBackend = (typeof PAGE_BACKENDS)[number];
export const BACKEND_LABELS: Record<PageBackend, string> = { webgpu: 'WebGPU', webgl: 'WebGL', wasm: 'wasm', cpu: 'cpu (JavaScript)' };

export interface ActiveBackend {
  name: PageBackend;
  /** What it runs on: the GPU adapter / renderer, or wasm's SIMD and threads. */
  detail: string;
  /** One line per backend tried before it that failed, with why. */
  fallbacks: string[];
}

let wasmPathSet = false;

/** tfjs reports a failed backend start with console.warn, not an exception: catch what it says. */
async function trySetBackend(name: PageBackend): Promise<string | undefined> {
  if (name === 'wasm' && !wasmPathSet) {
    // The .wasm files sit beside the page (scripts/build-web.mjs copies them).
    setWasmPaths(new URL('./', document.baseURI).href);
    wasmPathSet = true;
  }
  const said: string[] = [];
  const warn = console.warn;
  console.warn = (...args: unknown[]) => {
    said.push(args.map((a) => (a instanceof Error ? a.message : String(a))).join(' '));
    warn.apply(console, args);
  };
  try {
    if (name === 'webgpu') {
      if (!('gpu' in navigator)) return 'this browser has no WebGPU (navigator.gpu)';
      // tfjs would fail on a missing adapter with a TypeError; say what is missing.
      const gpu = (navigator as unknown as { gpu: { requestAdapter(): Promise<unknown> } }).gpu;
      if ((await gpu.requestAdapter().catch(() => null)) == null) return 'no WebGPU adapter on this machine (navigator.gpu.requestAdapter() found none)';
    }
    const ok = await tf.setBackend(name);
    if (!ok)
      return (
        said
          .filter((s) => !/^Initialization of backend/.test(s))
          .join('; ')
          .split('\n')[0] || 'it did not initialise'
      );
    await tf.ready();
    return undefined;
  } catch (err) {
    return (err instanceof Error ? err.message : String(err)).split('\n')[0];
  } finally {
    console.warn = warn;
  }
}

function describe(name: PageBackend): string {
  switch (name) {
    case 'wasm': {
      const simd = tf.env().getBool('WASM_HAS_SIMD_SUPPORT');
      const threads = getThreadsCount();
      return `XNNPACK, SIMD ${simd ? 'on' : 'off'}, ${threads} thread${threads === 1 ? '' : 's'}${crossOriginIsolated ? '' : ' (page not cross-origin isolated: no threads)'}`;
    }
    case 'webgl': {
      const gl = (tf.backend() as unknown as { gpgpu?: { gl?: WebGLRenderingContext } }).gpgpu?.gl;
      const info = gl?.getExtension('WEBGL_debug_renderer_info');
      return `WebGL ${tf.env().getNumber('WEBGL_VERSION')}${info && gl ? `, ${gl.getParameter(info.UNMASKED_RENDERER_WEBGL)}` : ''}`;
    }
    case 'webgpu': {
      const adapter = (tf.backend() as unknown as { adapterInfo?: { vendor?: string; architecture?: string } }).adapterInfo;
      return `WebGPU${adapter?.vendor ? `, ${adapter.vendor} ${adapter.architecture ?? ''}`.trimEnd() : ''}`;
    }
    case 'cpu':
      return 'pure JavaScript (slow)';
  }
}

/** Start `wanted` (or the first that starts, for `auto`), falling back in PAGE_BACKENDS order. */
export async function activateBackend(wanted: PageBackend | 'auto'): Promise<ActiveBackend> {
  const order =
    wanted === 'auto'
      ? [...PAGE_BACKENDS]
      : [
          wanted,
          ...PAGE_BACKENDS.filter((b) => b !== wanted && PAGE_BACKENDS.indexOf(b) > PAGE_BACKENDS.indexOf(wanted)),
          ...PAGE_BACKENDS.filter((b) => b !== wanted && PAGE_BACKENDS.indexOf(b) < PAGE_BACKENDS.indexOf(wanted)),
        ];
  const fallbacks: string[] = [];
  for (const name of order) {
    const failure = await trySetBackend(name);
    if (failure === undefined) return { name, detail: describe(name), fallbacks };
    fallbacks.push(`${BACKEND_LABELS[name]} could not start: ${failure}`);
  }
  throw new Error(`no backend could start: ${fallbacks.join('; ')}`);
}
