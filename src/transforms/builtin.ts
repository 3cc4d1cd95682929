import type { ImageTransform, TransformSet } from './contract.ts';
import { type ChannelOrder, type QuarterTurns, channelOrderName, isIdentityOrder, permuteChannels, rotate90 } from './ops.ts';

/** A rotation by k·90° followed by a channel permutation (the two commute). */
export function rotateAndPermute(quarterTurns: QuarterTurns, channels: ChannelOrder): ImageTransform {
  const isRotated = quarterTurns !== 0;
  const isPermuted = !isIdentityOrder(channels);
  const parts = [...(isRotated ? [`rot${quarterTurns * 90}`] : []), ...(isPermuted ? [channelOrderName(channels)] : [])];
  return {
    name: parts.length ? parts.join('+') : 'identity',
    isIdentity: !isRotated && !isPermuted,
    needsSquare: quarterTurns % 2 === 1,
    apply: (images) => permuteChannels(rotate90(images, quarterTurns), channels),
    pixelPermutation: { quarterTurns, channels },
  };
}

const RGB: ChannelOrder = [0, 1, 2];
const RBG: ChannelOrder = [0, 2, 1];
const GRB: ChannelOrder = [1, 0, 2];
const GBR: ChannelOrder = [1, 2, 0];
const BRG: ChannelOrder = [2, 0, 1];
const BGR: ChannelOrder = [2, 1, 0];
/** `color_perm` order of the official augmentations.py. */
const ALL_PERMS = [RGB, RBG, GRB, GBR, BRG, BGR];
/** The 3 cyclic permutations used by `color_perm3` and the `rot_color_perm{6,12}` sets. */
const CYCLIC_PERMS = [RGB, GBR, BRG];
const ALL_TURNS: QuarterTurns[] = [0, 1, 2, 3];

/** Rotations as the outer loop, permutations as the inner loop (j = r·|perms| + p), as in augmentations.py. */
function product(turns: readonly QuarterTurns[], perms: readonly ChannelOrder[]): ImageTransform[] {
  return turns.flatMap((k) => perms.map((p) => rotateAndPermute(k, p)));
}

/** The sets of SLA's augmentations.py (docs/reference.md §1.2), in its exact orders. */
export const BUILTIN_TRANSFORM_SETS: readonly TransformSet[] = [
  { name: 'rotation', description: 'rotations by 0°, 90°, 180°, 270° (M=4, the SLA default)', transforms: product(ALL_TURNS, [RGB]) },
  { name: 'rotation2', description: 'rotations by 0° and 180° (M=2)', transforms: product([0, 2], [RGB]) },
  { name: 'color_perm', description: 'all 6 colour-channel permutations RGB, RBG, GRB, GBR, BRG, BGR (M=6)', transforms: product([0], ALL_PERMS) },
  { name: 'color_perm3', description: 'cyclic colour permutations RGB, GBR, BRG (M=3)', transforms: product([0], CYCLIC_PERMS) },
  { name: 'rot_color_perm6', description: '{0°, 180°} × {RGB, GBR, BRG} (M=6)', transforms: product([0, 2], CYCLIC_PERMS) },
  { name: 'rot_color_perm12', description: '{0°, 90°, 180°, 270°} × {RGB, GBR, BRG} (M=12)', transforms: product(ALL_TURNS, CYCLIC_PERMS) },
  { name: 'rot_color_perm24', description: '{0°, 90°, 180°, 270°} × all 6 colour permutations (M=24)', transforms: product(ALL_TURNS, ALL_PERMS) },
];
