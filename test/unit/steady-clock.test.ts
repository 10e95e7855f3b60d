import { describe, expect, it } from "vitest";
import { steadyClock } from "../../src/engine/steady-clock.js";
import { FakeClock } from "../helpers/fake-clock.js";

describe("steadyClock", () => {
  it("follows the wall clock forward, counts a backward step as no time, and counts on from there", () => {
    const wall = new FakeClock(1_000_000);
    const steady = steadyClock(wall);
    expect(steady()).toBe(1_000_000);
    wall.advance(5_000);
    expect(steady()).toBe(1_005_000);
    wall.set(1_005_000 - 3_600_000); // stepped back an hour
    expect(steady()).toBe(1_005_000);
    wall.advance(10_000);
    expect(steady()).toBe(1_015_000);
    wall.advance(3_600_000); // stepped forward: counted in full
    expect(steady()).toBe(4_615_000);
  });

  it("uses the clock's own monotonic reading when it has one", () => {
    let wallMs = 1_000_000;
    let monotonicMs = 50;
    const steady = steadyClock({ now: () => wallMs, elapsedMs: () => monotonicMs });
    wallMs -= 3_600_000;
    monotonicMs += 7;
    expect(steady()).toBe(57);
  });
});
