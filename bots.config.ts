/**
 * The botshard catalog: bots, pool groups and platform settings.
 * Edit it, then `npx botshard plan` shows where each bot lands and `npx botshard diff` what moves.
 */
import { BotInput, EntityRuleInput, IntentInput, defineCatalog } from '@botshard/runtime';

/** Intents per domain and language, with example utterances (the demo models learn from them). */
const DOMAINS: Record<string, Record<string, IntentInput[]>> = {
  support: {
    en: [
      { name: 'password_reset', examples: ['I forgot my password', 'reset my password please', 'cannot log in to my account'] },
      { name: 'billing', examples: ['why was I charged twice', 'question about my invoice', 'my bill is wrong'] },
      { name: 'cancel_subscription', examples: ['cancel my subscription', 'I want to stop my plan', 'end my membership'] },
      { name: 'greeting', examples: ['hello there', 'hi good morning', 'hey'] },
    ],
    de: [
      { name: 'password_reset', examples: ['ich habe mein passwort vergessen', 'passwort zurücksetzen bitte', 'ich kann mich nicht anmelden'] },
      { name: 'billing', examples: ['warum wurde ich doppelt belastet', 'frage zu meiner rechnung', 'meine rechnung ist falsch'] },
      { name: 'cancel_subscription', examples: ['abo kündigen', 'ich möchte meinen vertrag beenden', 'mitgliedschaft kündigen'] },
      { name: 'greeting', examples: ['hallo', 'guten morgen', 'servus'] },
    ],
    fr: [
      { name: 'password_reset', examples: ["j'ai oublié mon mot de passe", 'réinitialiser mon mot de passe', 'je ne peux pas me connecter'] },
      { name: 'billing', examples: ["pourquoi j'ai été débité deux fois", 'question sur ma facture', 'ma facture est fausse'] },
      { name: 'cancel_subscription', examples: ['résilier mon abonnement', 'je veux arrêter mon forfait', 'annuler mon adhésion'] },
      { name: 'greeting', examples: ['bonjour', 'salut', 'bonsoir'] },
    ],
  },
  banking: {
    en: [
      { name: 'balance', examples: ['what is my balance', 'how much money do I have', 'show my account balance'] },
      { name: 'transfer', examples: ['send money to my sister', 'transfer 50 euros to savings', 'make a bank transfer'] },
      { name: 'card_lost', examples: ['I lost my card', 'my credit card was stolen', 'block my card'] },
    ],
    de: [
      { name: 'balance', examples: ['wie ist mein kontostand', 'wie viel geld habe ich', 'kontostand anzeigen'] },
      { name: 'transfer', examples: ['geld an meine schwester senden', 'überweise 50 euro auf das sparkonto', 'eine überweisung machen'] },
      { name: 'card_lost', examples: ['ich habe meine karte verloren', 'meine kreditkarte wurde gestohlen', 'karte sperren'] },
    ],
  },
  travel: {
    en: [
      { name: 'book_flight', examples: ['book a flight to paris', 'I need a plane ticket', 'find flights to berlin tomorrow'] },
      { name: 'cancel_booking', examples: ['cancel my booking', 'I cannot travel please cancel', 'refund my trip'] },
      { name: 'baggage', examples: ['how many bags can I take', 'my luggage is lost', 'baggage allowance'] },
    ],
    fr: [
      { name: 'book_flight', examples: ['réserver un vol pour paris', "j'ai besoin d'un billet d'avion", 'trouver des vols pour berlin demain'] },
      { name: 'cancel_booking', examples: ['annuler ma réservation', 'je ne peux pas voyager annulez', 'rembourser mon voyage'] },
      { name: 'baggage', examples: ['combien de bagages puis-je prendre', 'ma valise est perdue', 'franchise bagages'] },
    ],
  },
  retail: {
    en: [
      { name: 'order_status', examples: ['where is my order', 'track my package', 'has my parcel shipped'] },
      { name: 'return', examples: ['I want to return this', 'how do I send it back', 'return policy'] },
      { name: 'product_info', examples: ['is this available in blue', 'what size should I buy', 'tell me about this product'] },
    ],
    de: [
      { name: 'order_status', examples: ['wo ist meine bestellung', 'paket verfolgen', 'wurde mein paket verschickt'] },
      { name: 'return', examples: ['ich möchte das zurückgeben', 'wie schicke ich es zurück', 'rückgabe bedingungen'] },
      { name: 'product_info', examples: ['gibt es das in blau', 'welche größe soll ich kaufen', 'infos zu diesem produkt'] },
    ],
  },
};

/** Pre-processing shared by all bots: strip e-mail addresses and collapse whitespace before tokenizing. */
const PREPROCESS = [
  { pattern: '[\\w.+-]+@[\\w-]+\\.[\\w.]+', replace: ' email ' },
  { pattern: '\\s+', replace: ' ' },
];

/** Entities extracted after classification. */
const ENTITIES: Record<string, EntityRuleInput[]> = {
  support: [{ name: 'ticket', pattern: '\\b(?:ticket|case)\\s*#?\\s*([0-9]{4,10})', flags: 'i' }],
  banking: [{ name: 'amount', pattern: '([0-9]+(?:[.,][0-9]{2})?)\\s*(?:€|eur|euros?|usd|\\$)', flags: 'i' }],
  travel: [{ name: 'city', pattern: '\\b(paris|berlin|london|rome|madrid)\\b', flags: 'i' }],
  retail: [{ name: 'order', pattern: '\\b([A-Z]{2}-[0-9]{6})\\b' }],
};

/** tenant, domain, language, real-time?, head size in MiB */
const BOTS: Array<[string, keyof typeof DOMAINS, string, boolean, number]> = [
  ['acme', 'support', 'en', true, 12], ['acme', 'support', 'de', true, 12], ['acme', 'support', 'fr', true, 12],
  ['acme', 'retail', 'en', true, 8], ['acme', 'retail', 'de', true, 8], ['acme', 'banking', 'en', false, 16],
  ['globex', 'support', 'en', true, 10], ['globex', 'support', 'de', true, 10], ['globex', 'banking', 'en', true, 16],
  ['globex', 'banking', 'de', true, 16], ['globex', 'travel', 'en', false, 20], ['globex', 'travel', 'fr', false, 20],
  ['initech', 'support', 'en', true, 6], ['initech', 'retail', 'en', true, 6], ['initech', 'retail', 'de', false, 6],
  ['initech', 'travel', 'en', true, 14], ['initech', 'banking', 'de', false, 14], ['initech', 'support', 'fr', false, 6],
  ['umbrella', 'support', 'en', true, 24], ['umbrella', 'support', 'de', true, 24], ['umbrella', 'banking', 'en', true, 32],
  ['umbrella', 'travel', 'en', true, 18], ['umbrella', 'travel', 'fr', true, 18], ['umbrella', 'retail', 'en', false, 10],
  ['hooli', 'support', 'en', true, 8], ['hooli', 'support', 'fr', true, 8], ['hooli', 'retail', 'en', true, 8],
  ['hooli', 'retail', 'de', true, 8], ['hooli', 'banking', 'en', false, 12], ['hooli', 'travel', 'en', false, 12],
  ['stark', 'support', 'en', true, 20], ['stark', 'banking', 'en', true, 28], ['stark', 'banking', 'de', true, 28],
  ['stark', 'travel', 'en', false, 16], ['stark', 'retail', 'en', false, 10], ['stark', 'support', 'de', false, 20],
  ['wayne', 'support', 'en', true, 10], ['wayne', 'banking', 'en', true, 18], ['wayne', 'travel', 'fr', true, 14],
  ['wayne', 'retail', 'de', false, 8], ['wayne', 'support', 'fr', false, 10], ['wayne', 'travel', 'en', false, 14],
];

const bots: BotInput[] = BOTS.map(([tenant, domain, language, realtime, headMi]) => ({
  id: `${tenant}-${domain}-${language}`,
  tenant,
  realtime,
  properties: { language, domain, tier: realtime ? 'standard' : 'batch' },
  model: { head: `heads/${tenant}-${domain}-${language}.onnx`, memory: `${headMi}Mi`, encoder: `encoder-${language}` },
  intents: DOMAINS[domain][language],
  preprocess: PREPROCESS,
  postprocess: { threshold: 0.35, fallback: 'fallback', entities: ENTITIES[domain] },
}));

// A VIP bot on a pool of its own: nothing else shares its memory or its CPU.
bots.push({
  id: 'acme-vip-support-en',
  tenant: 'acme',
  realtime: true,
  properties: { language: 'en', domain: 'support', tier: 'vip' },
  model: { head: 'heads/acme-vip-support-en.onnx', memory: '24Mi', encoder: 'encoder-en' },
  intents: DOMAINS.support.en,
  preprocess: PREPROCESS,
  postprocess: { threshold: 0.5, fallback: 'human_handoff', entities: ENTITIES.support },
  pin: 'acme-vip',
});

const tokenizer = { kind: 'hashing', buckets: 4096, maxTokens: 64 } as const;

export default defineCatalog({
  // auth: 'tenant-keys' requires an API key of the bot's tenant on every request (docs/router.md, "Tenants").
  // prometheusOperator: PodMonitors and alerts for clusters that run the Prometheus Operator (docs/operations.md).
  platform: { namespace: 'botshard', strategy: 'sharded', modelRoot: 'models', auth: 'none', prometheusOperator: true },
  tenants: ['acme', 'globex', 'initech', 'umbrella', 'hooli', 'stark', 'wayne'].map((id) => ({ id })),
  encoders: ['en', 'de', 'fr'].map((language) => ({
    id: `encoder-${language}`,
    path: `encoders/${language}.onnx`,
    memory: '48Mi',
    tokenizer,
    dimensions: 64,
  })),
  groups: [
    {
      name: 'realtime',
      realtime: true,
      selector: { realtime: true },
      pools: 'auto',
      memory: '512Mi',
      fillFactor: 0.75,
      locality: 'encoder',
      dedicatedPools: ['acme-vip'],
      replicas: { min: 2, max: 10 },
      timeoutMs: 2000,
      concurrency: 32,
      priorityClassName: 'botshard-realtime',
    },
    {
      name: 'batch',
      realtime: false,
      selector: { realtime: false },
      pools: 'auto',
      memory: '1Gi',
      fillFactor: 0.85,
      locality: 'encoder',
      replicas: { min: 1, max: 4 },
      timeoutMs: 60000,
      concurrency: 8,
      tolerations: [{ key: 'botshard.io/batch', operator: 'Exists', effect: 'NoSchedule' }],
      nodeSelector: { 'botshard.io/pool-class': 'batch' },
    },
  ],
  bots,
});
