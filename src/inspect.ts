// `flowtensor inspect DIR`: what a manifest holds, as a table (or --json).
import { SPLITS } from './batch.js';
import { readManifest, type Manifest } from './manifest.js';

const n = (x: number) => x.toLocaleString('en-US');

function pad(s: string, w: number, right = false): string {
  return right ? s.padStart(w) : s.padEnd(w);
}

/** One phrase for the scaler, e.g. 'log-standard on train (signed log1p, then mean/std), val/test clipped to the train range'. */
export function scalerText(m: Pick<Manifest, 'scaler' | 'num_features'>): string {
  const sc = m.scaler;
  const how =
    sc.method === 'log-standard'
      ? 'log-standard on train (signed log1p, then mean/std)'
      : sc.method === 'log-minmax'
        ? 'log-minmax on train (signed log1p, then min-max)'
        : `min-max on train${sc.log1p.length ? ` (log1p on ${sc.log1p.length} features)` : ''}`;
  const clip = sc.clip ? (sc.method === 'log-standard' ? ', val/test clipped to the train range' : ', val/test clipped to [0,1]') : '';
  return how + clip;
}

export function inspectText(dir: string, m: Manifest = readManifest(dir)): string {
  const out: string[] = [];
  const a = m.accounting;
  out.push(`shards    ${dir}  (flowtensor ${m.flowtensor_version}, data set ${m.dataset})`);
  out.push(`features  ${m.num_features}   classes ${m.num_classes}   rows per shard ${n(m.shard_rows)}   scaler ${scalerText(m)}`);
  const o = m.options as { releases?: string[]; allow_mixed_releases?: boolean; split_by?: string; ratios?: { train: number; val: number; test: number }; dedupe?: boolean; drop_identifiers?: boolean; row_context?: string | null };
  const ratios = o.ratios ? `${o.ratios.train}/${o.ratios.val}/${o.ratios.test}` : '';
  out.push(
    `data      release ${o.releases?.join(' + ') ?? '?'}${o.allow_mixed_releases ? ' (mixed on purpose)' : ''}   split by ${o.split_by ?? 'hash'} ${ratios}   ` +
      `identifiers ${o.drop_identifiers ? 'dropped' : 'kept'}   duplicates ${o.dedupe ? 'removed' : 'kept'}   windows ${o.row_context === 'host' ? 'per source host' : 'of consecutive rows'}`,
  );
  // feature names in column order, wrapped
  let fl = 'columns  ';
  const flines: string[] = [];
  m.features.forEach((f, k) => {
    const item = ` ${k}:${f}`;
    if (fl.length + item.length > 110) {
      flines.push(fl);
      fl = '         ';
    }
    fl += item;
  });
  flines.push(fl);
  out.push(...flines);
  out.push(`rows      ${n(a.data_rows)} read = ${n(a.rows_in_shards)} in shards + ${n(a.quarantined)} quarantined + ${n(a.dropped)} dropped + ${n(a.deduplicated)} duplicates   (also skipped: ${n(a.blank_rows)} blank, ${n(a.header_rows)} repeated headers)`);
  out.push('');
  const w = Math.max(12, ...m.labels.map((l) => l.length)) + 2;
  out.push(pad('class', w) + SPLITS.map((s) => pad(s, 11, true)).join('') + pad('total', 12, true));
  const totals = [0, 0, 0];
  for (const label of m.labels) {
    const row = SPLITS.map((s) => m.splits[s].class_counts[label] ?? 0);
    row.forEach((v, i) => (totals[i] += v));
    out.push(pad(label, w) + row.map((v) => pad(n(v), 11, true)).join('') + pad(n(row.reduce((x, y) => x + y, 0)), 12, true));
  }
  out.push(pad('all', w) + totals.map((v) => pad(n(v), 11, true)).join('') + pad(n(totals.reduce((x, y) => x + y, 0)), 12, true));
  out.push(pad('shards', w) + SPLITS.map((s) => pad(String(m.splits[s].shards.length), 11, true)).join(''));
  out.push('');
  out.push('data quality');
  const q = m.quality as Record<string, Record<string, unknown>>;
  const line = (title: string, obj: Record<string, unknown> | undefined) => {
    const ent = Object.entries(obj ?? {}).filter(([, v]) => typeof v === 'number' && v > 0) as [string, number][];
    out.push(`  ${pad(title, 30)} ${ent.length ? ent.map(([k, v]) => `${k} ${n(v)}`).join(', ') : '-'}`);
  };
  line('quarantined rows', q.quarantine_reasons);
  line('replaced values (-> 0)', q.replaced_values);
  line('±Infinity -> train max/min', q.infinities_replaced_at_scale as Record<string, unknown>);
  for (const s of SPLITS) line(`clipped to train range (${s})`, (q.clipped_to_train_range as Record<string, Record<string, unknown>>)?.[s]);
  line('negative values (kept)', q.negative_values);
  line('columns filled (file lacks)', q.filled_missing_column);
  line('columns derived from twin', q.derived_column);
  const ip = q.ip as Record<string, Record<string, number>> | undefined;
  if (ip) for (const k of ['ipv4', 'ipv6', 'missing', 'invalid']) line(`IP ${k}`, ip[k]);
  line('attempted attacks', q.attempted);
  line('labels added (--allow-new-labels)', q.new_labels);
  out.push(`  ${pad('cp1252 text cells', 30)} ${n(Number(q.cp1252_cells ?? 0))}`);
  out.push('');
  const src = m.sources as { file: string; format?: string; release?: string; data_rows?: number }[];
  out.push(`sources   ${src.length} file(s)`);
  for (const s of src) out.push(`  ${pad(s.format ?? '?', 20)} ${pad(s.release ?? '', 20)} ${pad(n(s.data_rows ?? 0), 10, true)} rows  ${s.file}`);
  return out.join('\n') + '\n';
}
