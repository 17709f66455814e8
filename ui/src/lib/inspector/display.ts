// Pure helpers for drawing tokens; unit-tested in display.test.ts.
import type { TokenView } from "../bindings/TokenView";

/** Characters that draw nothing: other controls, zero-width and format characters, variation
 * selectors. A chip made only of these would look empty, so they are shown by code point. */
const INVISIBLE = /[\p{Cc}\p{Cf}\u{FE00}-\u{FE0F}\u{E0100}-\u{E01EF}]/gu;

/** Makes whitespace and invisible characters visible inside a chip. */
export function visibleWhitespace(text: string): string {
  return text
    .replace(/ /g, "·")
    .replace(/\t/g, "⇥")
    .replace(/\r?\n/g, "⏎")
    .replace(INVISIBLE, (c) => `U+${c.codePointAt(0)?.toString(16).toUpperCase().padStart(4, "0")}`);
}

/** What a chip shows: the text it covers, or its vocabulary entry when it covers none. */
export function chipLabel(token: TokenView): string {
  if (token.special || token.control || token.padding || token.text.length === 0) return token.token;
  return visibleWhitespace(token.text);
}

/** Neighbouring tokens get clearly different colours; the palette has eight. */
export function chipColor(index: number): number {
  return index % 8;
}

/** Bytes `start..end` of UTF-8 text, as hex pairs ("e2 82 ac"): exactly the bytes a token
 * covers, which for byte-level tokens can be part of a character. */
export function hexRange(bytes: Uint8Array, start: number, end: number): string {
  return Array.from(bytes.subarray(start, end), (b) => b.toString(16).padStart(2, "0")).join(" ");
}

/** "1 token" / "12,345 tokens". */
export function plural(n: number, word: string): string {
  return `${n.toLocaleString("en-US")} ${word}${n === 1 ? "" : "s"}`;
}

/** Only this many chips are drawn; a huge paste would otherwise stall the window. */
export const MAX_CHIPS = 2000;
