import { promises as fs } from 'node:fs';

/**
 * Training wall time of a run that was stopped and resumed, estimated from its `train-log.jsonl`.
 *
 * Checkpoints now carry the exact running total (`trainWallSeconds`, see trainer.ts); this estimate is for runs
 * whose earlier sittings predate that. The log has a timestamped entry every `logEvery` episodes and at each
 * validation, so the time between consecutive entries is training (and validation) time, except across a stop,
 * where it also holds the hours the run was not running. Such a gap (longer than five times what its episodes
 * normally take, plus five minutes) is replaced by what its episodes take at the run's median pace; so is the
 * stretch from the start of the run to the first entry. What is lost is each sitting's start-up (seconds).
 */
export interface LoggedWall {
  seconds: number;
  /** Gaps taken for stops and replaced by the median pace. */
  stops: number;
}

interface Entry {
  ms: number;
  episode: number;
}

const STOP_FACTOR = 5;
const STOP_SLACK_S = 300;

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** One line of `train-log.jsonl` (written by trainer.ts): a training-loss report or a validation. */
export interface TrainLogEntry {
  time?: string;
  event?: string;
  episode?: number;
  loss?: number;
  accuracy?: { mean?: number };
}

/** The entries of a train log, in order; blank lines and a line cut short by a kill mid-append are skipped. */
export function parseTrainLog(text: string): TrainLogEntry[] {
  const out: TrainLogEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line) as TrainLogEntry);
    } catch {
      // a torn last line carries nothing
    }
  }
  return out;
}

/** The estimate from the log's lines, or undefined when they hold fewer than two timed training intervals. */
export function wallFromTrainLog(text: string): LoggedWall | undefined {
  const entries: Entry[] = parseTrainLog(text)
    .filter((e) => Number.isFinite(e.episode))
    .map((e) => ({ ms: Date.parse(e.time ?? ''), episode: e.episode as number }))
    .filter((e) => Number.isFinite(e.ms));
  const steps = entries.slice(1).map((e, i) => ({ seconds: (e.ms - entries[i].ms) / 1000, episodes: e.episode - entries[i].episode }));
  const paces = steps.filter((s) => s.episodes > 0 && s.seconds >= 0).map((s) => s.seconds / s.episodes);
  if (paces.length < 2) return undefined;
  const pace = median(paces);
  let seconds = entries[0].episode * pace;
  let stops = 0;
  for (const s of steps) {
    const usual = Math.max(0, s.episodes) * pace;
    if (s.seconds < 0 || s.seconds > STOP_FACTOR * usual + STOP_SLACK_S) {
      seconds += usual;
      stops++;
    } else {
      seconds += s.seconds;
    }
  }
  return { seconds, stops };
}

export async function readTrainLogWall(logPath: string): Promise<LoggedWall | undefined> {
  const text = await fs.readFile(logPath, 'utf8').catch(() => undefined);
  return text === undefined ? undefined : wallFromTrainLog(text);
}
