// Runs the shared SX conformance suite (spec/tests/*.sx, with the
// framework lib/core/test.sx) on the JS evaluator. Each file runs with the
// globals restored to the state after the primitives loaded, as each file
// gets a fresh interpreter in `rose-ash sx test`.
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import * as sx from '../dist/sx.test.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
export const root = path.resolve(here, '../..');
export const exclusions = JSON.parse(readFileSync(path.join(here, 'conformance-exclusions.json'), 'utf8'));

const snapshot = new Map([...sx.globals].map(([k, c]) => [k, [c.bound, c.v]]));
function resetGlobals() {
  for (const [k, c] of sx.globals) {
    const s = snapshot.get(k);
    c.bound = s ? s[0] : false;
    c.v = s ? s[1] : null;
  }
}

const framework = readFileSync(path.join(root, 'lib/core/test.sx'), 'utf8');
const kw = sx.kw;

/** Runs one spec file; returns {file, results: [{name, ok, messages}], error}. */
export function runFile(file) {
  resetGlobals();
  const src = readFileSync(path.join(root, 'spec/tests', file), 'utf8');
  sx.evalString(framework);
  const skip = new Set(Object.keys(exclusions.tests).filter(k => k.startsWith(file + ': ')).map(k => k.slice(file.length + 2)));
  // replace deftest so excluded tests are not run at all (some would exhaust the JS stack)
  sx.evalString(`(defmacro deftest (name &rest body)
    (if (contains? (list ${[...skip].map(s => sx.serialize(s)).join(' ')}) name)
        nil
        \`(test/run ,(test/quoted name) (fn () ,@body))))`);
  let error = null;
  try {
    sx.guardStack(() => sx.evalString(src));
  } catch (e) {
    error = e instanceof sx.SxRaise ? sx.serialize(e.value, true) : String(e && e.stack || e);
  }
  const summary = sx.evalString('(test/summary)');
  const failures = sx.toArray(summary.get(kw('failures'))).map(f => [f.get(kw('test')), f.get(kw('message'))]);
  return {
    file,
    passed: summary.get(kw('passed')),
    failed: summary.get(kw('failed')),
    skipped: skip.size,
    failures,
    error,
  };
}

export function specFiles() {
  return readdirSync(path.join(root, 'spec/tests')).filter(f => f.endsWith('.sx')).sort();
}
