// Public surface of the episode layer: seeded, pure sampling over index arrays, and fixed episode files.
export { episodeSpecSchema, specLabel, specTag, validateSpec, type ClassLayout, type EpisodeSpec, type StandardEpisodeSet } from './spec.ts';
export { disposeEpisode, labelMajorLabels, toEpisodeImages, type EpisodeIndices, type EpisodeImages, type ImageSource } from './images.ts';
export { SAMPLER_VERSION, episodeRngKey, episodeStream, sampleEpisode, sampleEpisodes, type EpisodeKey, type SampledEpisode } from './sampler.ts';
export { EPISODE_FILE_FORMAT, EPISODE_FILE_FORMAT_VERSION, type EpisodeSet, type EpisodeSetHeader } from './parse.ts';
// every name of file.ts (making, writing, reading and checking episode files) is public
export * from './file.ts';
export { EPISODES_DIR, STANDARD_EPISODE_SETS, defaultEpisodeFile, episodeFileFor, registerStandardEpisodeSets, standardEpisodeSets } from './standard.ts';
export { makeStandardEpisodeFiles, type WrittenEpisodeFile } from './make-standard.ts';
