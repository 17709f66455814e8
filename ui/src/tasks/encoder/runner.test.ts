import { describe, expect, it } from "vitest";
import { colourOf, describe as describeInput, lines, py, pythonCall } from "./runner.svelte";

describe("pythonCall", () => {
  it("writes the call a transformers user would type", () => {
    expect(pythonCall("fill-mask", " /m ", "Paris is the [MASK].", { top_k: 3, targets: null })).toBe(
      'pipeline("fill-mask", model="/m")("Paris is the [MASK].", top_k=3, targets=None)',
    );
    expect(py({ question: "Q?", context: "C", multi: true })).toBe(
      '{"question": "Q?", "context": "C", "multi": True}',
    );
  });

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
