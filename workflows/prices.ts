/**
 * Claude prices per million tokens, in US dollars, used to bound each call's worst-case cost before it is sent.
 *
 * Source: Anthropic's published API pricing (anthropic.com/pricing and the "Models overview" page of the Claude
 * docs), as published on 2025-11-24. Prices change: an operator extends or overrides this table in
 * `<ORCH_HOME>/prices.json` or the file named by ORCH_PRICES_FILE (see README, "Prices"). A model absent from
 * the table is refused (`unknown_model`): its cost could not be bounded.
 *
 * Sonnet 4 / 4.5 charge more above 200K input tokens; Orch's prompt limit (50,000 characters) keeps every call
 * far below that, so the standard rate is the right worst case.
 */
export interface ModelPrice {
  /** USD per million input tokens. */
  inputPerMTok: number;
  /** USD per million output tokens. */
  outputPerMTok: number;
}

export type PriceTable = Readonly<Record<string, ModelPrice>>;

const opus45: ModelPrice = { inputPerMTok: 5, outputPerMTok: 25 };
const opus4: ModelPrice = { inputPerMTok: 15, outputPerMTok: 75 };
const sonnet: ModelPrice = { inputPerMTok: 3, outputPerMTok: 15 };
const haiku45: ModelPrice = { inputPerMTok: 1, outputPerMTok: 5 };
const haiku35: ModelPrice = { inputPerMTok: 0.8, outputPerMTok: 4 };
const haiku3: ModelPrice = { inputPerMTok: 0.25, outputPerMTok: 1.25 };

export const DEFAULT_PRICES: PriceTable = {
  'claude-opus-4-5': opus45,
  'claude-opus-4-5-20251101': opus45,
  'claude-opus-4-1': opus4,
  'claude-opus-4-1-20250805': opus4,
  'claude-opus-4-0': opus4,
  'claude-opus-4-20250514': opus4,
  'claude-sonnet-4-5': sonnet,
  'claude-sonnet-4-5-20250929': sonnet,
  'claude-sonnet-4-0': sonnet,
  'claude-sonnet-4-20250514': sonnet,
  'claude-3-7-sonnet-latest': sonnet,
  'claude-3-7-sonnet-20250219': sonnet,
  'claude-haiku-4-5': haiku45,
  'claude-haiku-4-5-20251001': haiku45,
  'claude-3-5-haiku-latest': haiku35,
  'claude-3-5-haiku-20241022': haiku35,
  'claude-3-haiku-20240307': haiku3,
};

/** Checks an operator-supplied table; returns the problems (empty when fine). Pure, so workflows can use it. */
export function priceTableProblems(table: unknown): string[] {
  if (typeof table !== 'object' || table === null || Array.isArray(table)) return ['the price table must be an object of model -> {inputPerMTok, outputPerMTok}'];
  const problems: string[] = [];
  for (const [model, price] of Object.entries(table as Record<string, unknown>)) {
    if (!/^[A-Za-z0-9._:@-]{1,100}$/.test(model)) problems.push(`model name ${JSON.stringify(model)} is not a valid model id`);
    const p = price as Partial<ModelPrice> | null;
    for (const k of ['inputPerMTok', 'outputPerMTok'] as const) {
      const v = p?.[k];
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 10_000) problems.push(`${model}.${k} must be a number of US dollars per million tokens (0..10000)`);
    }
  }
  return problems;
}

/** Nano-dollars (1e-9 USD) per token, an integer, so ledger arithmetic never drifts. */
export function nanoUsdPerToken(usdPerMTok: number): number {
  return Math.round(usdPerMTok * 1000);
}
