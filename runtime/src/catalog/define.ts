import { CatalogInput } from './input';

/**
 * Declares the catalog in `bots.config.ts`. It only gives the editor the types: validation runs
 * when the catalog is loaded (`botshard plan`, `cdk8s synth`), where it reports every problem at once.
 */
export function defineCatalog<const T extends CatalogInput>(catalog: T): T {
  return catalog;
}
