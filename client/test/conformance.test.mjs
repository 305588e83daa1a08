// The shared conformance suite under the JS evaluator: every test not in
// conformance-exclusions.json must pass.
import test from 'node:test';
import assert from 'node:assert/strict';
import { runFile, specFiles, exclusions } from './conformance-lib.mjs';

for (const f of specFiles()) {
  if (exclusions.files[f]) continue;
  test(`conformance ${f}`, () => {
    const r = runFile(f);
    assert.equal(r.error, null, `error outside a test: ${r.error}`);
    assert.deepEqual(r.failures, [], r.failures.map(([t, m]) => `${t}: ${m}`).join('\n'));
    assert.ok(r.passed > 0);
  });
}

test('every excluded test names an existing file', () => {
  const files = new Set(specFiles());
  for (const k of Object.keys(exclusions.tests)) assert.ok(files.has(k.split(': ')[0]), k);
});
