import { type ChildProcess, fork } from "node:child_process";

export interface Worker<R> {
  child: ChildProcess;
  /** Resolves with the worker's result message. */
  result: Promise<R>;
  /** Sends a message to the worker. */
  send(message: unknown): void;
}

/**
 * Forks a TypeScript worker as a real OS process (tsx loader), passing `env`.
 * The worker reports `{ type: "ready" }` once set up, then `{ type: "result", value }`.
 */
export async function spawnWorker<R>(script: string, env: Record<string, string>): Promise<Worker<R>> {
  const child = fork(script, [], {
    execArgv: ["--import", "tsx"],
    env: { ...process.env, ...env },
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  let ready!: () => void;
  const readyPromise = new Promise<void>((resolve) => {
    ready = resolve;
  });
  const result = new Promise<R>((resolve, reject) => {
    child.on("message", (m: { type: string; value?: R; error?: string }) => {
      if (m.type === "ready") ready();
      else if (m.type === "result") resolve(m.value as R);
      else if (m.type === "error") reject(new Error(`worker failed: ${m.error}`));
    });
    child.on("exit", (code, signal) => {
      if (code !== 0) reject(new Error(`worker exited with ${code ?? signal}`));
    });
    child.on("error", reject);
  });
  result.catch(() => {});
  const exitedEarly = new Promise<never>((_, reject) =>
    child.once("exit", (code, signal) => reject(new Error(`worker exited before ready: ${code ?? signal}`))),
  );
  exitedEarly.catch(() => {});
  await Promise.race([readyPromise, exitedEarly]);
  return { child, result, send: (message) => child.send(message as never) };
}

/** Spawns `n` workers, waits until all are ready, then releases them at once. */
export async function raceWorkers<R>(
  n: number,
  script: string,
  env: (index: number) => Record<string, string>,
): Promise<Worker<R>[]> {
  const workers = await Promise.all(Array.from({ length: n }, (_, i) => spawnWorker<R>(script, env(i))));
  for (const w of workers) w.send({ type: "go" });
  return workers;
}
