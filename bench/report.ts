/** One measured subject beside the baseline measured in the same run. */
export interface BenchReport {
  name: string;
  unit: string;
  subject: { label: string; value: number; extra?: string };
  baseline: { label: string; value: number; extra?: string };
  /** What ratio (subject / baseline) we aim for, for the reader. */
  aim?: string;
  /** Lines printed after the ratio: how to read it. */
  notes?: string[];
}

export function formatReport(r: BenchReport): string {
  const ratio = r.subject.value / r.baseline.value;
  const fmt = (n: number) => n.toLocaleString("en-US", { maximumFractionDigits: 1 });
  const lines = [
    `${r.name}`,
    `  ${r.subject.label}: ${fmt(r.subject.value)} ${r.unit}${r.subject.extra ? ` (${r.subject.extra})` : ""}`,
    `  ${r.baseline.label}: ${fmt(r.baseline.value)} ${r.unit}${r.baseline.extra ? ` (${r.baseline.extra})` : ""}`,
    `  ratio: ${ratio.toFixed(2)}×${r.aim ? `   aim: ${r.aim}` : ""}`,
    ...(r.notes ?? []).map((note) => `  ${note}`),
  ];
  return lines.join("\n");
}
