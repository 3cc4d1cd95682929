import { ENGINE_REVISION } from '../backend/engine-revision.ts';
import type { ResultRecord } from '../reports/results.ts';

/**
 * Was this result made by today's engine? `undefined` when it records the current engine revision; otherwise a
 * short note for `reproduce --dry-run` ("older engine: …") saying which commit made it, so a user knows that a
 * rerun may not match its number to the last digit (and which commit would).
 */
export function olderEngineNote(record: Pick<ResultRecord, 'software'>): string | undefined {
  const recorded = record.software?.engineRevision;
  if (recorded === String(ENGINE_REVISION)) return undefined;
  const commit = record.software?.commit ?? 'unknown';
  const made = recorded === undefined ? 'engine revision not recorded' : `engine revision ${recorded}`;
  return `older engine: made at commit ${commit}, ${made}, now ${ENGINE_REVISION}; a rerun may not match it exactly`;
}
