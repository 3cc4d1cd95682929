/**
 * Registers tfjs-core's gradient definitions (tf.grads / tf.variableGrads need them on every backend).
 *
 * Why this exists: `import * as tf from '@tensorflow/tfjs-core'` under Node loads the CJS bundle
 * (dist/tf-core.node.js), which contains no gradient configs; only the `@tensorflow/tfjs` umbrella package
 * registers them. tfjs-core ships them as ESM files (dist/register_all_gradients.js) whose relative imports
 * have no extensions (`'./gradients'`, where both a file and a folder of that name exist), so Node's ESM
 * resolver refuses them. A tiny resolve hook retries such specifiers with `.js`. The gradient functions then
 * build on tfjs-core's ESM op modules, which share the one global engine, kernel and gradient registries with
 * the CJS bundle (tfjs keeps them on the global object and makes `instanceof Tensor` structural for this).
 */
import * as tf from '@tensorflow/tfjs-core';
import { register } from 'node:module';

const RESOLVE_HOOK = `
export async function resolve(specifier, context, next) {
  try {
    return await next(specifier, context);
  } catch (err) {
    const parent = context.parentURL ?? '';
    if (specifier.startsWith('.') && !specifier.endsWith('.js') && parent.includes('/@tensorflow/tfjs-core/dist/')) {
      return next(specifier + '.js', context);
    }
    throw err;
  }
}`;

let pending: Promise<void> | null = null;

/** Whether the gradients a convnet training step needs are registered. */
export function coreGradientsRegistered(): boolean {
  return tf.getGradient(tf.Conv2D) != null && tf.getGradient(tf.Sum) != null && tf.getGradient(tf.FusedBatchNorm) != null;
}

/** Registers all tfjs-core gradients once (no-op when something else already did). */
export function registerCoreGradients(): Promise<void> {
  if (coreGradientsRegistered()) return Promise.resolve();
  pending ??= (async () => {
    register(`data:text/javascript,${encodeURIComponent(RESOLVE_HOOK)}`, import.meta.url);
    const specifier = '@tensorflow/tfjs-core/dist/register_all_gradients.js';
    await import(specifier);
    if (!coreGradientsRegistered()) throw new Error('tfjs-core gradients did not register');
  })();
  return pending;
}
