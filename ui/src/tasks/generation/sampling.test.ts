import { describe, expect, it } from "vitest";
import { certainty, reshape, visible } from "./sampling";

const lp = (ps: number[]) => ps.map((p) => Math.log(p));

describe("reshape", () => {
  it("greedy keeps only the best token", () => {
    const r = reshape(lp([0.6, 0.3, 0.1]), { doSample: false, temperature: 1, topK: null, topP: 1, minP: null });
    expect(r.map((x) => x.after)).toEqual([1, 0, 0]);
  });

  it("temperature flattens and top-k / top-p / min-p cut the tail", () => {
    const base = { doSample: true, temperature: 1, topK: null, topP: 1, minP: null };
    const hot = reshape(lp([0.6, 0.3, 0.1]), { ...base, temperature: 2 });
    expect(hot[0].after).toBeLessThan(0.6);
    expect(hot[2].after).toBeGreaterThan(0.1);
    expect(reshape(lp([0.6, 0.3, 0.1]), { ...base, topK: 2 })[2].after).toBe(0);
    const nucleus = reshape(lp([0.6, 0.3, 0.1]), { ...base, topP: 0.8 });
    expect(nucleus[2].after).toBe(0);
    expect(nucleus[0].after + nucleus[1].after).toBeCloseTo(1);
    expect(reshape(lp([0.6, 0.3, 0.04]), { ...base, minP: 0.1 })[2].after).toBe(0);
  });
});

describe("display helpers", () => {
  it("grades certainty and shows whitespace", () => {
    expect(certainty(Math.log(0.95))).toBe(0);
    expect(certainty(Math.log(0.05))).toBe(4);
    expect(visible(" a\nb")).toBe("␣a↵b");
  });
});
