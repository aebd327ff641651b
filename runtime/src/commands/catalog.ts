import { loadAnyCatalog } from '../catalog/config';

/** `botshard catalog`: the normalised catalog JSON, as the ConfigMaps will hold it. */
export function catalogCommand(opts: { config: string }): string {
  return JSON.stringify(loadAnyCatalog(opts.config), null, 2);
}
