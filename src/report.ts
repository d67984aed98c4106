// `flowtensor report RUN`: one self-contained HTML file (inline SVG, no scripts, no network):
// training curves, the confusion matrix as a heat map, the per-class table, and the data-quality
// summary of the shards the run was trained on. Every label and column name is HTML-escaped.
import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from './atomic.js';
import { readEvalJson, readMetrics, readRunInfo } from './runfiles.js';
import type { Report } from './metrics.js';
import { readBaselineEval } from './baseline.js';
import type { EpochMetrics } from './train.js';

export function esc(s: unknown): string {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

type Epoch = EpochMetrics;

function lineChart(title: string, epochs: Epoch[], series: { key: keyof Epoch; label: string; color: string }[], best = 0): string {
  const W = 460;
  const H = 260;
  const L = 50;
  const R = 12;
  const T = 30;
  const Bm = 36;
  const xs = epochs.map((e) => e.epoch);
  const vals = epochs.flatMap((e) => series.map((s) => Number(e[s.key]))).filter((v) => Number.isFinite(v));
  let lo = Math.min(...vals, 0);
  let hi = Math.max(...vals, 1e-9);
  if (hi === lo) hi = lo + 1;
  const x = (v: number) => L + ((v - Math.min(...xs)) / Math.max(1, Math.max(...xs) - Math.min(...xs))) * (W - L - R);
  const y = (v: number) => T + (1 - (v - lo) / (hi - lo)) * (H - T - Bm);
  const grid: string[] = [];
  for (let k = 0; k <= 4; k++) {
    const v = lo + ((hi - lo) * k) / 4;
    grid.push(`<line x1="${L}" x2="${W - R}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/><text x="${L - 6}" y="${y(v) + 4}" text-anchor="end" font-size="11">${v.toFixed(3)}</text>`);
  }
  for (const e of xs) grid.push(`<text x="${x(e)}" y="${H - Bm + 16}" text-anchor="middle" font-size="11">${e}</text>`);
  const lines = series.map((s) => {
    const pts = epochs.filter((e) => Number.isFinite(Number(e[s.key]))).map((e) => `${x(e.epoch).toFixed(1)},${y(Number(e[s.key])).toFixed(1)}`);
    return `<polyline fill="none" stroke="${s.color}" stroke-width="2.5" points="${pts.join(' ')}"/>` + pts.map((p) => `<circle cx="${p.split(',')[0]}" cy="${p.split(',')[1]}" r="3.5" fill="${s.color}"/>`).join('');
  });
  // the best epoch (lowest val_loss: the weights the run keeps), marked by a dashed line
  if (epochs.some((e) => e.epoch === best)) grid.push(`<line x1="${x(best)}" x2="${x(best)}" y1="${T}" y2="${H - Bm}" stroke="#2ca02c" stroke-width="1.5" stroke-dasharray="5,4"/><text x="${x(best) > W / 2 ? x(best) - 4 : x(best) + 4}" y="${T + 12}" text-anchor="${x(best) > W / 2 ? 'end' : 'start'}" font-size="11" fill="#2ca02c">best epoch ${best}</text>`);
  const legend = series.map((s, k) => `<rect x="${L + k * 130}" y="8" width="14" height="4" fill="${s.color}"/><text x="${L + 18 + k * 130}" y="14" font-size="12">${esc(s.label)}</text>`).join('');
  return `<figure><svg width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(title)}"><rect width="100%" height="100%" fill="#fff"/>${grid.join('')}${lines.join('')}${legend}<text x="${(W + L) / 2}" y="${H - 6}" text-anchor="middle" font-size="12">epoch</text></svg><figcaption>${esc(title)}</figcaption></figure>`;
}

function heatmap(r: Report): string {
  const idx = r.per_class.map((p, i) => (p.support > 0 || p.predicted > 0 ? i : -1)).filter((i) => i >= 0);
  const cell = 44;
  // margins wide enough for the longest class name shown (about 7 px a character at 12 px): never cut
  const longest = Math.max(0, ...idx.map((i) => r.labels[i].length));
  const left = Math.max(150, Math.ceil(longest * 7) + 16);
  const top = Math.max(120, Math.ceil(longest * 7 * Math.sin((55 * Math.PI) / 180)) + 24);
  const W = left + cell * idx.length + Math.ceil(longest * 7 * Math.cos((55 * Math.PI) / 180)) + 10;
  const H = top + cell * idx.length + 10;
  const parts: string[] = [`<rect width="100%" height="100%" fill="#fff"/>`];
  idx.forEach((j, c) => parts.push(`<text transform="translate(${left + c * cell + cell / 2 + 4},${top - 8}) rotate(-55)" font-size="12">${esc(r.labels[j])}</text>`));
  idx.forEach((i, rr) => {
    const rowSum = r.confusion[i].reduce((a, b) => a + b, 0) || 1;
    parts.push(`<text x="${left - 8}" y="${top + rr * cell + cell / 2 + 4}" text-anchor="end" font-size="12">${esc(r.labels[i])}</text>`);
    idx.forEach((j, c) => {
      const v = r.confusion[i][j];
      const f = v / rowSum;
      const shade = Math.round(255 - f * 200);
      const fill = i === j ? `rgb(${shade},${Math.round(255 - f * 120)},${shade})` : `rgb(255,${shade},${shade})`;
      parts.push(`<rect x="${left + c * cell}" y="${top + rr * cell}" width="${cell - 2}" height="${cell - 2}" fill="${fill}" stroke="#999" stroke-width="0.5"><title>${esc(r.labels[i])} → ${esc(r.labels[j])}: ${v}</title></rect>`);
      parts.push(`<text x="${left + c * cell + cell / 2 - 1}" y="${top + rr * cell + cell / 2 + 4}" text-anchor="middle" font-size="11" fill="${f > 0.6 ? '#fff' : '#222'}">${v}</text>`);
    });
  });
  return `<figure><svg width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="confusion matrix">${parts.join('')}</svg><figcaption>Confusion matrix on the test split (rows: true class, columns: predicted; shade: share of the row)</figcaption></figure>`;
}

function table(head: string[], rows: (string | number)[][]): string {
  return `<table><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map((c) => `<td>${esc(typeof c === 'number' ? (Number.isInteger(c) ? c.toLocaleString('en-US') : c.toFixed(3)) : c)}</td>`).join('')}</tr>`).join('')}</tbody></table>`;
}

function countsTable(title: string, obj: unknown): string {
  const flat: [string, number][] = [];
  const walk = (o: unknown, prefix: string) => {
    if (typeof o === 'number') {
      if (o > 0) flat.push([prefix, o]);
    } else if (o && typeof o === 'object') for (const [k, v] of Object.entries(o)) walk(v, prefix ? `${prefix}.${k}` : k);
  };
  walk(obj, '');
  return `<h3>${esc(title)}</h3>` + (flat.length ? table(['what', 'count'], flat) : '<p class="none">none</p>');
}

/** Which run this is: when and how it was made, and from which data (inputs, identifiers, dedupe, split). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
function runFacts(run: Record<string, any>, opt: Record<string, any>): string {
  const yes = (v: unknown) => (v ? 'yes' : 'no');
  const ratios = opt.ratios ? `${opt.ratios.train}/${opt.ratios.val}/${opt.ratios.test}` : '?';
  const how: Record<string, string> = { hash: 'by row content (hash)', connection: 'by connection (five-tuple, both directions)', host: 'by source host', file: 'by input file' };
  const split = `${esc(how[opt.split_by ?? 'hash'] ?? opt.split_by)}, ${opt.split_by === 'file' && opt.file_splits ? Object.entries(opt.file_splits).map(([f, s]) => `${esc(f)}→${esc(s)}`).join(', ') : ratios}`;
  const inputs: string[] = Array.isArray(opt.inputs) ? opt.inputs.map(String) : [];
  const rows: [string, string][] = [
    ['created', esc(run.created ?? '?') + (Array.isArray(run.resumed) && run.resumed.length ? ` (resumed ${run.resumed.length}×, last ${esc(run.resumed[run.resumed.length - 1]?.at)})` : '')],
    ['command', `<code>${esc(Array.isArray(run.command) ? run.command.join(' ') : '?')}</code>`],
    ['shards', esc(run.config?.shards ?? '?')],
    ['inputs', inputs.length ? inputs.map(esc).join(', ') : esc(opt.via ?? '?')],
    ['identifiers (IPs, ports) dropped', yes(opt.drop_identifiers)],
    ['exact duplicates removed', yes(opt.dedupe)],
    ['split train/val/test', split],
    ['attempted attacks', esc(opt.attempted ?? '?')],
    ['release', esc(Array.isArray(opt.releases) ? opt.releases.join(' + ') : '?') + (opt.allow_mixed_releases ? ' (mixed on purpose)' : '')],
    ['scaler', esc(run.scaler?.method ?? (opt.log1p ? 'minmax with log1p' : 'minmax'))],
    ['versions', esc(run.runtime ? `flowtensor ${run.runtime.flowtensor}, Node ${run.runtime.node}, TensorFlow.js ${run.runtime.tfjs}, ${run.runtime.platform}` : `flowtensor ${run.flowtensor_version ?? '?'}`)],
  ];
  return `<table class="facts"><tbody>${rows.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${v}</td></tr>`).join('')}</tbody></table>`;
}

export function renderReport(runDir: string, baselineDir?: string): string {
  // every file checked as it is read (src/runfiles.ts): a damaged one is one clear error
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const run: Record<string, any> = readRunInfo(runDir);
  const epochs = readMetrics<Epoch>(runDir);
  const ev = readEvalJson<Report & { best_epoch?: number; loss?: number }>(runDir);
  const sm = run.shards_manifest ?? {};
  const labels: string[] = run.labels ?? [];
  const cc = sm.class_counts ?? {};
  const q = sm.quality ?? {};
  const sections: string[] = [];
  sections.push(`<h1>flowtensor run: ${esc(path.basename(path.resolve(runDir)))}</h1>`);
  sections.push(
    `<p class="meta">model <b>${esc(run.config?.model)}</b> · ${esc(run.features?.length)} features · ${esc(labels.length)} classes · backend ${esc(run.backend?.name)} · batch ${esc(run.config?.batch_size)} · lr ${esc(run.config?.learning_rate)} · class weights ${esc(run.config?.class_weights)} · flowtensor ${esc(run.flowtensor_version)}</p>`,
  );
  sections.push(runFacts(run, sm.options ?? {}));
  // the best epoch: from the evaluation, else the lowest val_loss (the checkpoint best/ holds)
  const finite = epochs.filter((e) => Number.isFinite(e.val_loss));
  const best = ev?.best_epoch ?? (finite.length ? finite.reduce((a, b) => (b.val_loss < a.val_loss ? b : a)).epoch : 0);
  if (ev) {
    sections.push(`<div class="kpis"><div><span>${ev.macro_f1.toFixed(4)}</span>macro-F1 (test)</div><div><span>${ev.weighted_f1.toFixed(4)}</span>weighted-F1</div><div><span>${ev.accuracy.toFixed(4)}</span>accuracy</div><div><span>${ev.majority_macro_f1.toFixed(4)}</span>majority-class macro-F1</div><div><span>${esc(ev.best_epoch ?? '?')}</span>best epoch</div></div>`);
  }
  sections.push('<h2>Training</h2>');
  if (epochs.length) {
    const f1s = epochs.some((e) => typeof e.val_macro_f1 === 'number');
    sections.push(`<div class="row">${lineChart('Loss per epoch', epochs, [{ key: 'loss', label: 'train loss', color: '#1f77b4' }, { key: 'val_loss', label: 'validation loss', color: '#d62728' }], best)}${lineChart('Accuracy per epoch', epochs, [{ key: 'acc', label: 'train accuracy', color: '#1f77b4' }, { key: 'val_acc', label: 'validation accuracy', color: '#d62728' }, ...(f1s ? [{ key: 'val_macro_f1' as const, label: 'validation macro-F1', color: '#2ca02c' }] : [])], best)}</div>`);
    sections.push(table(['epoch', 'loss', 'acc', 'val_loss', 'val_acc', ...(f1s ? ['val_macro_f1', 'lr'] : []), 'samples/s', 'kept'], epochs.map((e) => [e.epoch, e.loss, e.acc, e.val_loss, e.val_acc, ...(f1s ? [e.val_macro_f1 ?? '', e.lr ?? ''] : []), e.samples_per_s, e.epoch === best ? '★ best (the model)' : ''])));
  } else sections.push('<p class="none">no epochs recorded</p>');
  if (ev) {
    sections.push('<h2>Test split</h2>');
    sections.push(heatmap(ev));
    sections.push(table(['class', 'precision', 'recall', 'F1', 'support'], ev.per_class.filter((p) => p.support > 0 || p.predicted > 0).map((p) => [p.label, p.precision, p.recall, p.f1, p.support])));
  }
  if (ev && baselineDir) {
    // the tree baseline on the same shards (checked by the manifest's sha256 when the shards are still there)
    const shards = run.config?.shards as string | undefined;
    const base = readBaselineEval(baselineDir, shards && fs.existsSync(shards) ? shards : '', 'test');
    const bj = path.join(baselineDir, 'baseline.json');
    const learner = fs.existsSync(bj) ? (JSON.parse(fs.readFileSync(bj, 'utf8')).learner as string) : 'baseline';
    sections.push('<h2>LSTM beside the tree baseline (test split)</h2>');
    sections.push(`<p class="meta">baseline: ${esc(learner)} · ${esc(path.resolve(baselineDir))} · macro-F1 LSTM ${ev.macro_f1.toFixed(4)} vs baseline ${base.macro_f1.toFixed(4)} (ratio ${(base.macro_f1 > 0 ? ev.macro_f1 / base.macro_f1 : NaN).toFixed(3)})</p>`);
    sections.push(table(['class', 'support', 'LSTM F1', 'baseline F1', 'LSTM recall', 'baseline recall'], ev.per_class.map((p, k) => [p, base.per_class[k]] as const).filter(([p, q]) => p.support > 0 || p.predicted > 0 || (q?.predicted ?? 0) > 0).map(([p, q]) => [p.label, p.support, p.f1, q?.f1 ?? 0, p.recall, q?.recall ?? 0])));
  }
  sections.push('<h2>Data</h2>');
  sections.push(table(['class', 'train', 'val', 'test'], labels.map((l) => [l, cc.train?.[l] ?? 0, cc.val?.[l] ?? 0, cc.test?.[l] ?? 0])));
  if (sm.accounting) sections.push(countsTable('Row accounting', sm.accounting));
  sections.push(countsTable('Quarantined rows by reason', q.quarantine_reasons));
  sections.push(countsTable('Replaced values (column.kind → 0)', q.replaced_values));
  sections.push(countsTable('±Infinity replaced by the train max/min', q.infinities_replaced_at_scale));
  sections.push(countsTable('Values clipped to the train range', q.clipped_to_train_range));
  sections.push(countsTable('Columns a file lacked (filled)', q.filled_missing_column));
  sections.push(countsTable('IP addresses', q.ip));
  const css = `body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;max-width:1200px}h1{font-size:22px}h2{margin-top:28px;border-bottom:1px solid #ccc;padding-bottom:4px}
table{border-collapse:collapse;margin:8px 0 16px}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:right}td:first-child,th:first-child{text-align:left}th{background:#f3f3f3}
.row{display:flex;flex-wrap:wrap;gap:16px}figure{margin:0}figcaption{font-size:12px;color:#555}.kpis{display:flex;gap:16px;margin:12px 0}.kpis div{border:1px solid #ccc;border-radius:6px;padding:8px 14px;font-size:12px;color:#555}
.kpis span{display:block;font-size:22px;color:#111;font-weight:600}.meta{color:#555}.none{color:#888}.facts th,.facts td{text-align:left;font-weight:normal}.facts th{color:#555}`;
  return `<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>flowtensor report</title><style>${css}</style></head><body>${sections.join('\n')}</body></html>\n`;
}

export function writeReport(runDir: string, out = path.join(runDir, 'report.html'), baselineDir?: string): string {
  writeFileAtomic(out, [renderReport(runDir, baselineDir)]);
  return out;
}
