// The benchmarks' other processes: servers under load in their own OS process, and what they cost.
import { type ChildProcessByStdio, spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Readable } from "node:stream";

export type Child = ChildProcessByStdio<null, Readable, Readable>;

/** A loopback URL on a whole line: what every bench child prints once it listens. */
const LISTENING = /(http:\/\/127\.0\.0\.1:\d+)\s/;

/**
 * Runs `command` from the repository root; resolves once its output matches
 * `ready` (default: it printed its URL), with that URL and all it printed.
 */
export function startChild(
  command: string[],
  options: { env?: NodeJS.ProcessEnv; ready?: RegExp } = {},
): Promise<{ child: Child; url: string; out: () => string }> {
  const [file, ...args] = command;
  if (file === undefined) throw new Error("startChild: empty command");
  const child = spawn(file, args, {
    cwd: join(import.meta.dirname, ".."),
    env: options.env ?? process.env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  return new Promise((resolve, reject) => {
    const check = (c: Buffer) => {
      out += c.toString();
      const url = LISTENING.exec(out)?.[1];
      if (url !== undefined && (options.ready ?? LISTENING).test(out))
        resolve({ child, url, out: () => out });
    };
    child.stdout.on("data", check);
    child.stderr.on("data", (c: Buffer) => {
      out += c.toString();
    });
    child.on("exit", (code) => reject(new Error(`${command.join(" ")} exited ${code}: ${out}`)));
  });
}

/** SIGTERM, then SIGKILL if it has not exited within 3 s. */
export function stopChild(child: Child): Promise<void> {
  return new Promise((resolve) => {
    child.removeAllListeners("exit");
    child.on("exit", () => resolve());
    child.kill("SIGTERM");
    setTimeout(() => child.kill("SIGKILL"), 3_000).unref();
  });
}

/**
 * CPU seconds (user + system, USER_HZ = 100) of the processes `pick` accepts,
 * from /proc (Linux); null elsewhere. Children that exited count in their
 * parent's (cutime + cstime), so a PostgreSQL backend closed mid-run is not lost.
 */
export function cpuSeconds(pick: (pid: number, comm: string) => boolean): number | null {
  try {
    let total = 0;
    for (const entry of readdirSync("/proc")) {
      const pid = Number(entry);
      if (!Number.isInteger(pid)) continue;
      let stat: string;
      try {
        stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      } catch {
        continue; // exited meanwhile
      }
      const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      if (!pick(pid, comm)) continue;
      // Fields after the command name: utime, stime, cutime, cstime are the 14th to 17th.
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      total += (Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) / 100;
    }
    return total;
  } catch {
    return null;
  }
}

/**
 * CPU seconds of this process's main thread alone (Linux; null elsewhere). A Node process's own
 * figure also counts its GC and compiler threads; the main thread is the one a storm can saturate.
 */
export function mainThreadCpuSeconds(): number | null {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return null;
  }
}

/**
 * Time the threads of each process `pick` accepts have spent on a core and waiting for one, in
 * seconds, by pid (/proc/PID/task/TID/schedstat, Linux; null elsewhere). With `mainOnly`, each
 * process's main thread alone. Compare two readings with schedDelta.
 */
export function schedSeconds(
  pick: (pid: number, comm: string) => boolean,
  mainOnly = false,
): Map<number, { onCpu: number; waiting: number }> | null {
  try {
    const byPid = new Map<number, { onCpu: number; waiting: number }>();
    for (const entry of readdirSync("/proc")) {
      const pid = Number(entry);
      if (!Number.isInteger(pid)) continue;
      try {
        if (!pick(pid, readFileSync(`/proc/${pid}/comm`, "utf8").trim())) continue;
        let onCpu = 0;
        let waiting = 0;
        for (const tid of mainOnly ? [entry] : readdirSync(`/proc/${pid}/task`)) {
          const [run, wait] = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ");
          onCpu += Number(run) / 1e9;
          waiting += Number(wait) / 1e9;
        }
        byPid.set(pid, { onCpu, waiting });
      } catch {
        // exited meanwhile
      }
    }
    return byPid;
  } catch {
    return null;
  }
}

/**
 * What the processes present at both readings spent between them: one that exited meanwhile would
 * otherwise take its whole history out of the sum (a PostgreSQL backend closed mid-run).
 */
export function schedDelta(
  from: Map<number, { onCpu: number; waiting: number }>,
  to: Map<number, { onCpu: number; waiting: number }>,
): { onCpu: number; waiting: number } {
  let onCpu = 0;
  let waiting = 0;
  for (const [pid, b] of to) {
    const a = from.get(pid) ?? { onCpu: 0, waiting: 0 }; // started meanwhile: all of it is in the run
    onCpu += b.onCpu - a.onCpu;
    waiting += b.waiting - a.waiting;
  }
  return { onCpu, waiting };
}

/** What a run cost: the line to print, and the CPU of every process involved per refresh (µs). */
export type CpuReading = { text: string; totalUs: number | null };

/**
 * CPU per refresh of each process in the storm: where the time goes, whatever the core count. Then
 * what bounds the run: the share of it each process spent on a core and waiting for one (a thread on
 * a core all the time is the bound; threads that all wait for a core mean the cores are).
 * `involved.postgres` says whether PostgreSQL's CPU is the run's: not the raw run's, nor a SQLite
 * storm's, whose total would otherwise take in whatever the host's PostgreSQL did meanwhile (the
 * autovacuum after a storm's deletes, during the raw run after it).
 */
export function cpuMeter(
  emulatorPid: number,
  refreshes: number,
  self: string,
  involved: { postgres: boolean },
): () => CpuReading {
  const ours = (pid: number) => pid === process.pid;
  const emulator = (pid: number) => pid === emulatorPid;
  const postgres = (_pid: number, comm: string) => comm === "postgres";
  const read = () => ({
    at: performance.now(),
    ours: process.cpuUsage(),
    oursMain: mainThreadCpuSeconds(),
    emulator: cpuSeconds(emulator),
    postgres: cpuSeconds(postgres),
    sched: [schedSeconds(ours, true), schedSeconds(emulator), schedSeconds(postgres)],
  });
  const start = read();
  return () => {
    const end = read();
    const us = (seconds: number | null, from: number | null) =>
      seconds === null || from === null ? "n/a" : `${(((seconds - from) * 1e6) / refreshes).toFixed(0)} µs`;
    const cpu = process.cpuUsage(start.ours);
    const wall = (end.at - start.at) / 1000;
    const shares = ["main thread", "emulator", "PostgreSQL"].map((name, i) => {
      const a = start.sched[i];
      const b = end.sched[i];
      if (!a || !b) return `${name} n/a`;
      const d = schedDelta(a, b);
      const pct = (s: number) => `${Math.round((100 * s) / wall)} %`;
      return `${name} ${pct(d.onCpu)}/${pct(d.waiting)}`;
    });
    const pgSeconds = !involved.postgres
      ? 0
      : end.postgres === null || start.postgres === null
        ? null
        : end.postgres - start.postgres;
    const others =
      end.emulator === null || start.emulator === null || pgSeconds === null
        ? null
        : end.emulator - start.emulator + pgSeconds;
    return {
      text: `CPU per refresh: ${self} ${((cpu.user + cpu.system) / refreshes).toFixed(0)} µs (kernel ${(cpu.system / refreshes).toFixed(0)}, main thread ${us(end.oursMain, start.oursMain)}), emulator ${us(end.emulator, start.emulator)}, PostgreSQL ${us(end.postgres, start.postgres)}; of the run on a core/waiting for one: ${self} ${shares.join(", ")}`,
      totalUs: others === null ? null : (cpu.user + cpu.system + others * 1e6) / refreshes,
    };
  };
}
