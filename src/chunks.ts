// Cutting input files into byte ranges that start at a line, so several threads can parse one file.
import fs from 'node:fs';
import { pathError } from './safefile.js';

export interface Task {
  index: number;
  fileIndex: number;
  file: string;
  chunk: number;
  start: number;
  /** Exclusive end; -1 = to the end of the file. */
  end: number;
  /** The file's header line (with its newline) for chunks after the first, else null. */
  header: Buffer | null;
  /** Bytes of input when the task is a plain byte range of a regular file; -1 for gzip, pipes and multi-line-quotes files (unknown or unbounded). */
  plainBytes: number;
}

const WINDOW = 1 << 16;

/**
 * Tasks for all files in order. gzip files, small files, and every file when quoted fields may span
 * lines (multiline) are one task; otherwise a row never spans a newline, so any line start is a row start.
 */
export function planTasks(files: string[], chunkBytes: number, multiline = false): Task[] {
  const tasks: Task[] = [];
  files.forEach((file, fileIndex) => {
    const st = fs.statSync(file);
    const size = st.size;
    // a pipe or device is read once, from its start: one task, nothing read ahead
    if (!st.isFile() || multiline) {
      tasks.push({ index: tasks.length, fileIndex, file, chunk: 0, start: 0, end: -1, header: null, plainBytes: -1 });
      return;
    }
    let fd: number;
    try {
      fd = fs.openSync(file, 'r');
    } catch (e) {
      throw pathError(file, e); // a read, never reported as "cannot write"
    }
    try {
      const head = Buffer.alloc(Math.min(size, 1 << 20));
      fs.readSync(fd, head, 0, head.length, 0);
      const gz = head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b;
      const nl = head.indexOf(10);
      if (gz || size <= chunkBytes * 1.5 || nl < 0) {
        tasks.push({ index: tasks.length, fileIndex, file, chunk: 0, start: 0, end: -1, header: null, plainBytes: gz ? -1 : size });
        return;
      }
      const header = Buffer.from(head.subarray(0, nl + 1));
      let start = 0;
      let chunk = 0;
      const win = Buffer.alloc(WINDOW);
      while (start < size) {
        let end = -1;
        let probe = start + chunkBytes;
        while (probe < size) {
          const n = fs.readSync(fd, win, 0, WINDOW, probe);
          const k = win.subarray(0, n).indexOf(10);
          if (k >= 0) {
            end = probe + k + 1;
            break;
          }
          probe += n;
        }
        if (end >= size - 1) end = -1;
        tasks.push({ index: tasks.length, fileIndex, file, chunk, start, end, header: chunk === 0 ? null : header, plainBytes: (end < 0 ? size : end) - start });
        if (end < 0) break;
        start = end;
        chunk++;
      }
    } finally {
      fs.closeSync(fd);
    }
  });
  return tasks;
}
