// Linux /proc figures that tell a slow kernel from a busy machine (bench/NOTES.md, speed round 4,
// item 3): the CPU time of this process's threads, the JS main thread apart from the rest (on
// lavapipe the rest is mostly the driver's worker threads), and the load average. A step whose
// wall and GPU-timestamp times grow while its worker CPU time stays put was waiting for a core.
import { readFileSync, readdirSync } from 'node:fs';

const TICK_MS = 10; // USER_HZ = 100 on Linux

/** CPU ms of the main thread and of every other thread of this process; null without /proc. */
export function threadCpuMs(): { main: number; others: number } | null {
  try {
    let main = 0;
    let others = 0;
    for (const t of readdirSync('/proc/self/task')) {
      let f: string[];
      try {
        f = readFileSync(`/proc/self/task/${t}/stat`, 'utf8').split(') ')[1].split(' ');
      } catch {
        continue; // the thread ended between the listing and the read
      }
      const ms = (Number(f[11]) + Number(f[12])) * TICK_MS; // utime + stime
      if (Number(t) === process.pid) main += ms;
      else others += ms;
    }
    return { main, others };
  } catch {
    return null;
  }
}

/** The 1-minute load average, or null where /proc/loadavg cannot be read. */
export function loadAverage(): number | null {
  try {
    return Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
  } catch {
    return null;
  }
}
