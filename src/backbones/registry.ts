import type { BackboneFactory } from './contract.ts';
import { Registry } from '../util/registry.ts';

/** Backbones by id (`--backbone conv4`); a plugin adds one with `registerBackbone` at import time. */
export const backbones = new Registry<BackboneFactory>({
  kind: 'backbone',
  registerWith: 'registerBackbone',
  required: {
    create: { type: 'function', fix: 'add create({ imageSize, seed }) returning the backbone' },
  },
});

/** Register a backbone; a plugin calls it at import time (id rule, duplicates and apiVersion checked). */
export function registerBackbone(factory: BackboneFactory): void {
  backbones.register(factory);
}

/** The backbone factory registered as `id`; a UserError naming the known backbones when there is none. */
export function getBackbone(id: string): BackboneFactory {
  return backbones.get(id);
}

/** Every registered backbone (built-ins and plugins), in registration order. */
export function listBackbones(): BackboneFactory[] {
  return backbones.list();
}
