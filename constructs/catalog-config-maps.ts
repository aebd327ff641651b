import { Construct } from 'constructs';
import * as k8s from 'cdk8s-plus-27/lib/imports/k8s';
import { Catalog, CatalogPart, IndexPart, buildIndex, indexFileName, indexText, partFileName, serializePart, splitCatalog } from '@botshard/runtime';
import { LABEL_GENERATION, checkName, objectLabels } from './names';
import { CATALOG_MOUNT } from './workload';

/** Kubernetes refuses ConfigMaps whose data exceeds 1 MiB. */
export const CONFIGMAP_LIMIT = 1024 * 1024;

export interface CatalogConfigMapsProps {
  /** The normalised catalog (from `normalizeCatalog`). */
  readonly catalog: Catalog;
  /** Namespace of the ConfigMaps. @default - the catalog's `platform.namespace` */
  readonly namespace?: string;
  /** Platform name: ConfigMaps are `<name>-catalog-0000`, `-0001`, ... @default "botshard" */
  readonly name?: string;
  /**
   * Largest catalog part in one ConfigMap, in bytes, measured as the ConfigMap carries it (JSON-escaped, as
   * kubectl, Argo CD and etcd see it), so that the whole object stays under the 1 MiB limit.
   * @default 921600 (900 KiB)
   */
  readonly maxPartBytes?: number;
  /**
   * How many ConfigMaps the projected volume lists (those beyond the catalog's current parts are
   * optional), so the catalog can grow to this many parts without changing pod specs, which would roll every pool.
   * @default 8
   */
  readonly reservedParts?: number;
}

/**
 * The normalised catalog as ConfigMaps (each under 1 MiB) and the projected volume that mounts them all as
 * one folder, read-only and without subPath, so ConfigMap updates reach running pods.
 */
export class CatalogConfigMaps extends Construct {
  /** Names of the ConfigMaps holding the catalog's parts, in part order. */
  public readonly configMapNames: string[];
  /** Names of the ConfigMaps holding the placement index, in part order. */
  public readonly indexConfigMapNames: string[];
  /** Names the projected volume lists: the parts, then optional reserved ones. */
  public readonly volumeConfigMapNames: string[];
  /** Names the index volume lists: the index parts, then optional reserved ones. */
  public readonly indexVolumeConfigMapNames: string[];
  /** The catalog's parts as the ConfigMaps hold them. */
  public readonly parts: CatalogPart[];
  /** The placement index's parts as the ConfigMaps hold them. */
  public readonly indexParts: IndexPart[];
  /** Path where workloads mount the catalog folder (`BOTSHARD_CATALOG`). */
  public readonly mountPath = CATALOG_MOUNT;
  /** Namespace of the ConfigMaps (workloads mounting them must run there). */
  public readonly namespace: string;

  constructor(scope: Construct, id: string, props: CatalogConfigMapsProps) {
    super(scope, id);
    const platform = props.name ?? 'botshard';
    const namespace = checkName(props.namespace ?? props.catalog.platform.namespace, 'dns-1123-label', 'CatalogConfigMaps: namespace', 'use a DNS label');
    this.namespace = namespace;
    const maxPartBytes = props.maxPartBytes ?? 900 * 1024;
    const reserved = props.reservedParts ?? 8;
    if (!Number.isInteger(maxPartBytes) || maxPartBytes < 16 * 1024 || maxPartBytes > CONFIGMAP_LIMIT - 64 * 1024) {
      throw new Error(`CatalogConfigMaps: maxPartBytes must be a whole number from ${16 * 1024} to ${CONFIGMAP_LIMIT - 64 * 1024} (room for the envelope under the 1 MiB ConfigMap limit), got ${JSON.stringify(maxPartBytes)}: leave it unset for 900 KiB`);
    }
    if (!Number.isInteger(reserved) || reserved < 1 || reserved > 256) {
      throw new Error(`CatalogConfigMaps: reservedParts must be a whole number from 1 to 256, got ${JSON.stringify(reserved)}: leave it unset for 8`);
    }
    this.parts = fit((size) => splitCatalog(props.catalog, size), (p) => serializePart(p).text, maxPartBytes);
    // Each part serialized once: its text goes into its ConfigMap, its bot spans into the index.
    const written = this.parts.map(serializePart);
    const spans = written.map((w) => w.spans);
    this.indexParts = fit((size) => buildIndex(props.catalog, this.parts, size, spans), indexText, maxPartBytes);
    const nameOf = (kind: string) => (i: number) => checkName(`${platform}-${kind}-${String(i).padStart(4, '0')}`, 'dns-1123-subdomain', `${kind} ConfigMap name`, 'shorten the platform name');
    this.configMapNames = this.parts.map((_, i) => nameOf('catalog')(i));
    this.indexConfigMapNames = this.indexParts.map((_, i) => nameOf('catalog-index')(i));
    this.volumeConfigMapNames = Array.from({ length: Math.max(this.parts.length, reserved) }, (_, i) => nameOf('catalog')(i));
    this.indexVolumeConfigMapNames = Array.from({ length: Math.max(this.indexParts.length, reserved) }, (_, i) => nameOf('catalog-index')(i));
    const labels = objectLabels(platform, 'catalog', `${platform}-catalog`, { [LABEL_GENERATION]: props.catalog.generation });

    const configMap = (name: string, file: string, data: string) => {
      const bytes = serializedBytes(data) + Buffer.byteLength(file);
      if (bytes >= CONFIGMAP_LIMIT - 16 * 1024) {
        throw new Error(`CatalogConfigMaps: ${file} holds ${bytes} bytes, over the 1 MiB ConfigMap limit: lower maxPartBytes (now ${maxPartBytes})`);
      }
      new k8s.KubeConfigMap(this, file, { metadata: { name, namespace, labels }, data: { [file]: data } });
    };
    this.parts.forEach((_, i) => configMap(this.configMapNames[i], partFileName(i), written[i].text));
    this.indexParts.forEach((part, i) => configMap(this.indexConfigMapNames[i], indexFileName(i), indexText(part)));

    this.node.addValidation({
      validate: () => {
        const bots = this.parts.reduce((n, p) => n + p.bots.length, 0);
        const rows = this.indexParts.reduce((n, p) => n + p.bots.length, 0);
        return [
          ...(bots === props.catalog.bots.length ? [] : [`the catalog parts hold ${bots} bots, the catalog ${props.catalog.bots.length}: splitCatalog lost bots`]),
          ...(rows === props.catalog.bots.length ? [] : [`the placement index holds ${rows} rows, the catalog ${props.catalog.bots.length} bots: buildIndex lost bots`]),
        ];
      },
    });
  }

  /** The projected volume of every catalog and index ConfigMap (each part 0 required, the others optional): what pools mount. */
  public volume(name: string): k8s.Volume {
    return projected(name, [this.volumeConfigMapNames, this.indexVolumeConfigMapNames]);
  }

  /** The projected volume of the index ConfigMaps only: what the router mounts (it never reads a bot's definition). */
  public indexVolume(name: string): k8s.Volume {
    return projected(name, [this.indexVolumeConfigMapNames]);
  }
}

/** One folder of ConfigMaps, updated atomically together; the first of each list required. */
function projected(name: string, lists: string[][]): k8s.Volume {
  return {
    name,
    projected: {
      defaultMode: 0o444,
      sources: lists.flatMap((names) => names.map((cm, i) => ({ configMap: { name: cm, ...(i > 0 ? { optional: true } : {}) } }))),
    },
  };
}

/** Bytes of a data value once serialized in the object's JSON (quotes and newlines escaped). */
function serializedBytes(data: string): number {
  return Buffer.byteLength(JSON.stringify(data));
}

/**
 * Splitting measures plain JSON; escaping inside the ConfigMap adds ~15%. Split again with a smaller
 * size until every part fits `maxBytes` as serialized (deterministic: same catalog, same parts).
 */
function fit<T>(split: (size: number) => T[], text: (part: T) => string, maxBytes: number): T[] {
  let size = maxBytes;
  for (let attempt = 0; attempt < 8; attempt++) {
    const parts = split(size);
    const worst = Math.max(...parts.map((p) => serializedBytes(text(p))));
    if (worst <= maxBytes) return parts;
    size = Math.floor((size * maxBytes) / worst) - 1024;
  }
  throw new Error(`CatalogConfigMaps: cannot split the catalog into parts of at most ${maxBytes} serialized bytes: raise maxPartBytes or shorten the largest bots`);
}
