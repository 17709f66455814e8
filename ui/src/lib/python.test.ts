import { describe, expect, it } from "vitest";
import { py, pythonCall, pythonKwargs, sentenceTransformersCall } from "./python";

describe("pythonCall", () => {
  it("writes the call a transformers user would type", () => {
    expect(pythonCall("fill-mask", " /m ", "Paris is the [MASK].", { top_k: 3, targets: null })).toBe(
      'pipeline("fill-mask", model="/m")("Paris is the [MASK].", top_k=3, targets=None)',
    );
    expect(py({ question: "Q?", context: "C", multi: true })).toBe(
      '{"question": "Q?", "context": "C", "multi": True}',
    );
  });

  it("leaves Wick's own keyword arguments out", () => {
    expect(pythonKwargs({ max_new_tokens: 5, logprobs: 8, seed: 3, sentence_embedding: true })).toEqual({
      max_new_tokens: 5,
    });
    expect(pythonCall("feature-extraction", "m", ["a"], { sentence_embedding: true })).toBe(
      'pipeline("feature-extraction", model="m")(["a"])',
    );
    expect(sentenceTransformersCall("m", ["a", "b"], 32)).toBe(
      'SentenceTransformer("m").encode(["a", "b"], batch_size=32)',
    );
  });
});
