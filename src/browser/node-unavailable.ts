/**
 * The browser build's stand-in for `node:worker_threads` (scripts/build-web.mjs maps it here). Only the
 * wasm helper thread of the Node training kernels (src/backend/wasm/helper_thread.ts) imports it, and it is
 * reached only when those kernels load, which they do not in the page (they need Node's Buffer); should it
 * be reached, constructing a Worker says so instead of failing obscurely.
 */
export class Worker {
  constructor() {
    throw new Error('node:worker_threads is not available in the browser page');
  }
}
