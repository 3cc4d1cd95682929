import test from 'ava';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
test('x', (t) => { t.is(typeof tf.tensor, 'function'); });
