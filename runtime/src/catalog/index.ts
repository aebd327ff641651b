export * from './types';
export * from './problems';
export { parseMemory, formatMemory } from './memory';
export { defineCatalog } from './define';
export { normalizeCatalog, NormalizeResult, selectorMatches, groupOf, MAX_BOT_ID, MAX_GROUP_NAME } from './normalize';
export { canonicalJson, canonicalGeneration } from './canonical';
export { splitCatalog, partFileName, CatalogPart } from './parts';
export { loadCatalog, readCatalogInput, joinParts } from './load';
