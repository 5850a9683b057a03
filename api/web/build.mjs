// Bundles the web pages' JavaScript and the modeler's CSS with esbuild into api/web/static/dist/.
// Run by `npm run build` (the Makefile's `web` target). Everything is served by Flask; nothing comes
// from a CDN at run time. `--watch` rebuilds on change while developing.
import * as esbuild from 'esbuild';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import fs from 'node:fs';

const here = path.dirname(fileURLToPath(import.meta.url));
const outdir = path.join(here, 'static', 'dist');
const watch = process.argv.includes('--watch');

fs.rmSync(outdir, { recursive: true, force: true });

const options = {
  entryPoints: {
    app: path.join(here, 'src', 'app.js'),
    modeler: path.join(here, 'src', 'modeler.js'),
    viewer: path.join(here, 'src', 'viewer.js'),
    'bpmn-vendor': path.join(here, 'src', 'bpmn-vendor.css'),
    'form-js': path.join(here, 'src', 'form-js.css'),
    formjs: path.join(here, 'src', 'formjs-entry.js'),
    charts: path.join(here, 'src', 'charts-entry.js'),
  },
  bundle: true,
  outdir,
  format: 'iife',
  target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
  minify: !watch && !process.env.MOTCUA_WEB_DEBUG,
  sourcemap: watch ? 'inline' : false,
  legalComments: 'linked',
  loader: { '.woff': 'file', '.woff2': 'file', '.ttf': 'file', '.eot': 'file', '.svg': 'file' },
  assetNames: 'assets/[name]-[hash]',
  logLevel: 'info',
};

if (watch) {
  const ctx = await esbuild.context(options);
  await ctx.watch();
} else {
  await esbuild.build(options);
  fs.writeFileSync(path.join(outdir, '.built'), new Date().toISOString() + '\n');
}
