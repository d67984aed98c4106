// Classification report: confusion matrix, per-class precision/recall/F1/support, macro and weighted F1.
export interface ClassReport {
  label: string;
  precision: number;
  recall: number;
  f1: number;
  support: number;
  predicted: number;
}

export interface Report {
  rows: number;
  accuracy: number;
  macro_f1: number;
  weighted_f1: number;
  /** Macro-F1 of always predicting the most frequent class: the baseline to beat. */
  majority_macro_f1: number;
  labels: string[];
  /** confusion[true][predicted] */
  confusion: number[][];
  per_class: ClassReport[];
}

export class Confusion {
  readonly m: number[][];
  constructor(readonly labels: string[]) {
    this.m = labels.map(() => labels.map(() => 0));
  }
  add(yTrue: ArrayLike<number>, yPred: ArrayLike<number>): void {
    for (let i = 0; i < yTrue.length; i++) this.m[yTrue[i]][yPred[i]]++;
  }
  report(): Report {
    const C = this.labels.length;
    const support = this.m.map((r) => r.reduce((a, b) => a + b, 0));
    const predicted = this.labels.map((_, j) => this.m.reduce((a, r) => a + r[j], 0));
    const rows = support.reduce((a, b) => a + b, 0);
    let correct = 0;
    const per: ClassReport[] = [];
    for (let c = 0; c < C; c++) {
      const tp = this.m[c][c];
      correct += tp;
      const precision = predicted[c] ? tp / predicted[c] : 0;
      const recall = support[c] ? tp / support[c] : 0;
      const f1 = precision + recall ? (2 * precision * recall) / (precision + recall) : 0;
      per.push({ label: this.labels[c], precision, recall, f1, support: support[c], predicted: predicted[c] });
    }
    // as scikit-learn: macro over the classes present in the true or predicted labels
    const present = per.filter((p) => p.support > 0 || p.predicted > 0);
    const macro = present.length ? present.reduce((a, p) => a + p.f1, 0) / present.length : 0;
    const weighted = rows ? per.reduce((a, p) => a + p.f1 * p.support, 0) / rows : 0;
    const maj = support.indexOf(Math.max(...support));
    const majF1 = rows ? (2 * (support[maj] / rows)) / (support[maj] / rows + 1) : 0;
    const majPresent = per.filter((p) => p.support > 0).length || 1;
    return { rows, accuracy: rows ? correct / rows : 0, macro_f1: macro, weighted_f1: weighted, majority_macro_f1: majF1 / majPresent, labels: this.labels, confusion: this.m, per_class: per };
  }
}

export function reportText(r: Report, title = ''): string {
  const w = Math.max(14, ...r.labels.map((l) => l.length)) + 2;
  const f = (x: number) => x.toFixed(3).padStart(10);
  const out: string[] = [];
  if (title) out.push(title);
  out.push('class'.padEnd(w) + 'precision'.padStart(10) + 'recall'.padStart(10) + 'f1'.padStart(10) + 'support'.padStart(10));
  for (const p of r.per_class) if (p.support > 0 || p.predicted > 0) out.push(p.label.padEnd(w) + f(p.precision) + f(p.recall) + f(p.f1) + String(p.support).padStart(10));
  out.push('');
  out.push(`macro-F1 ${r.macro_f1.toFixed(4)}   weighted-F1 ${r.weighted_f1.toFixed(4)}   accuracy ${r.accuracy.toFixed(4)}   rows ${r.rows}   (majority-class macro-F1 ${r.majority_macro_f1.toFixed(4)})`);
  out.push('');
  out.push('confusion matrix (rows: true, columns: predicted; classes with rows only)');
  const idx = r.per_class.map((p, i) => (p.support > 0 || p.predicted > 0 ? i : -1)).filter((i) => i >= 0);
  const cw = Math.max(6, ...idx.map((i) => String(Math.max(...r.confusion.map((row) => row[i]))).length + 1));
  out.push(''.padEnd(w) + idx.map((i) => String(i).padStart(cw)).join(''));
  for (const i of idx) out.push(`${i} ${r.labels[i]}`.slice(0, w - 1).padEnd(w) + idx.map((j) => String(r.confusion[i][j]).padStart(cw)).join(''));
  return out.join('\n') + '\n';
}

/** Two models' per-class F1 on the same split, side by side, with their macro-F1 (classes with rows only). */
export function compareText(a: Report, b: Report, nameA: string, nameB: string): string {
  const w = Math.max(14, ...a.labels.map((l) => l.length)) + 2;
  const cw = Math.max(10, nameA.length + 2, nameB.length + 2);
  const out: string[] = [];
  out.push('class'.padEnd(w) + 'support'.padStart(9) + `${nameA} F1`.padStart(cw + 3) + `${nameB} F1`.padStart(cw + 3));
  a.per_class.forEach((p, k) => {
    const q = b.per_class[k];
    if (p.support === 0 && p.predicted === 0 && q.predicted === 0) return;
    out.push(p.label.padEnd(w) + String(p.support).padStart(9) + p.f1.toFixed(3).padStart(cw + 3) + q.f1.toFixed(3).padStart(cw + 3));
  });
  out.push('macro-F1'.padEnd(w) + String(a.rows).padStart(9) + a.macro_f1.toFixed(4).padStart(cw + 3) + b.macro_f1.toFixed(4).padStart(cw + 3));
  const ratio = b.macro_f1 > 0 ? a.macro_f1 / b.macro_f1 : NaN;
  out.push(`${nameA} / ${nameB} macro-F1: ${Number.isFinite(ratio) ? ratio.toFixed(3) : 'n/a'}`);
  return out.join('\n') + '\n';
}
