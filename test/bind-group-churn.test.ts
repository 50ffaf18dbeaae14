// Issue 13: exit 139 with no message. Every bind group Dawn creates on lavapipe holds a memory
// mapping until V8 collects its wrapper, and V8 does not see that cost: 90,000 distinct bind
// groups (more than vm.max_map_count = 65,530) created with no explicit GC used to make
// lavapipe's next mmap fail and crash. The bind-group cache now has the dropped wrappers
// collected when it empties (engine/node/native-memory.ts): live bind groups stay bounded and the
// process's mappings stay far from the limit (before the fix: +48,000 mappings here, 11,000 after).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as rk from '../engine/index.ts';
import { bindGroupStats, MAX_BIND_GROUPS } from '../engine/program.ts';
import { mappingCount, maxMappingCount } from '../engine/node/native-memory.ts';

test('90,000 distinct bind groups without an explicit GC: bounded live bind groups and mappings, right results', async () => {
  await rk.init();
  const K = 300; // K*K (a_i, b_j) pairs: each add binds a new buffer pair
  const a = Array.from({ length: K }, (_, i) => rk.keep(rk.full([4], i)));
  const b = Array.from({ length: K }, (_, j) => rk.keep(rk.full([4], 1000 * j)));
  // an application's heap (datasets, models): V8 then starts a full collection even more rarely
  const ballast = Array.from({ length: 3e6 }, (_, i) => ({ i, s: String(i) }));
  await rk.sync();
  const maps0 = mappingCount();
  const limit = maxMappingCount();
  const created0 = bindGroupStats.misses;
  let maxLive = 0;
  let maxMaps = maps0;
  const t0 = performance.now();
  for (let i = 0; i < K; i++) {
    for (let j = 0; j < K; j++) rk.add(a[i], b[j]).dispose();
    if (i % 10 === 9) {
      // a training loop reads a value back every step: the event loop turns, finalizers run
      const probe = rk.add(a[i], b[(7 * i) % K]);
      const v = await probe.toArray();
      probe.dispose();
      assert.equal([...v], Array(4).fill(i + 1000 * ((7 * i) % K)));
      maxLive = Math.max(maxLive, bindGroupStats.live);
      if (maps0 > 0) maxMaps = Math.max(maxMaps, mappingCount());
    }
  }
  const created = bindGroupStats.misses - created0;
  console.log(`${created} bind groups in ${((performance.now() - t0) / 1000).toFixed(1)} s; most alive at once ${maxLive}; mappings ${maps0} -> at most ${maxMaps} (limit ${limit})`);
  assert.ok(created >= K * K, `created ${created} bind groups`);
  assert.ok(maxLive <= 3 * MAX_BIND_GROUPS, `at most ${3 * MAX_BIND_GROUPS} bind groups alive at once, saw ${maxLive}`);
  if (maps0 > 0) assert.ok(maxMaps - maps0 < 25_000, `mappings grew by ${maxMaps - maps0} (from ${maps0}; the limit is ${limit})`);
  for (const t of [...a, ...b]) t.dispose();
  assert.is(ballast.length, 3e6);
});

test.run();
