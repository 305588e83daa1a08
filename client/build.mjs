// Builds the browser bundle (dist/sx.js: one minified IIFE, what the host
// serves as /static/sx.<hash>.js) and an ES module of the same sources for
// the node tests (dist/sx.test.mjs). Prints the bundle's gzipped size.
import { build } from 'esbuild';
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';

const common = { entryPoints: ['src/index.ts'], bundle: true, target: 'es2020', logLevel: 'warning' };
await build({ ...common, outfile: 'dist/sx.js', format: 'iife', minify: true, legalComments: 'none', define: { SX_AUTOSTART: 'true' } });
await build({ ...common, entryPoints: ['src/test-entry.ts'], outfile: 'dist/sx.test.mjs', format: 'esm', platform: 'neutral', define: { SX_AUTOSTART: 'false' } });
const js = readFileSync('dist/sx.js');
const gz = gzipSync(js, { level: 9 }).length;
console.log(`dist/sx.js: ${js.length} bytes, ${gz} bytes gzipped (budget 30720)`);
if (gz > 30720) { console.error('bundle over the 30 KB gzipped budget'); process.exit(1); }
