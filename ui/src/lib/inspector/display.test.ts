import { describe, expect, it } from "vitest";
import type { TokenView } from "../bindings/TokenView";
import { chipColor, chipLabel, hexRange, plural, visibleWhitespace } from "./display";

const token = (over: Partial<TokenView>): TokenView => ({
  id: 1,
  token: "tok",
  text: "tok",
  start: 0,
  end: 3,
  byteStart: 0,
  byteEnd: 3,
  special: false,
  padding: false,
  control: false,
  word: 0,
  ...over,
});

describe("display helpers", () => {
  it("shows whitespace", () => {
    expect(visibleWhitespace(" a\tb\nc\r\n")).toBe("·a⇥b⏎c⏎");
    expect(visibleWhitespace("\u{FE0F}")).toBe("U+FE0F");
    expect(visibleWhitespace("a\u200Db")).toBe("aU+200Db");
  });

  it("labels special tokens by their vocabulary entry", () => {
    expect(chipLabel(token({ special: true, text: "", token: "[CLS]" }))).toBe("[CLS]");
    expect(chipLabel(token({ text: " hi", token: "Ġhi" }))).toBe("·hi");
    expect(chipLabel(token({ padding: true, text: "", token: "[PAD]" }))).toBe("[PAD]");
  });

  it("cycles colours", () => {
    expect(chipColor(0)).toBe(0);
    expect(chipColor(9)).toBe(1);
  });

  it("hex-encodes a byte range of UTF-8", () => {
    const bytes = new TextEncoder().encode("a€");
    expect(hexRange(bytes, 1, 4)).toBe("e2 82 ac");
    expect(hexRange(bytes, 1, 3)).toBe("e2 82");
    expect(hexRange(bytes, 0, 0)).toBe("");
  });

  it("pluralises", () => {
    expect(plural(1, "token")).toBe("1 token");
    expect(plural(12345, "token")).toBe("12,345 tokens");
  });
});
