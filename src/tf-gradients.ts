/**
 * tfjs-core ships no gradient definitions in its Node (CommonJS) build; the `@tensorflow/tfjs` bundle
 * registers them on the same tfjs-core instance every backend uses. Importing it here (for its side
 * effect) makes tf.grads work wherever a module that needs gradients is loaded. Importing tfjs-core's
 * ESM `register_all_gradients` instead would register them on a second, separate engine.
 */
import '@tensorflow/tfjs';
