import { describe, expect, it } from "vitest";
import type { DownloadEvent } from "../bindings/DownloadEvent";
import { apply, bytes, duration, fraction, newDownload } from "./downloads.svelte";

const started: DownloadEvent = {
  event: "started",
  data: {
    repo: "org/m",
    revision: "main",
    commit: "abc",
    toFetch: 900,
    files: [
      { name: "config.json", size: 100, cached: true, partial: 0 },
      { name: "model.safetensors", size: 1000, cached: false, partial: 100 },
    ],
  },
};

describe("download events", () => {
  it("follow a resumed download to the end", () => {
    const d = newDownload("1", "org/m", null);
    apply(d, started);
    expect(d.state).toBe("running");
    expect(d.files.map((f) => [f.status, f.bytes])).toEqual([
      ["cached", 100],
      ["waiting", 100],
    ]);
    apply(d, {
      event: "progress",
      data: {
        file: "model.safetensors",
        fileBytes: 550,
        fileSize: 1000,
        fetched: 450,
        toFetch: 900,
        bytesPerSecond: 45,
        etaSeconds: 10,
      },
    });
    expect(fraction(d)).toBeCloseTo(0.5);
    expect(d.files[1]).toMatchObject({ bytes: 550, status: "downloading" });
    apply(d, {
      event: "fileDone",
      data: { file: "model.safetensors", verified: true, fromCache: false, resumedFrom: 100 },
    });
    expect(d.files[1].status).toBe("verified");
    apply(d, { event: "done", data: { commit: "abc", path: "/c", fetched: 900, seconds: 2 } });
    expect(d.state).toBe("done");
    expect(fraction(d)).toBe(1);
    expect(d.etaSeconds).toBeNull();
  });

  it("record failures and cancellation", () => {
    const d = newDownload("2", "org/m", "Q4_K_M");
    apply(d, started);
    apply(d, { event: "failed", data: { error: { code: "disk_full", message: "not enough disk" } } });
    expect([d.state, d.error]).toEqual(["failed", "not enough disk"]);
    apply(d, { event: "cancelled" });
    expect(d.state).toBe("cancelled");
  });

  it("format sizes and times as people read them", () => {
    expect(bytes(800)).toBe("800 B");
    expect(bytes(3 * 2 ** 29)).toBe("1.5 GiB");
    expect(duration(42)).toBe("42 s");
    expect(duration(125)).toBe("2 min 5 s");
  });
});
