// Moved to src/episodes/images.ts (episodes own the episode); re-exported here so existing importers
// (trainer, augmentation, bench) keep working unchanged.
export { disposeEpisode, labelMajorLabels, toEpisodeImages, type EpisodeIndices, type EpisodeTensors as EpisodeImages, type ImageSource } from '../episodes/images.ts';
export type { EpisodeSpec as EpisodeShape } from '../episodes/spec.ts';
