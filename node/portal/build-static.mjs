// Copies the static files (index.html, style.css, static/*) into dist/ after tsc, and removes
// from dist/ anything that no longer comes from src/ or the static files, so that what the node
// embeds is exactly the current page.
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const here = new URL('.', import.meta.url).pathname;
const dist = join(here, 'dist');
const staticDir = join(here, 'static');
const allowed = ['.html', '.js', '.css', '.svg', '.png', '.ico', '.json', '.txt'];

mkdirSync(dist, { recursive: true });
const keep = new Set();

for (const f of readdirSync(join(here, 'src'))) {
  if (!f.endsWith('.ts') || f.endsWith('.d.ts')) continue;
  const js = f.slice(0, -3) + '.js';
  const path = join(dist, js);
  if (!existsSync(path)) continue;
  const text = readFileSync(path, 'utf8');
  // A module of types only compiles to `export {};` and is never requested: leave it out.
  if (text.trim() === 'export {};') {
    rmSync(path);
    continue;
  }
  // tsc indents with four spaces; two keep the page smaller. Only safe without multi-line
  // template literals, so a file with a line holding an odd number of backticks is left as is.
  const multiline = text.split('\n').some((l) => (l.match(/`/g) ?? []).length % 2 === 1);
  if (!multiline) {
    writeFileSync(path, text.replace(/^( {4})+/gm, (m) => ' '.repeat(m.length / 2)));
  }
  keep.add(js);
}

function copy(from, name) {
  copyFileSync(from, join(dist, name));
  keep.add(name);
}
copy(join(here, 'index.html'), 'index.html');
copy(join(here, 'style.css'), 'style.css');
if (existsSync(staticDir)) {
  for (const f of readdirSync(staticDir)) {
    const p = join(staticDir, f);
    if (statSync(p).isFile()) copy(p, f);
  }
}

let total = 0;
for (const f of readdirSync(dist)) {
  const p = join(dist, f);
  if (!keep.has(f) || statSync(p).isDirectory()) {
    rmSync(p, { recursive: true, force: true });
    continue;
  }
  if (!allowed.some((ext) => f.endsWith(ext))) {
    console.error(`dist/${f}: the node serves only ${allowed.join(' ')}`);
    process.exit(1);
  }
  total += statSync(p).size;
}
console.log(`dist: ${keep.size} files, ${(total / 1024).toFixed(1)} KiB`);
