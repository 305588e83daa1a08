// Prints the conformance results per file: `node test/conformance.mjs [file.sx...]`.
import { runFile, specFiles, exclusions } from './conformance-lib.mjs';
const files = process.argv.slice(2).length ? process.argv.slice(2) : specFiles();
let passed = 0, failed = 0, skipped = 0;
for (const f of files) {
  if (exclusions.files[f]) { console.log(`skip   ${f}: ${exclusions.files[f]}`); continue; }
  const t0 = Date.now();
  const r = runFile(f);
  passed += r.passed; failed += r.failed + (r.error ? 1 : 0); skipped += r.skipped;
  console.log(`${r.failed || r.error ? 'FAILED' : 'ok    '} ${f}: ${r.passed} passed, ${r.failed} failed, ${r.skipped} excluded (${Date.now() - t0} ms)`);
  for (const [t, m] of r.failures) console.log(`  FAIL ${t}: ${m}`);
  if (r.error) console.log(`  ERROR ${r.error}`);
}
console.log(`${passed} passed, ${failed} failed, ${skipped} excluded`);
