/**
 * The name rules of the catalog, in one place: bot ids, tenant ids, group and pool names are DNS-1035
 * labels (they become Kubernetes object names and URL path segments). The catalog checks them, the
 * router refuses other bot ids before any lookup, and the constructs check generated names with them.
 */

/** Lower-case letters, digits and "-", starting with a letter and ending with a letter or digit. */
export const DNS_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
/** The longest DNS label Kubernetes accepts. */
export const MAX_DNS_LABEL = 63;
/** Bot ids and group names are DNS labels: `<group>-<bot>` (dedicated pools) must stay within 63. */
export const MAX_BOT_ID = 40;
export const MAX_GROUP_NAME = 20;

/** A DNS label of at most `max` characters. */
export function isDnsLabel(s: string, max = MAX_DNS_LABEL): boolean {
  return s.length <= max && DNS_LABEL.test(s);
}

/** A bot id the catalog could hold. */
export function isBotId(s: string): boolean {
  return isDnsLabel(s, MAX_BOT_ID);
}

/** A model version label (the catalog's `version`, a `/versions/{v}` path segment, gRPC `model_version`). */
export const MODEL_VERSION_PATTERN = '[0-9A-Za-z][0-9A-Za-z._-]{0,63}';
export const MODEL_VERSION = new RegExp(`^${MODEL_VERSION_PATTERN}$`);
