import { readFile } from "node:fs/promises";
import { TokenwardenError } from "../core/errors.js";

/** Reads all of stdin as text (for `-` arguments). */
export async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
  return Buffer.concat(chunks).toString("utf8");
}

/** A file path, or `-` for stdin. The error names the path, never the content. */
export async function readPathOrStdin(path: string): Promise<string> {
  if (path === "-") return readStdin();
  try {
    return await readFile(path, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? "unreadable";
    throw new TokenwardenError("invalid_input", `cannot read ${path} (${code})`, { cause: error });
  }
}
