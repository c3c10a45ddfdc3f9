import type { ModelPrice } from './prices';
import { nanoUsdPerToken } from './prices';

/** Integer nano-dollars: 1 USD = 1e9. A cap of 10,000 USD is 1e13, well inside Number.MAX_SAFE_INTEGER. */
export type NanoUsd = number;
export const NANO_PER_USD = 1_000_000_000;

export const usdToNano = (usd: number): NanoUsd => Math.round(usd * NANO_PER_USD);
export const nanoToUsd = (nano: NanoUsd): number => nano / NANO_PER_USD;

export interface Projection {
  spent: NanoUsd;
  reserved: NanoUsd;
  thisCall: NanoUsd;
  cap: NanoUsd;
  fits: boolean;
}

/** Worst case of one call: every input token plus max_tokens of output, at the model's prices. */
export function worstCaseCost(price: ModelPrice, inputTokens: number, maxTokens: number): NanoUsd {
  return inputTokens * nanoUsdPerToken(price.inputPerMTok) + maxTokens * nanoUsdPerToken(price.outputPerMTok);
}

/** Tokens added to a request's text by the Messages API's framing (roles, the system block), at most. */
export const FRAMING_TOKENS = 64;

/** UTF-8 length of `text`, counted in workflow code (no Buffer there). */
export function utf8ByteLength(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 4;
      i++;
    } else bytes += 3;
  }
  return bytes;
}

/**
 * An upper bound of a request's input tokens without asking the API: no tokenizer yields more tokens than UTF-8
 * bytes, plus the framing. Used when that bound fits under the cap, and when the count endpoint is unavailable.
 */
export function inputTokenBound(system: string, prompt: string): number {
  return utf8ByteLength(system) + utf8ByteLength(prompt) + FRAMING_TOKENS;
}

export function actualCost(price: ModelPrice, inputTokens: number, outputTokens: number): NanoUsd {
  return inputTokens * nanoUsdPerToken(price.inputPerMTok) + outputTokens * nanoUsdPerToken(price.outputPerMTok);
}

/**
 * The run's cost ledger. Workflow code is single-threaded, so `reserve` checks and books in one step: two parallel
 * branches that each fit alone but not together can never both hold a reservation.
 */
export class CostLedger {
  private spentNano: NanoUsd = 0;
  private readonly reservations = new Map<string, NanoUsd>();

  constructor(readonly capNano: NanoUsd) {}

  get spent(): NanoUsd {
    return this.spentNano;
  }

  get reserved(): NanoUsd {
    let sum = 0;
    for (const v of this.reservations.values()) sum += v;
    return sum;
  }

  project(amount: NanoUsd): Projection {
    const spent = this.spentNano;
    const reserved = this.reserved;
    return { spent, reserved, thisCall: amount, cap: this.capNano, fits: spent + reserved + amount <= this.capNano };
  }

  /** Books `amount` under `key` if spent + reserved + amount stays within the cap. */
  reserve(key: string, amount: NanoUsd): Projection {
    if (this.reservations.has(key)) throw new Error(`cost ledger: ${key} already holds a reservation`);
    const p = this.project(amount);
    if (p.fits) this.reservations.set(key, amount);
    return p;
  }

  /** Replaces the reservation with what the call really cost. */
  settle(key: string, actual: NanoUsd): void {
    this.reservations.delete(key);
    this.spentNano += actual;
  }

  /** Drops a reservation for a call that was certainly not billed (it was refused before processing). */
  release(key: string): void {
    this.reservations.delete(key);
  }
}
