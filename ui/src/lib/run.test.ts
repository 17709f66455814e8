import { describe, expect, it } from "vitest";
import { loadFraction, newRunId, RunState } from "./run.svelte";

describe("RunState", () => {
  it("follows a run from the queue through loading to computing", () => {
    const run = new RunState();
    const id = run.begin("gen");
    expect(id.startsWith("gen-")).toBe(true);
    expect(run.busy).toBe(true);
    run.onEvent({ kind: "queued", ahead: 1 });
    expect([run.phase, run.ahead]).toEqual(["queued", 1]);
    const progress = { bytesRead: 50, bytesTotal: 100, layersBuilt: 0, layersTotal: 0 };
    run.onEvent({ kind: "loading", model: "m", progress });
    expect(run.phase).toBe("loading");
    expect(run.loading?.progress.bytesRead).toBe(50);
    run.onEvent({ kind: "running" });
    expect([run.phase, run.loading]).toEqual(["running", null]);
    run.end();
    expect(run.busy).toBe(false);
  });

  it("gives every run its own id", () => {
    expect(newRunId("a")).not.toBe(newRunId("a"));
  });

  it("counts a load's bytes and layers", () => {
    expect(loadFraction({ bytesRead: 50, bytesTotal: 100, layersBuilt: 0, layersTotal: 30 })).toBe(0.25);
    expect(loadFraction({ bytesRead: 100, bytesTotal: 100, layersBuilt: 30, layersTotal: 30 })).toBe(1);
    expect(loadFraction({ bytesRead: 0, bytesTotal: 0, layersBuilt: 3, layersTotal: 6 })).toBe(0.5);
  });
});
