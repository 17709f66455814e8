import { describe, expect, it } from "vitest";
import { BackendError, toBackendError } from "./backend";

describe("toBackendError", () => {
  it("keeps the code and message of an engine error payload", () => {
    const err = toBackendError({ code: "no_tokenizer", message: "no tokenizer found in /m" });
    expect(err).toBeInstanceOf(BackendError);
    expect(err.code).toBe("no_tokenizer");
    expect(err.message).toBe("no tokenizer found in /m");
  });

  it("turns anything else into an internal error with its text", () => {
    const err = toBackendError("window closed");
    expect(err.code).toBe("internal");
    expect(err.message).toBe("window closed");
  });

  it("passes a BackendError through unchanged", () => {
    const original = new BackendError({ code: "io", message: "disk" });
    expect(toBackendError(original)).toBe(original);
  });
});
