import { describe, expect, it } from "vitest";
import { colourOf, describe as describeInput, lines } from "./runner.svelte";

describe("batch input", () => {
  it("splits batch input into non-empty lines and keeps label colours stable", () => {
    expect(lines(" a \n\n b\n")).toEqual(["a", "b"]);
    expect(colourOf("PER")).toBe(colourOf("PER"));
    expect(colourOf("PER")).toBeGreaterThanOrEqual(0);
    expect(colourOf("PER")).toBeLessThan(8);
  });
});

describe("describeInput", () => {
  it("reads a text, a text pair or a question", () => {
    expect(describeInput("plain")).toBe("plain");
    expect(describeInput({ text: "a", text_pair: "b" })).toBe("a / b");
    expect(describeInput({ question: "Q?", context: "C" })).toBe("Q?");
  });
});
