import type { BackboneFactory } from './contract.ts';
import { UserError } from '../util/errors.ts';
import { didYouMean } from '../util/suggest.ts';

const backbones = new Map<string, BackboneFactory>();

export function registerBackbone(factory: BackboneFactory): void {
  if (backbones.has(factory.id)) throw new UserError(`backbone "${factory.id}" is registered twice`, 'give it a different id');
  backbones.set(factory.id, factory);
}

export function getBackbone(id: string): BackboneFactory {
  const f = backbones.get(id);
  if (!f) throw new UserError(`unknown backbone "${id}"${didYouMean(id, [...backbones.keys()])}`, `use one of: ${[...backbones.keys()].join(', ')}`);
  return f;
}

export function listBackbones(): BackboneFactory[] {
  return [...backbones.values()];
}
