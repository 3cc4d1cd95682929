/**
 * tfjs-core ships no gradient definitions in its Node (CommonJS) build; the `@tensorflow/tfjs` bundle
 * registers them on the same tfjs-core instance every backend uses. Importing it here (for its side
 * effect) makes tf.grads work wherever a module that needs gradients is loaded. Importing tfjs-core's
 * ESM `register_all_gradients` instead would register them on a second, separate engine.
 */
import { createRequire } from 'node:module';

// Loaded with require rather than `import '@tensorflow/tfjs'`: the effect is the same (Node resolves both to
// the one CommonJS instance), but a side-effect import would be copied into the published .d.ts and drag the
// whole umbrella's declarations (tfjs-layers' among them, which fail a strict consumer's type check) into
// every project that imports fewshot.
createRequire(import.meta.url)('@tensorflow/tfjs');
