// The browser bench's page bundles the shared bench harness and cases: nothing in them may import
// a Node module (the bundle fails then, and `npm run bench -- --browser` with it).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { pageJs } from '../bench/browser.ts';

test('the bench page bundles without Node modules', async () => {
  let js = '';
  try {
    js = await pageJs();
  } catch (err) {
    assert.unreachable(`bench/browser/page.ts does not bundle for the browser: ${(err as Error).message.split('\n').slice(0, 3).join(' ')}`);
  }
  assert.ok(js.length > 10_000, `bundle is ${js.length} bytes`);
  assert.not.match(js, /from\s*["']node:/);
});

test.run();
